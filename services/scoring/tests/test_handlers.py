"""The scoring service with a dict for a table, the committed models and a list for a topic."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from scoring.adapters.onnx_models import ModelRegistry
from scoring.domain.features import FEATURE_NAMES
from scoring.handlers import ScoringService
from scoring.settings import DEFAULT_MODELS_DIR
from shared.codec import encode
from shared.events import RiskScored

MODELS = ModelRegistry.load(DEFAULT_MODELS_DIR)


class Harness:
    def __init__(self, **options: Any) -> None:
        self.table: dict[str, Any] = {}
        self.published: list[RiskScored] = []
        self.trace_ids: list[int] = []
        self.service = ScoringService(self.table, MODELS, self._publish, **options)

    async def _publish(self, score: RiskScored) -> None:
        self.published.append(score)
        self.trace_ids.append(trace.get_current_span().get_span_context().trace_id)

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
    assert set(harness.table[build.RESIDENT]["scores"]) == {"falls", "homelessness", "frailty"}


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
