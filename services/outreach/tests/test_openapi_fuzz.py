"""Schemathesis against outreach's own OpenAPI (the JSON API officers and machines use):
whatever it is sent, outreach never answers with a server error, and every answer, its
status included, is one its specification documents, in the shape it documents."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import schemathesis
from hypothesis import settings
from schemathesis import checks

from outreach.app import create_app
from outreach.entrypoints.security import Caller
from outreach.settings import OutreachSettings

pytestmark = pytest.mark.integration

# No broker is needed for the HTTP contract: the outbox keeps what would be published.
app = create_app(
    OutreachSettings(
        data_dir=Path(tempfile.mkdtemp(prefix="outreach-fuzz-")),
        kafka_bootstrap="127.0.0.1:1",
        traces_to_file=False,
    )
)


@asynccontextmanager
async def without_background_loops(_: object) -> AsyncIterator[None]:
    # Each call would otherwise start (and stop) the consumers and the relay, which only
    # try the absent broker: slow, and nothing to do with the HTTP contract.
    yield


app.router.lifespan_context = without_background_loops
# An admin may call every operation, so every operation is reached past its role check.
ADMIN_TOKEN = app.state.signer.api_token(Caller(name="fuzz-admin", role="admin"))
# /readyz is meant to answer 503 while the broker is away; it is an ops probe, not an API.
schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/readyz")


@schema.parametrize()
# Half Hypothesis's usual number of cases per operation: the API has 19 operations, and the
# suite runs on a shared 2-core machine.
@settings(max_examples=50)
def test_outreach_answers_every_request_within_its_specification(case):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        # The Allow header of a 405 is Starlette's, not outreach's; and, like most HTTP APIs,
        # outreach ignores query parameters it does not know rather than refusing them.
        excluded_checks=[checks.allow_header_conformance, checks.negative_data_rejection],
    )
