"""Drift: the population stability index of each feature and score against the training
distribution in the cards, and the alarm when a stream moves away from it."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.adapters.onnx_models import MODEL_NAMES, ModelRegistry
from scoring.domain.drift import bin_shares, cut_points, measure_drift, psi
from scoring.domain.features import FEATURE_NAMES
from scoring.domain.state import ResidentState
from scoring.monitoring import drift_report
from scoring.settings import DEFAULT_MODELS_DIR


@pytest.mark.unit
def test_psi_matches_a_hand_computed_case() -> None:
    # (0.3-0.5)ln(0.3/0.5) + (0.7-0.5)ln(0.7/0.5) = 0.1022 + 0.0673 = 0.1695
    assert psi([0.5, 0.5], [0.3, 0.7]) == pytest.approx(0.16946, abs=1e-4)
    assert psi([0.25, 0.75], [0.25, 0.75]) == 0.0


@pytest.mark.unit
def test_bins_hold_values_at_or_below_their_upper_edge() -> None:
    shares = bin_shares(np.array([0.0, 0.0, 1.0, 2.0, 5.0]), [0.0, 1.0])
    assert shares.tolist() == [0.4, 0.2, 0.4]


@pytest.mark.unit
def test_a_yes_no_feature_has_one_cut_point() -> None:
    values = np.array([0.0] * 90 + [1.0] * 10)
    assert cut_points(values) == [0.0]


@pytest.mark.unit
def test_too_few_residents_are_reported_but_never_alarmed() -> None:
    card = {"distribution": {"features": {"age_years": {"edges": [50.0], "proportions": [0.5, 0.5]}}, "score": {"edges": [0.5], "proportions": [0.5, 0.5]}}}  # fmt: skip
    report = measure_drift(
        {"falls": card}, np.full((10, 1), 90.0), ["age_years"], {"falls": np.full(10, 0.9)}
    )
    assert report["alarms"] == []
    assert {m["level"] for m in report["measures"]} == {"too_few_residents"}


@pytest.mark.unit
def test_every_card_carries_a_training_distribution_for_every_feature_and_its_score() -> None:
    models = ModelRegistry.load(DEFAULT_MODELS_DIR)
    for name in MODEL_NAMES:
        distribution = models.models[name].card["distribution"]
        assert set(distribution["features"]) == set(FEATURE_NAMES)
        for reference in [*distribution["features"].values(), distribution["score"]]:
            assert len(reference["proportions"]) == len(reference["edges"]) + 1
            assert sum(reference["proportions"]) == pytest.approx(1.0, abs=1e-5)


def _borough_states(seed: int) -> list[tuple[int, dict]]:
    """(age, stored state) of every adult of a small fresh borough, folded as the worker
    folds what ingest publishes."""
    pytest.importorskip("sklearn")
    from proactive.borough import generate_borough
    from scoring.training import change_like_ingest

    states = []
    for resident in generate_borough(0.03, seed=seed).residents:
        state = ResidentState()
        for row in resident.rows:
            state.apply(change_like_ingest(row))
        states.append((resident.age, state.to_json()))
    return states


@pytest.mark.unit
def test_a_borough_like_the_training_one_raises_no_drift_alarm_and_a_skewed_stream_does() -> None:
    models = ModelRegistry.load(DEFAULT_MODELS_DIR)
    states = _borough_states(seed=31)

    usual = drift_report([s for _, s in states], models)
    assert usual["residents"] > 3000
    assert usual["alarms"] == [], usual["alarms"]

    # Deliberately skewed: a stream of only residents aged 70 and over, as if a source
    # system had started sending older people's records alone.
    skewed = drift_report([s for age, s in states if age >= 70], models)
    alarmed = {(a["model"], a["measure"]) for a in skewed["alarms"]}
    assert ("falls", "age_years") in alarmed
    assert ("falls", "score") in alarmed
    assert ("frailty", "score") in alarmed
    assert all(a["psi"] > 0.2 for a in skewed["alarms"])
