"""The worker's life on the real (Tansu) broker: killed with SIGKILL mid-stream and
restarted, it holds exactly the state a rebuild from the whole history gives; an opt-out
deletes a resident's state for good; a re-score scores every resident again."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from scoring.domain.state import Change, fold
from shared.codec import encode
from shared.events import ResidentOptedOut, utc_now
from shared.settings import DEV_SERVICE_TOKEN

pytestmark = pytest.mark.integration
SERVICE = {"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"}


class Worker:
    """`python -m scoring` as a separate process that a test can kill and start again."""

    def __init__(self, bootstrap: str, data_dir: Path) -> None:
        from proactive.broker import free_port

        self.port = free_port()
        self.env = {
            **os.environ,
            "PROACTIVE_KAFKA_BOOTSTRAP": bootstrap,
            "PROACTIVE_DATA_DIR": str(data_dir),
            "PROACTIVE_SCORING_PORT": str(self.port),
            "PROACTIVE_TRACES_TO_FILE": "false",
            "PROACTIVE_SCORING_RECOVERY_CONSISTENCY_CHECK": "false",  # the Tansu defect
        }
        self.log = data_dir / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Worker:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scoring"],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait(lambda: self.get("/readyz").status_code == 200, 90, "ready")
        return self

    def get(self, path: str) -> httpx.Response:
        try:
            return httpx.get(self.base + path, headers=SERVICE, timeout=2)
        except httpx.HTTPError:
            return httpx.Response(599)

    def stats(self) -> dict[str, int]:
        response = self.get("/stats")
        return response.json() if response.status_code == 200 else {}

    def wait(self, condition, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            if condition():
                return
            time.sleep(0.2)
        pytest.fail(f"the worker was not {what} within {timeout_s:.0f} s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def produce(bootstrap: str, topic: str, events: list) -> None:  # type: ignore[type-arg]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(topic, encode(event), key=event.resident_key.encode())
    finally:
        await producer.stop()


def histories(build, residents: int, seed: int):  # type: ignore[no-untyped-def]
    """Several events per resident, shuffled across residents, with redeliveries."""
    draw = random.Random(seed)
    events = []
    for _ in range(residents):
        key = "r_" + uuid.uuid4().hex
        events.extend(build.high_risk_history(key))
    draw.shuffle(events)
    redelivered = draw.sample(events, k=len(events) // 10)
    return events + redelivered


def test_a_worker_killed_mid_stream_resumes_with_the_state_a_full_rebuild_gives(
    kafka_bootstrap, tmp_path, build
):
    events = histories(build, residents=30, seed=3)
    half = len(events) // 2
    worker = Worker(kafka_bootstrap, tmp_path).start()
    try:
        consumed_before = worker.stats()["events_consumed"]
        asyncio.run(produce(kafka_bootstrap, "resident.events.v1", events[:half]))
        worker.wait(
            lambda: worker.stats().get("events_consumed", 0) >= consumed_before + half // 2,
            60,
            "half-way",
        )
        worker.kill()  # mid-stream: some events applied, some offsets not yet committed
        asyncio.run(produce(kafka_bootstrap, "resident.events.v1", events[half:]))
        worker.start()
        keys = {event.resident_key for event in events}

        def caught_up() -> bool:
            for key in keys:
                response = worker.get(f"/residents/{key}")
                if response.status_code != 200:
                    return False
                expected = fold([Change.from_event(e) for e in events if e.resident_key == key])
                if set(response.json()["rows"]) != set(expected.rows):
                    return False
            return True

        worker.wait(caught_up, 120, "caught up after the restart")
        for key in keys:
            held = worker.get(f"/residents/{key}").json()
            expected = fold([Change.from_event(e) for e in events if e.resident_key == key])
            rebuilt = expected.to_json()
            assert held["rows"] == rebuilt["rows"]
            assert held["latest"] == rebuilt["latest"]
    finally:
        worker.stop()


def test_an_opt_out_deletes_the_state_and_nothing_more_is_scored_and_a_rescore_scores_everyone(
    kafka_bootstrap, tmp_path, build
):
    leaving, staying = "r_" + uuid.uuid4().hex, "r_" + uuid.uuid4().hex
    worker = Worker(kafka_bootstrap, tmp_path).start()
    try:
        history = build.high_risk_history(leaving) + build.high_risk_history(staying)
        asyncio.run(produce(kafka_bootstrap, "resident.events.v1", history))
        worker.wait(lambda: worker.get(f"/residents/{staying}").status_code == 200, 60, "fed")
        worker.wait(lambda: worker.get(f"/residents/{leaving}").status_code == 200, 60, "fed")
        opt_out = ResidentOptedOut(occurred_at=utc_now(), resident_key=leaving, source="outreach")
        asyncio.run(produce(kafka_bootstrap, "resident.optouts.v1", [opt_out]))
        worker.wait(lambda: worker.get(f"/residents/{leaving}").json() == {"opted_out": True}, 60,
                    "told of the opt-out")  # fmt: skip
        ignored = worker.stats()["opted_out_ignored"]
        later = build.resident_event(
            "social_care.contacts",
            "SC9",
            build.fall_contact("2025-07-01"),
            at=30,
            resident_key=leaving,
        )
        asyncio.run(produce(kafka_bootstrap, "resident.events.v1", [later]))
        worker.wait(lambda: worker.stats()["opted_out_ignored"] > ignored, 60, "ignoring them")
        assert worker.get(f"/residents/{leaving}").json() == {"opted_out": True}

        metrics = worker.get("/metrics")
        assert metrics.status_code == 200
        assert "proactive_events_consumed_total" in metrics.text

        unauthorised = httpx.post(f"{worker.base}/rescore", timeout=5)
        assert unauthorised.status_code == 401
        rescored = httpx.post(f"{worker.base}/rescore", headers=SERVICE, timeout=60).json()
        assert rescored["residents"] >= 1
        assert rescored["rescored"] >= 1
    finally:
        worker.stop()
