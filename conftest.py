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
        pytest.skip(
            f"PostgreSQL does not answer at 127.0.0.1:5432, so this test is skipped: {error}"
        )
    name = f"proactive_test_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def read_records(bootstrap: str, topic: str, predicate, want: int = 1, timeout_s: float = 30.0):
    """Read `topic` from the beginning (no consumer group, so no join wait) until `want`
    records match `predicate(record)`; returns the matching records."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read():
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer.topics()  # fetches the cluster's metadata
            partitions = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            found = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while len(found) < want and loop.time() < deadline:
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    found.extend(r for r in records if predicate(r))
            return found
        finally:
            await consumer.stop()

    return asyncio.run(read())


@pytest.fixture
def topic_reader(kafka_bootstrap):
    def reader(topic, predicate, want=1, timeout_s=30.0):
        return read_records(kafka_bootstrap, topic, predicate, want, timeout_s)

    return reader


@pytest.fixture
def read_topic_from():
    """`read_records` for a broker of the test's own (not the session's)."""
    return read_records
