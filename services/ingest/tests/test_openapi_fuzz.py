"""Schemathesis against ingest's own OpenAPI: whatever it is sent, ingest never answers
with a server error, and every answer matches what its specification says."""

from __future__ import annotations

import tempfile

import pytest
import schemathesis
from schemathesis import checks

from ingest.adapters.store import create_source_key
from ingest.app import create_app
from ingest.settings import IngestSettings

pytestmark = pytest.mark.integration

# No broker is needed for the HTTP contract: a service whose broker is down still starts
# (not ready) and still answers every request correctly.
app = create_app(
    IngestSettings(
        data_dir=tempfile.mkdtemp(prefix="ingest-fuzz-"),
        kafka_bootstrap="127.0.0.1:1",
        cdc_from_kafka=False,
        rate_limit="1000000/second",
    )
)
API_KEY = create_source_key(app.state.engine, "fuzz")
# /readyz is meant to answer 503 while the broker is away; it is an ops probe, not an API.
schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/readyz")


@schema.parametrize()
def test_ingest_answers_every_request_within_its_specification(case):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {API_KEY}"},
        # The specification cannot say which rows each table accepts (the mapping does), so
        # a request valid by the schema may still be refused, with its reasons. The Allow
        # header of a 405 is Starlette's, not ingest's. Query parameters it does not know are
        # ignored rather than refused, as most HTTP APIs do.
        excluded_checks=[
            checks.positive_data_acceptance,
            checks.allow_header_conformance,
            checks.negative_data_rejection,
        ],
    )
