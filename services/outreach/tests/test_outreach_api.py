"""Outreach with its lifespan against a real Tansu broker, SQLite and PostgreSQL."""

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace

from outreach.app import create_app
from outreach.settings import OutreachSettings
from shared.codec import decode
from shared.events import LetterSent, Reason, ResidentOptedOut, RiskScored, TaskChanged
from shared.kafka import make_producer, publish
from shared.settings import DEV_SERVICE_TOKEN
from shared.telemetry import context_from_headers, setup_tracing
from shared.topics import NOTIFY_DELIVERIES, OUTREACH_TASKS, RESIDENT_OPTOUTS, RISK_SCORES

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


async def send(bootstrap: str, topic: str, event, traced: bool = False) -> str | None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        if traced:
            with trace.get_tracer("test").start_as_current_span("source change") as span:
                await publish(producer, topic, event)
                return format(span.get_span_context().trace_id, "032x")
        await publish(producer, topic, event)
        return None
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


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request, tmp_path, kafka_bootstrap):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    setup_tracing("outreach-test", tmp_path)
    app = create_app(
        OutreachSettings(
            kafka_bootstrap=kafka_bootstrap, data_dir=tmp_path, outreach_database_url=url
        )
    )
    with TestClient(app) as client:
        wait_for(lambda: client.get("/readyz").status_code == 200)
        yield client


def test_a_high_score_becomes_one_proposed_task_and_approval_publishes_it_in_the_same_trace(
    client, kafka_bootstrap, topic_reader
):
    key = "r_" + uuid.uuid4().hex
    score = a_high_score(key)
    trace_id = asyncio.run(send(kafka_bootstrap, RISK_SCORES.name, score, traced=True))
    asyncio.run(send(kafka_bootstrap, RISK_SCORES.name, score))  # redelivered: no second task

    def proposed():
        tasks = client.get(
            "/v1/tasks", params={"status": "proposed", "limit": 1000}, headers=SERVICE
        ).json()
        return [t for t in tasks if t["resident_key"] == key]

    [task] = wait_for(proposed)
    assert task["team"] == "Community independence team"
    assert task["reasons"][0]["feature"] == "falls_12m"

    approved = client.post(
        f"/v1/tasks/{task['task_id']}/approve", json={"officer": "officer-7"}, headers=SERVICE
    )
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    assert approved.json()["due_by"] is not None
    again = client.post(
        f"/v1/tasks/{task['task_id']}/approve", json={"officer": "officer-7"}, headers=SERVICE
    )
    assert again.status_code == 200  # approving twice changes nothing

    records = topic_reader(OUTREACH_TASKS.name, lambda r: r.key == key.encode(), want=2)
    events = [decode(r.value, TaskChanged) for r in records]
    assert [e.event_type for e in events] == ["TaskCreated", "TaskApproved"]
    for record in records:
        parent = trace.get_current_span(context_from_headers(record.headers)).get_span_context()
        assert format(parent.trace_id, "032x") == trace_id
    assert len(proposed()) == 0


def test_a_letter_sent_moves_the_task_on(client, kafka_bootstrap):
    key = "r_" + uuid.uuid4().hex
    asyncio.run(send(kafka_bootstrap, RISK_SCORES.name, a_high_score(key)))

    def task_of_resident():
        tasks = client.get("/v1/tasks", params={"limit": 1000}, headers=SERVICE).json()
        return next((t for t in tasks if t["resident_key"] == key), None)

    task = wait_for(task_of_resident)
    client.post(f"/v1/tasks/{task['task_id']}/approve", json={"officer": "o"}, headers=SERVICE)
    letter = LetterSent(
        event_type="LetterSent",
        occurred_at=datetime.now(UTC),
        resident_key=key,
        source="notify",
        task_id=uuid.UUID(task["task_id"]),
        channel="pdf",
        status="rendered",
        reference="PS-TEST0001",
    )
    asyncio.run(send(kafka_bootstrap, NOTIFY_DELIVERIES.name, letter))
    moved = wait_for(lambda: (t := task_of_resident()) and t["status"] == "letter_sent" and t)
    assert moved["status"] == "letter_sent"


def test_an_unreadable_score_is_dead_lettered_and_the_consumer_keeps_going(client, kafka_bootstrap):
    before = client.get("/stats").json()["dead_letters"]

    async def send_garbage():
        producer = make_producer(kafka_bootstrap)
        await producer.start()
        await producer.send_and_wait(RISK_SCORES.name, b"{not json", key=b"x")
        await producer.stop()

    asyncio.run(send_garbage())
    wait_for(lambda: client.get("/stats").json()["dead_letters"] > before)
    key = "r_" + uuid.uuid4().hex
    asyncio.run(send(kafka_bootstrap, RISK_SCORES.name, a_high_score(key)))
    wait_for(
        lambda: any(
            t["resident_key"] == key
            for t in client.get("/v1/tasks", params={"limit": 1000}, headers=SERVICE).json()
        )
    )


def test_opt_outs_travel_both_ways_on_the_opt_outs_topic(client, kafka_bootstrap, topic_reader):
    from outreach.handlers import opt_out

    # One from another channel (say, a phone call logged elsewhere) closes the open task.
    key = "r_" + uuid.uuid4().hex
    asyncio.run(send(kafka_bootstrap, RISK_SCORES.name, a_high_score(key)))

    def task_of(resident: str):
        tasks = client.get("/v1/tasks", params={"limit": 1000}, headers=SERVICE).json()
        return next((t for t in tasks if t["resident_key"] == resident), None)

    wait_for(lambda: task_of(key))
    phoned = ResidentOptedOut(
        occurred_at=datetime.now(UTC), resident_key=key, source="contact-centre"
    )
    asyncio.run(send(kafka_bootstrap, RESIDENT_OPTOUTS.name, phoned))
    assert wait_for(lambda: (t := task_of(key)) and t["status"] == "closed")

    # One made here (the residents' form) is published for ingest, scoring and notify.
    other = "r_" + uuid.uuid4().hex
    opt_out(client.app.state.engine, other, "opt-out form")
    client.app.state.relay.wake.set()
    [record] = topic_reader(RESIDENT_OPTOUTS.name, lambda r: r.key == other.encode())
    assert decode(record.value, ResidentOptedOut).source == "outreach"
