"""Found by the fault-injection run: after a broker restart, the service whose relay came
back first recreated the shared topics, and the other services' relays then saw nothing
missing and never published again what the broker had forgotten."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer
from sqlmodel import Session, SQLModel

from proactive.broker import EmbeddedBroker
from shared.database import make_engine
from shared.events import ResidentEventRecorded
from shared.kafka import ensure_topics
from shared.outbox import OutboxRelay, outbox_entry
from shared.topics import RESIDENT_EVENTS

pytestmark = pytest.mark.integration


async def run_relay_until(relay: OutboxRelay, done, timeout_s: float) -> None:
    stopping = asyncio.Event()
    task = asyncio.create_task(relay.run(stopping))
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not done() and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    stopping.set()
    await task


async def keys_on_topic(bootstrap: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        RESIDENT_EVENTS.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        polled = await consumer.getmany(timeout_ms=3000)
        return [record.key or b"" for records in polled.values() for record in records]
    finally:
        await consumer.stop()


def test_a_relay_publishes_again_what_a_restarted_broker_forgot_even_if_another_service_recreated_the_topics(
    tmp_path,
):
    engine = make_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    SQLModel.metadata.create_all(engine)
    key = "r_" + uuid.uuid4().hex
    with Session(engine) as session:
        for number in range(3):
            event = ResidentEventRecorded(
                occurred_at=datetime.now(UTC),
                resident_key=key,
                source="test",
                table="benefits.claims",
                record_key=f"C{number}",
                change="upsert",
            )
            session.add(outbox_entry(RESIDENT_EVENTS.name, event))
        session.commit()
    broker = EmbeddedBroker().start()
    try:
        relay = OutboxRelay(engine, broker.bootstrap)
        asyncio.run(run_relay_until(relay, lambda: relay.pending() == 0, 30))
        assert relay.pending() == 0

        broker.stop()
        broker = EmbeddedBroker(broker.port).start()
        asyncio.run(ensure_topics(broker.bootstrap))  # another service's relay got there first
        asyncio.run(run_relay_until(relay, lambda: relay.republished >= 3, 15))

        assert relay.republished == 3
        assert relay.pending() == 0
        assert asyncio.run(keys_on_topic(broker.bootstrap)) == [key.encode()] * 3
    finally:
        broker.stop()
