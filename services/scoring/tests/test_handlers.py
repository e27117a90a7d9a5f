"""The scoring service with a dict for a table, the committed models and a list for a topic."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from scoring.adapters.onnx_models import ModelRegistry
from scoring.domain.features import FEATURE_NAMES
from scoring.domain.state import read_stored
from scoring.handlers import PUBLISH_AHEAD, Outgoing, ScoringService
from scoring.settings import DEFAULT_MODELS_DIR
from shared.codec import decode, encode
from shared.events import ResidentFlagsChanged, RiskScored
from shared.telemetry import context_from_headers

MODELS = ModelRegistry.load(DEFAULT_MODELS_DIR)


class Harness:
    """The service with a dict for its table and lists for its topics and acknowledgements."""

    def __init__(self, **options: Any) -> None:
        self.table: dict[str, Any] = {}
        self.records: list[Outgoing] = []
        self.published: list[RiskScored] = []
        self.trace_ids: list[int] = []
        self.acknowledged: list[Any] = []
        self.fail_next_publish = False
        self.acknowledged_when_publish_failed: list[Any] | None = None
        self.service = ScoringService(
            self.table, MODELS, self._publish, acknowledge=self._acknowledge, **options
        )

    async def _publish(self, records: Sequence[Outgoing]) -> None:
        if self.fail_next_publish:
            self.fail_next_publish = False
            self.acknowledged_when_publish_failed = list(self.acknowledged)
            raise ConnectionError("the broker went away")
        self.records.extend(records)
        for record in records:
            if record.topic == "risk.scores.v1":
                self.published.append(decode(record.value, RiskScored))
                parent = trace.get_current_span(context_from_headers(record.headers))
                self.trace_ids.append(parent.get_span_context().trace_id)

    async def _acknowledge(self, receipts: Sequence[Any]) -> None:
        self.acknowledged.extend(receipts)

    def on(self, topic: str) -> list[Outgoing]:
        return [record for record in self.records if record.topic == topic]

    async def send(self, *events: Any) -> None:
        for event in events:
            await self.service.record(encode(event))


@pytest.fixture
def harness() -> Harness:
    return Harness(batch_size=1000)


@pytest.mark.unit
async def test_a_high_risk_resident_gets_three_explained_scores_in_one_model_call(
    harness: Harness, build: ModuleType
) -> None:
    history = build.high_risk_history()
    await harness.send(*history)
    assert await harness.service.flush() == 3
    assert harness.service.stats.model_batches == 1
    by_model = {score.model: score for score in harness.published}
    assert set(by_model) == {"falls", "homelessness", "frailty"}
    falls = by_model["falls"]
    assert falls.band == "high"
    assert 1 <= len(falls.reasons) <= 3
    assert {r.feature for r in falls.reasons} <= set(FEATURE_NAMES)
    assert falls.triggered_by == history[-1].event_id
    assert (falls.resident_key, falls.age_band, falls.ward, falls.source) == (
        build.RESIDENT,
        "85+",
        "Heath",
        "scoring",
    )
    assert len(falls.feature_hash) == 64
    # Carried for fairness monitoring only (the person() builder's values).
    assert (falls.sex, falls.ethnicity) == ("female", "white")


@pytest.mark.unit
async def test_counters_add_up_for_duplicates_stale_and_malformed_records(
    harness: Harness, build: ModuleType
) -> None:
    first = build.resident_event("people.residents", "P1", build.person(70), at=5)
    older = build.resident_event("people.residents", "P1", build.person(71), at=1)
    await harness.send(first, first, older)
    await harness.service.record(b"{not json")
    stats = harness.service.counters()
    assert stats["events_consumed"] == 4
    assert (stats["events_applied"], stats["duplicates_ignored"], stats["stale_ignored"]) == (
        1,
        1,
        1,
    )
    assert stats["events_rejected"] == 1
    assert stats["residents"] == 1
    assert stats["scores_pending"] == 1


@pytest.mark.unit
async def test_an_event_that_changes_no_feature_causes_no_new_score(
    harness: Harness, build: ModuleType
) -> None:
    await harness.send(build.resident_event("people.residents", "P1", build.person(84), at=0))
    await harness.service.flush()
    emitted = len(harness.published)
    changed_language = {**build.person(84), "preferred_language": "ro"}
    await harness.send(build.resident_event("people.residents", "P1", changed_language, at=1))
    assert harness.service.pending == {}
    await harness.service.flush()
    assert len(harness.published) == emitted


@pytest.mark.unit
async def test_a_small_move_in_the_same_band_is_not_re_emitted(build: ModuleType) -> None:
    harness = Harness(batch_size=1000, hysteresis_delta=0.5)
    await harness.send(build.resident_event("people.residents", "P1", build.person(60), at=0))
    await harness.service.flush()
    assert len(harness.published) == 3
    await harness.send(
        build.resident_event("revenues.council_tax_accounts", "CT1", {"arrears_pence": 5_000}, at=1)
    )
    await harness.service.flush()
    assert len(harness.published) == 3
    assert harness.service.stats.scores_unchanged == 3
    # The suppressed scores still remember what was last sent, across a state round trip.
    await harness.send(
        build.resident_event("social_care.contacts", "SC1", build.fall_contact("2025-06-03"), at=2)
    )
    stored = read_stored(harness.table[build.RESIDENT])
    assert stored is not None
    assert set(stored["scores"]) == {"falls", "homelessness", "frailty"}


@pytest.mark.unit
async def test_a_deceased_resident_is_never_scored_even_if_a_score_was_queued(
    harness: Harness, build: ModuleType
) -> None:
    await harness.send(*build.high_risk_history())
    assert harness.service.pending
    await harness.send(
        build.resident_event("people.residents", "P1", build.person(88, deceased=True), at=20)
    )
    assert await harness.service.flush() == 0
    assert harness.published == []


@pytest.mark.unit
async def test_each_score_is_published_in_the_trace_of_the_event_that_triggered_it(
    harness: Harness, build: ModuleType
) -> None:
    trace_ids = {}
    for n, key in enumerate(("r_" + "1" * 32, "r_" + "2" * 32)):
        parent = SpanContext(
            trace_id=0xABC0 + n, span_id=0x10 + n, is_remote=True, trace_flags=TraceFlags(1)
        )
        token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
        try:
            await harness.send(
                build.resident_event("people.residents", "P1", build.person(80), resident_key=key)
            )
        finally:
            otel_context.detach(token)
        trace_ids[key] = parent.trace_id
    await harness.service.flush()
    assert len(harness.published) == 6
    for score, trace_id in zip(harness.published, harness.trace_ids, strict=True):
        assert trace_id == trace_ids[score.resident_key]


@pytest.mark.unit
async def test_events_are_acknowledged_only_once_their_scores_are_published(
    harness: Harness, build: ModuleType
) -> None:
    history = build.high_risk_history()
    for n, event in enumerate(history):
        await harness.service.record(encode(event), receipt=n)
    assert harness.acknowledged == []  # queued, not yet out
    harness.fail_next_publish = True
    # The first attempt fails; the sender tries again and the broker takes the batch.
    await harness.service.flush()
    assert harness.acknowledged_when_publish_failed == []  # a failed publish acknowledges nothing
    assert len(harness.published) == 3  # once each, not again for the failed attempt
    assert harness.acknowledged == list(range(len(history)))


@pytest.mark.unit
async def test_the_stream_goes_on_while_a_batch_is_on_its_way_and_waits_when_too_many_are(
    build: ModuleType,
) -> None:
    broker_answers = asyncio.Event()
    sent: list[Sequence[Outgoing]] = []

    async def slow_publish(records: Sequence[Outgoing]) -> None:
        await broker_answers.wait()
        sent.append(records)

    acknowledged: list[Any] = []

    async def acknowledge(receipts: Sequence[Any]) -> None:
        acknowledged.extend(receipts)

    service = ScoringService({}, MODELS, slow_publish, acknowledge=acknowledge, batch_size=1)
    residents = [f"r_{n:032x}" for n in range(PUBLISH_AHEAD + 3)]
    events = [
        build.resident_event("people.residents", f"P{n}", build.person(88), resident_key=key)
        for n, key in enumerate(residents)
    ]
    # Each event fills a batch of one; the first few are handed over without waiting.
    for n, event in enumerate(events[: PUBLISH_AHEAD + 1]):
        await asyncio.wait_for(service.record(encode(event), receipt=n), timeout=2)
    assert sent == [] and acknowledged == []  # nothing has reached the broker yet
    # With PUBLISH_AHEAD batches waiting (and one being sent), the next flush must wait.
    blocked = asyncio.create_task(service.record(encode(events[PUBLISH_AHEAD + 1]), receipt=-1))
    await asyncio.sleep(0.05)
    assert not blocked.done()
    broker_answers.set()
    await asyncio.wait_for(blocked, timeout=2)
    await service.flush()
    # In order, each batch acknowledged only after it was published.
    assert [decode(batch[0].value, RiskScored).resident_key for batch in sent] == residents[
        : PUBLISH_AHEAD + 2
    ]
    assert acknowledged == [*range(PUBLISH_AHEAD + 1), -1]


@pytest.mark.unit
async def test_a_redelivery_after_a_crash_scores_what_was_never_published(
    harness: Harness, build: ModuleType
) -> None:
    history = build.high_risk_history()
    await harness.send(*history)
    # The worker dies here: the state was written, the scores were never published.
    restarted = Harness(batch_size=1000)
    restarted.table.update(harness.table)
    await restarted.send(history[-1])  # Faust redelivers what was not acknowledged
    assert restarted.service.stats.duplicates_ignored == 1
    assert await restarted.service.flush() == 3
    assert restarted.service.stats.rescored_after_redelivery == 1
    # ...while a redelivery of something already published costs nothing.
    await restarted.send(history[-1])
    assert await restarted.service.flush() == 0


@pytest.mark.unit
async def test_an_unreadable_record_is_dead_lettered_with_its_reason_and_acknowledged(
    harness: Harness, build: ModuleType
) -> None:
    await harness.service.record(b"{not json", receipt="bad")
    await harness.service.record(b"x" * 200_000, receipt="huge")
    await harness.service.record(
        encode(build.resident_event("people.residents", "P1", build.person(70))), receipt="good"
    )
    await harness.service.flush()
    letters = harness.on("resident.events.deadletter.v1")
    assert len(letters) == 2
    reasons = [dict(letter.headers)["proactive.reason"].decode() for letter in letters]
    assert all(reasons), reasons
    assert dict(letters[1].headers)["proactive.original_bytes"] == b"200000"
    assert len(letters[1].value) == 64 * 1024
    assert harness.acknowledged == ["bad", "huge", "good"]
    assert harness.service.stats.dead_lettered == 2
    assert len(harness.published) == 3  # the stream went on


@pytest.mark.unit
async def test_source_flags_are_published_when_they_change_and_a_deceased_resident_is_not_scored(
    harness: Harness, build: ModuleType
) -> None:
    await harness.send(build.resident_event("people.residents", "P1", build.person(80)))
    assert harness.on("resident.flags.v1") == []  # nothing to say yet
    assessment = {"contact_id": "SC9", "contact_date": "2025-06-02"}
    assessment |= {"reason": "mobility", "outcome": "assessment"}
    await harness.send(build.resident_event("social_care.contacts", "SC9", assessment, at=1))
    await harness.send(build.resident_event("social_care.contacts", "SC9", assessment, at=2))
    await harness.send(
        build.resident_event(
            "health.hospital_discharges",
            "H1",
            {
                "spell_id": "H1",
                "admitted_on": "2025-06-03",
                "discharged_on": "2025-06-04",
                "reason": "other",
                "destination": "died",
            },
            at=3,
        )
    )
    await harness.service.flush()
    flags = [decode(r.value, ResidentFlagsChanged) for r in harness.on("resident.flags.v1")]
    assert [f.flags for f in flags] == [["open_case"], ["deceased", "open_case"]]
    assert "health.hospital_discharges" in flags[1].basis
    assert {f.resident_key for f in flags} == {build.RESIDENT}
    # The score queued before the death was known is dropped, not published.
    assert harness.published == []
    # 120 days on, the assessment no longer keeps the case open.
    later = {"contact_id": "SC10", "contact_date": "2025-10-01"}
    later |= {"reason": "other", "outcome": "signposted"}
    await harness.send(build.resident_event("social_care.contacts", "SC10", later, at=122))
    await harness.service.flush()
    last = decode(harness.on("resident.flags.v1")[-1].value, ResidentFlagsChanged)
    assert last.flags == ["deceased"]


@pytest.mark.unit
async def test_shadow_candidates_score_the_same_batch_into_their_own_topic(
    build: ModuleType,
) -> None:
    harness = Harness(batch_size=1000, shadow=ModelRegistry.load(DEFAULT_MODELS_DIR, ["falls"]))
    await harness.send(*build.high_risk_history())
    assert await harness.service.flush() == 3
    shadow = [decode(r.value, RiskScored) for r in harness.on("risk.scores.shadow.v1")]
    assert [s.model for s in shadow] == ["falls"]
    served = next(s for s in harness.published if s.model == "falls")
    assert shadow[0].probability == served.probability  # the same model, the same features
    assert harness.service.stats.shadow_scores_emitted == 1


@pytest.mark.unit
async def test_an_event_waits_no_longer_than_the_batch_wait(build: ModuleType) -> None:
    harness = Harness(batch_size=1000, max_wait_s=0.05)
    await harness.service.record(encode(build.high_risk_history()[0]), receipt="first")
    assert harness.published == [] and harness.acknowledged == []  # batching, for now
    await asyncio.sleep(0.2)  # no flush called, no timer: the deadline the event set
    assert len(harness.published) == 3
    assert harness.acknowledged == ["first"]
