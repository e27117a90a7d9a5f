"""The worker's life on the real (Tansu) broker: killed with SIGKILL mid-stream and
restarted, it holds exactly the state a rebuild from the whole history gives; an opt-out
deletes a resident's state for good; a re-score scores every resident again."""

from __future__ import annotations

import asyncio
import random
import uuid

import httpx
import pytest

from scoring.domain.state import Change, fold
from shared.codec import decode
from shared.events import ResidentOptedOut, RiskScored, utc_now
from shared.settings import DEV_SERVICE_TOKEN

pytestmark = pytest.mark.integration
SERVICE = {"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"}


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
    kafka_bootstrap, tmp_path, build, read_topic_from
):
    events = histories(build, residents=30, seed=3)
    half = len(events) // 2
    worker = build.Worker(kafka_bootstrap, tmp_path).start()
    try:
        consumed_before = worker.stats()["events_consumed"]
        asyncio.run(build.produce(kafka_bootstrap, "resident.events.v1", events[:half]))
        worker.wait(
            lambda: worker.stats().get("events_consumed", 0) >= consumed_before + half // 2,
            60,
            "half-way",
        )
        worker.kill()  # mid-stream: some events applied, some offsets not yet committed
        asyncio.run(build.produce(kafka_bootstrap, "resident.events.v1", events[half:]))
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
        # No score was lost with the killed worker: events are acknowledged only once their
        # scores are out, so whatever it had queued was redelivered and scored again.
        worker.wait(lambda: worker.stats()["events_unacknowledged"] == 0, 30, "acknowledged")
        first_seen: set[tuple[str, str]] = set()

        def new_pair(record) -> bool:  # type: ignore[no-untyped-def]
            pair = (record.key.decode(), decode(record.value, RiskScored).model)
            if pair[0] not in keys or pair in first_seen:
                return False
            first_seen.add(pair)
            return True

        read_topic_from(kafka_bootstrap, "risk.scores.v1", new_pair, want=3 * len(keys))
        assert first_seen == {(k, m) for k in keys for m in ("falls", "homelessness", "frailty")}
    finally:
        worker.stop()


def test_an_opt_out_deletes_the_state_and_nothing_more_is_scored_and_a_rescore_scores_everyone(
    kafka_bootstrap, tmp_path, build
):
    leaving, staying = "r_" + uuid.uuid4().hex, "r_" + uuid.uuid4().hex
    worker = build.Worker(kafka_bootstrap, tmp_path).start()
    try:
        history = build.high_risk_history(leaving) + build.high_risk_history(staying)
        asyncio.run(build.produce(kafka_bootstrap, "resident.events.v1", history))
        worker.wait(lambda: worker.get(f"/residents/{staying}").status_code == 200, 60, "fed")
        worker.wait(lambda: worker.get(f"/residents/{leaving}").status_code == 200, 60, "fed")
        opt_out = ResidentOptedOut(occurred_at=utc_now(), resident_key=leaving, source="outreach")
        asyncio.run(build.produce(kafka_bootstrap, "resident.optouts.v1", [opt_out]))
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
        asyncio.run(build.produce(kafka_bootstrap, "resident.events.v1", [later]))
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
