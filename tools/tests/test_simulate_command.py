"""`proactive simulate`: pacing, and native events posted to ingest's API as its contract says."""

from __future__ import annotations

import json

import httpx
import pytest

from proactive.borough import generate_borough, source_changes
from proactive.commands.borough import paced, scale_for, send_native
from shared.inbound import SourceChangeBatch

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pacing_sends_about_rate_times_duration_in_order() -> None:
    clock = FakeClock()
    sent: list[int] = []
    batches: list[int] = []

    def send(batch) -> None:
        sent.extend(batch)
        batches.append(len(batch))

    count = paced(list(range(10_000)), 40, 10, send, clock=clock, sleep=clock.sleep)
    assert count == 400 and sent == list(range(400))
    assert max(batches) <= 20  # about a quarter of a second's worth at a time
    assert clock.now == pytest.approx(9.75)


def test_pacing_stops_when_the_history_runs_out() -> None:
    clock = FakeClock()
    sent: list[int] = []
    count = paced(list(range(30)), 1000, 60, sent.extend, clock=clock, sleep=clock.sleep)
    assert count == 30 and sent == list(range(30))


def test_a_borough_big_enough_for_the_run_is_chosen() -> None:
    assert scale_for(100) == 0.01
    assert scale_for(1e9) == 1.0
    events = len(source_changes(generate_borough(scale_for(20_000), seed=1)))
    assert events >= 20_000


def test_native_events_are_posted_as_source_change_batches_with_the_key() -> None:
    seen: list[SourceChangeBatch] = []

    def ingest(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/events"
        assert request.headers["authorization"] == "Bearer key-1"
        batch = SourceChangeBatch.model_validate(json.loads(request.content))
        seen.append(batch)
        return httpx.Response(
            202, json={"accepted": len(batch.events), "parked": 0, "duplicates": 0}
        )

    changes = source_changes(generate_borough(0.002, seed=2))
    client = httpx.Client(transport=httpx.MockTransport(ingest))
    result = send_native(changes, "http://ingest", "key-1", rate=100_000, duration=1, client=client)
    assert result.sent == result.accepted == len(changes)
    ids = [e.source_event_id for b in seen for e in b.events]
    assert ids == [c.source_event_id for c in changes]
    assert all(len(b.events) <= 1000 for b in seen)


def test_a_refused_batch_is_counted_as_rejected() -> None:
    def ingest(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": "no"})

    changes = source_changes(generate_borough(0.002, seed=2))[:10]
    client = httpx.Client(transport=httpx.MockTransport(ingest))
    result = send_native(changes, "http://ingest", "k", rate=1000, duration=1, client=client)
    assert (result.sent, result.rejected, result.accepted) == (10, 10, 0)
