"""notify end to end on a real Tansu broker, and its repository on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI, Request
from opentelemetry import context as otel_context
from opentelemetry import propagate

from notify.adapters.database import LetterStore
from notify.app import create_app
from notify.handlers import handle_task_changed
from notify.settings import NotifySettings
from shared.codec import encode
from shared.database import make_engine
from shared.events import LetterSent
from shared.references import reference_for
from shared.topics import NOTIFY_DELIVERIES, OUTREACH_TASKS

pytestmark = pytest.mark.integration


def fake_webhook(received: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.post("/hooks/officers")
    async def receive(request: Request) -> dict[str, str]:
        received.append(await request.json())
        return {"ok": "yes"}

    return app


def wait_for(check, timeout_s: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def publish_raw(bootstrap: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(OUTREACH_TASKS.name, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def deliveries_for(
    bootstrap: str, task_id: uuid.UUID, wanted: int, timeout_s: float = 60.0
) -> list[tuple[LetterSent, dict[str, bytes]]]:
    consumer = AIOKafkaConsumer(
        NOTIFY_DELIVERIES.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[tuple[LetterSent, dict[str, bytes]]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(found) < wanted and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    event = LetterSent.model_validate_json(record.value)
                    if event.task_id == task_id:
                        found.append((event, dict(record.headers)))
    finally:
        await consumer.stop()
    return found


def test_an_approved_task_on_kafka_becomes_a_letter_in_the_same_trace(
    kafka_bootstrap, tmp_path, kit, serve
):
    webhook_calls: list[dict[str, Any]] = []
    vault = serve(kit.fake_vault({kit.RESIDENT_KEY: kit.vault_contact()}))
    webhook = serve(fake_webhook(webhook_calls))
    settings = NotifySettings(
        kafka_bootstrap=kafka_bootstrap,
        data_dir=tmp_path,
        service_token=kit.SERVICE_TOKEN,
        ingest_url=vault.url,
        officer_webhook_url=f"{webhook.url}/hooks/officers",
        notify_consumer_group=f"notify-test-{uuid.uuid4().hex[:8]}",
        log_level="WARNING",
    )
    notify = serve(create_app(settings))
    wait_for(lambda: httpx.get(f"{notify.url}/readyz").status_code == 200, what="readiness")

    task = kit.make_task()
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    upstream = otel_context.attach(propagate.extract({"traceparent": traceparent}))
    try:
        asyncio.run(
            publish_raw(
                kafka_bootstrap,
                encode(task),
                task.resident_key.encode(),
                [("traceparent", traceparent.encode())],
            )
        )
        asyncio.run(publish_raw(kafka_bootstrap, b"{not an event", b"junk", []))
    finally:
        otel_context.detach(upstream)

    found = asyncio.run(deliveries_for(kafka_bootstrap, task.task_id, wanted=2))
    by_type = {event.event_type: (event, headers) for event, headers in found}
    letter_sent, headers = by_type["LetterSent"]
    assert (letter_sent.channel, letter_sent.status) == ("pdf", "rendered")
    assert letter_sent.reference == reference_for(task.task_id)
    assert headers["traceparent"].decode().split("-")[1] == trace_id
    officer_notified, officer_headers = by_type["OfficerNotified"]
    assert officer_notified.channel == "webhook"
    assert officer_headers["traceparent"].decode().split("-")[1] == trace_id

    assert (settings.letters_dir / f"{letter_sent.reference}.pdf").exists()
    [notice] = [call for call in webhook_calls if call["task_id"] == str(task.task_id)]
    assert notice["reference"] == letter_sent.reference
    for personal in (kit.NAME, kit.POSTCODE, *kit.ADDRESS):
        assert personal not in str(notice)

    stats = wait_for(
        lambda: (s := httpx.get(f"{notify.url}/stats").json())["dead_letters"] >= 1 and s,
        what="the malformed record in dead_letters",
    )
    # Other suites may share this broker; only our resident is known to the fake vault.
    assert stats["letters_rendered"] == 1
    assert stats["notifications_sent"] == 1
    assert stats["tasks_seen"] >= 1

    letters = httpx.get(
        f"{notify.url}/v1/letters", headers={"Authorization": f"Bearer {kit.SERVICE_TOKEN}"}
    ).json()
    assert [row["reference"] for row in letters if row["status"] == "rendered"] == [
        letter_sent.reference
    ]


async def test_the_repository_and_handler_work_on_postgresql(postgres_url, kit, deps_factory):
    store = LetterStore(make_engine(postgres_url))
    store.create_tables()
    store.create_tables()  # twice is harmless: start-up runs it every time
    try:
        deps = deps_factory(the_store=store)
        deps.officers = kit.FakeOfficers()
        approved, refused = kit.make_task(), kit.make_task(resident_key="r_" + "b2" * 16)

        await handle_task_changed(approved, deps)
        await handle_task_changed(approved, deps)
        await handle_task_changed(refused, deps)
        await handle_task_changed(kit.make_task("TaskCreated"), deps)
        for _ in range(2):
            store.record_dead_letter(
                topic=OUTREACH_TASKS.name, partition=0, offset=7, key=None, value=b"x", reason="bad"
            )

        assert deps.channel.sent == 1
        assert store.stats() == {
            "tasks_seen": 3,
            "letters_rendered": 1,
            "notifications_sent": 1,
            "deliveries_failed": 1,
            "letters_cancelled": 0,
            "letters_received": 0,
            "dead_letters": 1,
        }
        listed = {row.reference: row for row in store.list_letters()}
        assert listed[reference_for(approved.task_id)].status == "rendered"
        assert listed[reference_for(approved.task_id)].created_at.tzinfo is not None
        failed = store.letter_by_reference(reference_for(refused.task_id))
        assert failed is not None and failed.status == "failed"
        again = store.claim_letter(
            task_id=approved.task_id,
            reference=reference_for(approved.task_id),
            resident_key=approved.resident_key,
            team="falls",
            due_by=None,
            channel="pdf",
        )
        assert again.status == "rendered"
    finally:
        store.engine.dispose()
