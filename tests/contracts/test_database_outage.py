"""While a service's database is unreachable it answers 503 with Retry-After, not a 500."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from shared.service import answer_database_outages

pytestmark = pytest.mark.unit


def test_an_unreachable_database_is_a_503_with_retry_after() -> None:
    # A real driver error: PostgreSQL on a port where nothing listens.
    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", pool_pre_ping=False)
    app = FastAPI()
    answer_database_outages(app)

    @app.get("/count")
    def count() -> int:
        with engine.connect() as connection:
            return int(connection.execute(text("select 1")).scalar_one())

    response = TestClient(app, raise_server_exceptions=False).get("/count")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "try again" in response.json()["detail"]
