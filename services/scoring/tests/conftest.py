"""Builders for resident events as ingest writes them, shared by the scoring tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.codec import encode
from shared.events import ResidentEventRecorded
from shared.settings import DEV_SERVICE_TOKEN

SERVICE = {"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"}

RESIDENT = "r_" + "a" * 32
START = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


def resident_event(
    table: str,
    record_key: str,
    attributes: dict[str, Any],
    *,
    at: datetime | int = 0,
    resident_key: str = RESIDENT,
    change: str = "upsert",
    event_id: uuid.UUID | None = None,
) -> ResidentEventRecorded:
    """`at` is a datetime, or whole days after START."""
    occurred = at if isinstance(at, datetime) else START + timedelta(days=at)
    return ResidentEventRecorded(
        event_id=event_id or uuid.uuid4(),
        occurred_at=occurred,
        resident_key=resident_key,
        source="test",
        table=table,
        record_key=record_key,
        change=change,  # type: ignore[arg-type]
        attributes=attributes,
        age_band="85+",
        ward="Heath",
    )


def person(age: int = 86, *, lives_alone: bool = True, deceased: bool = False) -> dict[str, Any]:
    return {
        "age_years": age,
        "sex": "female",
        "ethnicity": "white",
        "preferred_language": "en",
        "lives_alone": lives_alone,
        "deceased": deceased,
        "ward": "Heath",
    }


def fall_contact(day: str) -> dict[str, Any]:
    return {"contact_id": "SC1", "contact_date": day, "reason": "fall", "outcome": "assessment"}


def high_risk_history(resident_key: str = RESIDENT) -> list[ResidentEventRecorded]:
    """An 88-year-old living alone, with falls, a fall admission and home care."""
    events = [resident_event("people.residents", "P1", person(88), at=0, resident_key=resident_key)]
    for n, day in enumerate(("2025-06-02", "2025-06-05", "2025-06-08")):
        events.append(
            resident_event(
                "social_care.contacts",
                f"SC{n}",
                {**fall_contact(day), "contact_id": f"SC{n}"},
                at=n + 1,
                resident_key=resident_key,
            )
        )
        events.append(
            resident_event(
                "health.ambulance_callouts",
                f"AMB{n}",
                {
                    "incident_id": f"AMB{n}",
                    "incident_at": f"{day}T10:00:00+00:00",
                    "category": "fall_conveyed",
                },
                at=n + 1,
                resident_key=resident_key,
            )
        )
    events.append(
        resident_event(
            "health.hospital_discharges",
            "HS1",
            {
                "spell_id": "HS1",
                "admitted_on": "2025-06-08",
                "discharged_on": "2025-06-12",
                "reason": "fall_injury",
                "destination": "usual_residence",
            },
            at=11,
            resident_key=resident_key,
        )
    )
    return events


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
            "PROACTIVE_SCORING_RECOVERY_CONSISTENCY_CHECK": "false",
            "PROACTIVE_SCORING_CHANGELOG_BATCHING": "false",  # the Tansu end-offset defect  # the Tansu defect
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


@pytest.fixture
def build() -> ModuleType:
    """These builders, as a fixture: with --import-mode=importlib tests cannot import conftest."""
    return sys.modules[__name__]
