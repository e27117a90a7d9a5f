"""The embedded broker and the outbox relay, for real: Tansu, aiokafka and SQLite."""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, SQLModel, select

from proactive.broker import BrokerDidNotStart, EmbeddedBroker, port_answers
from shared.database import make_engine
from shared.events import ResidentEventRecorded
from shared.outbox import OutboxEntry, OutboxRelay, outbox_entry
from shared.topics import RESIDENT_EVENTS

pytestmark = pytest.mark.integration


def test_the_embedded_broker_starts_answers_and_stops_cleanly():
    broker = EmbeddedBroker().start()
    try:
        assert broker.running
        assert port_answers("127.0.0.1", broker.port)
        with pytest.raises(BrokerDidNotStart, match="already in use"):
            EmbeddedBroker(broker.port).start()
    finally:
        broker.stop()
    assert not broker.running
    assert not port_answers("127.0.0.1", broker.port)


def test_the_outbox_relay_publishes_in_order_and_marks_entries_published(
    tmp_path, kafka_bootstrap, topic_reader
):
    engine = make_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    SQLModel.metadata.create_all(engine)
    key = "r_" + uuid.uuid4().hex
    events = [
        ResidentEventRecorded(
            occurred_at=datetime.now(UTC),
            resident_key=key,
            source="test",
            table="benefits.claims",
            record_key=f"C{i}",
            change="upsert",
        )
        for i in range(5)
    ]
    with Session(engine) as session:
        for event in events:
            session.add(outbox_entry(RESIDENT_EVENTS.name, event))
        session.commit()
    relay = OutboxRelay(engine, kafka_bootstrap)
    assert relay.pending() == 5

    async def run_until_published():
        stopping = asyncio.Event()
        task = asyncio.create_task(relay.run(stopping))
        while relay.pending():  # noqa: ASYNC110  (polling the database is the point)
            await asyncio.sleep(0.05)
        stopping.set()
        await task

    asyncio.run(asyncio.wait_for(run_until_published(), 30))
    with Session(engine) as session:
        assert all(e.published_at for e in session.exec(select(OutboxEntry)))
    records = topic_reader(RESIDENT_EVENTS.name, lambda r: r.key == key.encode(), want=5)
    assert [ResidentEventRecorded.model_validate_json(r.value).record_key for r in records] == [
        f"C{i}" for i in range(5)
    ]
