"""Outreach with its lifespan against the real Tansu broker: a ResidentFlagsChanged published
on resident.flags.v1 closes the resident's task (published as closed for notify), a record
it cannot read is dead-lettered and the consumer keeps going."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from outreach.adapters.store import DeadLetter
from outreach.app import create_app
from outreach.handlers import SOURCE_SYSTEMS, subject_access
from outreach.settings import OutreachSettings
from shared.codec import decode
from shared.events import Reason, ResidentFlagsChanged, RiskScored, TaskChanged
from shared.kafka import make_producer, publish
from shared.settings import DEV_SERVICE_TOKEN
from shared.topics import OUTREACH_TASKS, RESIDENT_FLAGS, RISK_SCORES

pytestmark = pytest.mark.integration
SERVICE = {"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"}


def a_high_score(key: str) -> RiskScored:
    return RiskScored(
        occurred_at=datetime.now(UTC),
        resident_key=key,
        source="scoring",
        model="falls",
        model_version="test",
        probability=0.61,
        band="high",
        reasons=[
            Reason(
                feature="falls_12m",
                text="You have had a fall recently",
                contribution=1.2,
                source_table="health.ambulance_callouts",
            )
        ],
        feature_hash="abc",
        triggered_by=uuid.uuid4(),
        age_band="75-84",
        ward="Abbey",
    )


async def send(bootstrap: str, topic: str, *events: object, raw: bytes | None = None) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        if raw is not None:
            await producer.send_and_wait(topic, raw, key=b"r_not-a-resident")
        for event in events:
            await publish(producer, topic, event)  # type: ignore[arg-type]
    finally:
        await producer.stop()


def wait_for(predicate, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def client(tmp_path_factory, kafka_bootstrap) -> Iterator[TestClient]:
    app = create_app(
        OutreachSettings(
            kafka_bootstrap=kafka_bootstrap,
            data_dir=tmp_path_factory.mktemp("outreach-flags"),
            traces_to_file=False,
        )
    )
    with TestClient(app) as client:
        wait_for(lambda: client.get("/readyz").status_code == 200)
        yield client


def task_of(client: TestClient, key: str):
    tasks = client.get("/v1/tasks", params={"limit": 1000}, headers=SERVICE).json()
    return next((t for t in tasks if t["resident_key"] == key), None)


def engine_of(client: TestClient) -> Engine:
    return cast(FastAPI, client.app).state.engine


def audited(client: TestClient, key: str, action: str) -> list[dict]:
    audit = subject_access(engine_of(client), key)["audit"]
    return [entry for entry in audit if entry["action"] == action]


def test_the_flags_consumer_starts_with_the_others(client):
    parts = client.get("/readyz").json()["parts"]
    assert parts["flags-consumer"] is True


def test_a_resident_reported_deceased_has_their_task_closed_and_published(
    client, kafka_bootstrap, topic_reader
):
    key = "r_" + uuid.uuid4().hex
    asyncio.run(send(kafka_bootstrap, RISK_SCORES.name, a_high_score(key)))
    wait_for(lambda: task_of(client, key))

    deceased = ResidentFlagsChanged(
        occurred_at=datetime.now(UTC),
        resident_key=key,
        source="scoring",
        flags=["deceased"],
        basis=["resident_index.people"],
    )
    asyncio.run(send(kafka_bootstrap, RESIDENT_FLAGS.name, deceased))
    closed = wait_for(lambda: (t := task_of(client, key)) and t["status"] == "closed" and t)
    assert closed["closed_reason"] == "the resident has died (from the council's records)"

    records = topic_reader(OUTREACH_TASKS.name, lambda r: r.key == key.encode(), want=2)
    last = decode(records[-1].value, TaskChanged)
    assert (last.event_type, last.status, last.actor) == (
        "TaskStatusChanged",
        "closed",
        SOURCE_SYSTEMS,
    )

    asyncio.run(send(kafka_bootstrap, RISK_SCORES.name, a_high_score(key)))
    [suppressed] = wait_for(lambda: audited(client, key, "suppressed"))
    assert suppressed["reason"] == "excluded (deceased): the resident has died"
    assert task_of(client, key)["status"] == "closed"


def test_an_unreadable_flags_record_is_dead_lettered_and_the_consumer_keeps_going(
    client, kafka_bootstrap
):
    engine = engine_of(client)

    def dead_letters() -> list[DeadLetter]:
        with Session(engine) as session:
            return list(
                session.exec(select(DeadLetter).where(DeadLetter.topic == RESIDENT_FLAGS.name))
            )

    asyncio.run(send(kafka_bootstrap, RESIDENT_FLAGS.name, raw=b'{"flags": ["alive"]}'))
    [poison] = wait_for(dead_letters)
    assert poison.reason

    key = "r_" + uuid.uuid4().hex
    open_case = ResidentFlagsChanged(
        occurred_at=datetime.now(UTC), resident_key=key, source="scoring", flags=["open_case"]
    )
    asyncio.run(send(kafka_bootstrap, RESIDENT_FLAGS.name, open_case))
    # Flags and scores are different topics, read independently: wait for the flag first.
    wait_for(lambda: audited(client, key, "flag_set"))
    asyncio.run(send(kafka_bootstrap, RISK_SCORES.name, a_high_score(key)))
    [suppressed] = wait_for(lambda: audited(client, key, "suppressed"))
    assert "open_case" in suppressed["reason"]
    assert task_of(client, key) is None
