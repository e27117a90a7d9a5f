"""Schemathesis against notify's own OpenAPI: whatever it is sent, notify never answers
with a server error, and every answer matches what its specification says."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from schemathesis import checks

from notify.app import create_app
from notify.settings import NotifySettings
from shared.settings import DEV_SERVICE_TOKEN

pytestmark = pytest.mark.integration

# No broker is needed for the HTTP contract: notify starts (not ready) without one.
app = create_app(
    NotifySettings(
        data_dir=Path(tempfile.mkdtemp(prefix="notify-fuzz-")), kafka_bootstrap="127.0.0.1:1"
    )
)
# /readyz is meant to answer 503 while the broker is away; it is an ops probe, not an API.
schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/readyz")


@schema.parametrize()
def test_notify_answers_every_request_within_its_specification(case):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"},
        # The Allow header of a 405 is Starlette's, not notify's; and, like most HTTP APIs,
        # notify ignores query parameters it does not know rather than refusing them.
        excluded_checks=[checks.allow_header_conformance, checks.negative_data_rejection],
    )
