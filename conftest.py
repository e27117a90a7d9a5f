"""Fixtures every test suite in the workspace can use: a real Tansu broker on a free port
and the machine's PostgreSQL server when it answers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A fresh embedded broker for the test session, with every topic created."""
    from proactive.broker import EmbeddedBroker
    from shared.kafka import ensure_topics

    with EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap))
        yield broker.bootstrap


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throw-away schema-free database on the local PostgreSQL server, or a skip that says why."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL does not answer at 127.0.0.1:5432, so this test is skipped: {error}")
    name = f"proactive_test_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
