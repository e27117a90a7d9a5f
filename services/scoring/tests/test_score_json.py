"""The worker writes each score's JSON directly; it must be exactly what the contract's
model would write, for any score it can make."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import context as otel_context

from scoring.adapters.onnx_models import ModelRegistry
from scoring.domain.explain import band_for, top_reasons
from scoring.handlers import PendingScore, new_event_ids, risk_scored_json
from scoring.settings import DEFAULT_MODELS_DIR
from shared.codec import decode, encode
from shared.events import RiskScored

MODELS = ModelRegistry.load(DEFAULT_MODELS_DIR)
optional_text = st.none() | st.text(min_size=1, max_size=12)


@pytest.mark.unit
@settings(max_examples=150, deadline=None)
@given(
    model_name=st.sampled_from(sorted(MODELS.models)),
    probability=st.floats(0.0, 1.0),
    contributions=st.lists(
        st.floats(-5, 5, width=32), min_size=len(MODELS.models["falls"].feature_names),
        max_size=len(MODELS.models["falls"].feature_names),
    ),
    age_band=optional_text,
    ward=optional_text,
    sex=optional_text,
    ethnicity=optional_text,
    microsecond=st.integers(0, 999_999),
)  # fmt: skip
def test_a_score_written_directly_is_the_contract_models_json(
    model_name: str,
    probability: float,
    contributions: list[float],
    age_band: str | None,
    ward: str | None,
    sex: str | None,
    ethnicity: str | None,
    microsecond: int,
) -> None:
    model = MODELS.models[model_name]
    now = datetime(2026, 11, 27, 10, 15, 2, microsecond, tzinfo=UTC)
    vector = np.array(contributions, dtype=np.float32)
    item = PendingScore(
        resident_key="r_" + "c" * 32,
        features=np.zeros(len(contributions), dtype=np.float32),
        feature_hash="f" * 16,
        triggered_by=uuid.uuid4(),
        age_band=age_band,
        ward=ward,
        trace_context=otel_context.get_current(),
        published_at=now,
        sex=sex,
        ethnicity=ethnicity,
    )
    event_id = uuid.uuid4()
    written = risk_scored_json(item, model, probability, vector, now, event_id)
    validated = RiskScored(
        event_id=event_id,
        occurred_at=now,
        produced_at=now,
        resident_key=item.resident_key,
        source="scoring",
        model=model_name,  # type: ignore[arg-type]
        model_version=model.version,
        probability=probability,
        band=band_for(probability, model.thresholds),
        reasons=top_reasons(vector, model.feature_names, model.reasons),
        feature_hash=item.feature_hash,
        triggered_by=item.triggered_by,
        age_band=age_band,
        ward=ward,
        sex=sex,
        ethnicity=ethnicity,
    )
    assert written == encode(validated)
    assert decode(written, RiskScored) == validated


@pytest.mark.unit
def test_event_ids_are_distinct_version_4_uuids() -> None:
    ids = list(new_event_ids(1_000))
    assert len(set(ids)) == 1_000
    assert {event_id.version for event_id in ids} == {4}
    assert {event_id.variant for event_id in ids} == {uuid.RFC_4122}
