"""The worker on the real (Tansu) broker: shadow candidates, dead letters, source-system
flags, and two workers sharing the partitions across a rebalance."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from scoring.domain.state import Change, fold
from scoring.entrypoints.pages import partition_of
from scoring.settings import DEFAULT_MODELS_DIR
from shared.codec import decode
from shared.events import ResidentFlagsChanged, RiskScored

pytestmark = pytest.mark.integration


def _uuid(value: bytes | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value.decode()) if value else None
    except ValueError:
        return None


async def _produce_raw(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=2_000_000)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


def test_shadow_candidates_dead_letters_and_flags_on_the_real_broker(
    kafka_bootstrap, tmp_path, build, read_topic_from
):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    for name in ("falls.onnx", "falls.card.json"):
        shutil.copy(DEFAULT_MODELS_DIR / name, shadow / name)
    worker = build.Worker(kafka_bootstrap, tmp_path)
    worker.env["PROACTIVE_SCORING_SHADOW_MODELS_DIR"] = str(shadow)
    worker.start()
    try:
        key = "r_" + uuid.uuid4().hex
        history = build.high_risk_history(key)
        before = worker.stats()
        poison = [b"{not json", b'{"schema_version": 99}', b"x" * 1_100_000]
        asyncio.run(_produce_raw(kafka_bootstrap, "resident.events.v1", poison))
        died = build.resident_event(
            "health.hospital_discharges",
            "H9",
            {"spell_id": "H9", "admitted_on": "2025-07-01", "discharged_on": "2025-07-03"}
            | {"reason": "other", "destination": "died"},
            at=40,
            resident_key=key,
        )
        asyncio.run(build.produce(kafka_bootstrap, "resident.events.v1", history))
        wanted = before["events_consumed"] + len(poison) + len(history)
        worker.wait(lambda: worker.stats()["events_consumed"] >= wanted, 90, "through the batch")
        worker.wait(lambda: worker.stats()["events_unacknowledged"] == 0, 30, "all acknowledged")

        def about(resident):  # type: ignore[no-untyped-def]
            return lambda record: record.key == resident.encode()

        served = read_topic_from(kafka_bootstrap, "risk.scores.v1", about(key), want=3)
        shadowed = read_topic_from(kafka_bootstrap, "risk.scores.shadow.v1", about(key), want=1)
        assert {decode(r.value, RiskScored).model for r in served} == {
            "falls",
            "homelessness",
            "frailty",
        }
        # Shadow scores carry no hysteresis: one each time the resident is scored.
        assert {decode(r.value, RiskScored).model for r in shadowed} == {"falls"}
        assert dict(served[0].headers)["proactive.scored_by"] == worker.stats()["worker"].encode()

        letters = read_topic_from(
            kafka_bootstrap,
            "resident.events.deadletter.v1",
            lambda r: r.value in poison or len(r.value) == 64 * 1024,
            want=3,
        )
        reasons = {dict(r.headers)["proactive.reason"].decode() for r in letters}
        assert len(letters) == 3 and all(reasons), reasons
        assert worker.stats()["dead_lettered"] >= 3

        # A death recorded by the hospital: a flag for outreach, and no score after it.
        scores_before = worker.stats()["scores_emitted"]
        asyncio.run(build.produce(kafka_bootstrap, "resident.events.v1", [died]))
        flags = read_topic_from(
            kafka_bootstrap,
            "resident.flags.v1",
            lambda r: r.key == key.encode() and b"deceased" in r.value,
        )
        assert "deceased" in decode(flags[-1].value, ResidentFlagsChanged).flags
        worker.wait(lambda: worker.stats()["events_unacknowledged"] == 0, 30, "acknowledged")
        assert worker.stats()["scores_emitted"] == scores_before
    finally:
        worker.stop()


def _fall(day: int, n: int, key: str, build):  # type: ignore[no-untyped-def]
    date = f"2025-07-{day:02d}"
    return build.resident_event(
        "social_care.contacts",
        f"SCX{n}",
        {**build.fall_contact(date), "contact_id": f"SCX{n}"},
        at=30 + day,
        resident_key=key,
    )


def test_two_workers_share_the_partitions_and_each_resident_is_scored_by_its_owner(
    kafka_bootstrap, tmp_path, build, read_topic_from
):
    residents = ["r_" + uuid.uuid4().hex for _ in range(24)]
    first = [event for key in residents for event in build.high_risk_history(key)]
    first_worker = build.Worker(kafka_bootstrap, _folder(tmp_path / "a"))
    second_worker = build.Worker(kafka_bootstrap, _folder(tmp_path / "b"))
    for worker in (first_worker, second_worker):
        worker.env["PROACTIVE_SCORING_HYSTERESIS_DELTA"] = "0"  # every change is a score
    first_worker.start()
    try:
        asyncio.run(build.produce(kafka_bootstrap, "resident.events.v1", first))
        first_worker.wait(
            lambda: all(first_worker.get(f"/residents/{k}").status_code == 200 for k in residents),
            90,
            "holding every resident",
        )
        second_worker.start()

        def shared() -> bool:
            mine = set(first_worker.stats().get("partitions", []))
            theirs = set(second_worker.stats().get("partitions", []))
            return bool(mine) and bool(theirs) and not mine & theirs and len(mine | theirs) == 4

        first_worker.wait(shared, 120, "sharing the partitions with a second worker")
        owner = {}
        for worker in (first_worker, second_worker):
            stats = worker.stats()
            for partition in stats["partitions"]:
                owner[partition] = stats["worker"]

        second = [_fall(day=5, n=1, key=key, build=build) for key in residents]
        asyncio.run(build.produce(kafka_bootstrap, "resident.events.v1", second))
        triggers = {event.event_id: event.resident_key for event in second}
        by_resident: dict[str, set[str]] = {}

        def after_rebalance(record) -> bool:  # type: ignore[no-untyped-def]
            score = decode(record.value, RiskScored)
            if score.triggered_by not in triggers:
                return False
            scored_by = dict(record.headers)["proactive.scored_by"].decode()
            first = score.resident_key not in by_resident
            by_resident.setdefault(score.resident_key, set()).add(scored_by)
            return first

        read_topic_from(
            kafka_bootstrap, "risk.scores.v1", after_rebalance, want=len(residents), timeout_s=120
        )
        assert set(by_resident) == set(residents), "every resident scored after the rebalance"
        for key, workers in by_resident.items():
            assert workers == {owner[partition_of(key)]}, (key, workers, owner)

        # Each resident's state is held by its partition's owner, and it is the state a
        # rebuild from the whole history gives (the new owner restored it from the changelog).
        for key in residents:
            expected = fold([Change.from_event(e) for e in first + second if e.resident_key == key])
            holders = [w for w in (first_worker, second_worker) if w.stats()["worker"] == owner[
                partition_of(key)]]  # fmt: skip
            deadline = time.monotonic() + 60
            while True:
                held = holders[0].get(f"/residents/{key}")
                if held.status_code == 200 and held.json()["rows"] == expected.to_json()["rows"]:
                    break
                assert time.monotonic() < deadline, (key, held.status_code, held.text[:300])
                time.sleep(0.5)
            other = next(w for w in (first_worker, second_worker) if w is not holders[0])
            assert other.get(f"/residents/{key}").status_code == 404
    finally:
        second_worker.stop()
        first_worker.stop()


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
