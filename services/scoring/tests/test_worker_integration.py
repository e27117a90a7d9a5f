"""The worker as a real process on the real (Tansu) broker: events in, explained scores out,
in the same trace."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.codec import encode
from shared.events import RiskScored

pytestmark = pytest.mark.integration


def _free_port() -> int:
    from proactive.broker import free_port

    return free_port()


@pytest.fixture
def worker(kafka_bootstrap: str, tmp_path: Path) -> Iterator[str]:
    """`python -m scoring` against the session broker; yields its web base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "PROACTIVE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PROACTIVE_DATA_DIR": str(tmp_path),
        "PROACTIVE_SCORING_PORT": str(port),
    }
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "scoring"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail("the scoring worker did not become ready in 60 s")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def _send_with_traces(bootstrap: str, events: list) -> dict[uuid.UUID, str]:
    """Send each event with its own traceparent; return event id -> trace id."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    trace_ids = {}
    try:
        for event in events:
            trace_id = uuid.uuid4().hex
            trace_ids[event.event_id] = trace_id
            header = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01".encode()
            await producer.send_and_wait(
                "resident.events.v1",
                encode(event),
                key=event.resident_key.encode(),
                headers=[("traceparent", header)],
            )
    finally:
        await producer.stop()
    return trace_ids


async def _scores_for(
    bootstrap: str, resident_key: str, until_model: str, timeout_s: float = 40
) -> list:
    consumer = AIOKafkaConsumer(
        "risk.scores.v1", bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    found = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    if json.loads(record.value)["resident_key"] == resident_key:
                        found.append(record)
            if any(json.loads(r.value)["model"] == until_model for r in found):
                break
    finally:
        await consumer.stop()
    return found


async def test_a_high_risk_resident_is_scored_with_reasons_in_the_same_trace(
    worker: str, kafka_bootstrap: str, build: ModuleType
) -> None:
    resident_key = "r_" + uuid.uuid4().hex
    history = build.high_risk_history(resident_key)
    trace_ids = await _send_with_traces(kafka_bootstrap, history)
    records = await _scores_for(kafka_bootstrap, resident_key, until_model="falls")
    falls = [r for r in records if json.loads(r.value)["model"] == "falls"]
    assert falls, "no falls score arrived on risk.scores.v1"
    record = falls[-1]
    score = RiskScored.model_validate_json(record.value)
    assert score.band == "high"
    assert score.reasons and all(reason.text for reason in score.reasons)
    traceparents = [value.decode() for key, value in record.headers if key == "traceparent"]
    assert len(traceparents) == 1, "exactly one traceparent, from the aiokafka instrumentation"
    assert traceparents[0].split("-")[1] == trace_ids[score.triggered_by]

    async with httpx.AsyncClient() as client:
        for _ in range(50):
            stats = (await client.get(f"{worker}/stats")).json()
            if stats["events_consumed"] >= len(history):
                break
            await asyncio.sleep(0.1)
        assert (await client.get(f"{worker}/healthz")).json() == {"status": "ok"}
    assert {
        "events_consumed",
        "events_applied",
        "duplicates_ignored",
        "scores_emitted",
        "residents",
    } <= set(stats)
    assert stats["events_applied"] >= len(
        history
    )  # the session broker may hold other tests' events
    assert stats["scores_emitted"] >= 1
