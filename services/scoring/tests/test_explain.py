"""Bands, reasons and hysteresis."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.domain.explain import ReasonText, band_for, should_emit, top_reasons

THRESHOLDS = {"medium": 0.1, "high": 0.3}
NAMES = ("age_years", "lives_alone", "falls_reported_12m", "rent_weeks_in_arrears")
TEXTS = {name: ReasonText(f"text for {name}", f"table.{name}") for name in NAMES}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("probability", "band"),
    [(0.05, "low"), (0.1, "medium"), (0.29, "medium"), (0.3, "high"), (0.9, "high")],
)
def test_bands_follow_the_card_thresholds(probability: float, band: str) -> None:
    assert band_for(probability, THRESHOLDS) == band


@pytest.mark.unit
def test_the_reasons_are_the_three_largest_raising_features_largest_first() -> None:
    reasons = top_reasons(np.array([0.5, -2.0, 1.5, 0.7], dtype=np.float32), NAMES, TEXTS)
    assert [r.feature for r in reasons] == [
        "falls_reported_12m",
        "rent_weeks_in_arrears",
        "age_years",
    ]
    assert reasons[0].text == "text for falls_reported_12m"
    assert reasons[0].source_table == "table.falls_reported_12m"
    assert reasons[0].contribution == pytest.approx(1.5)


@pytest.mark.unit
def test_a_feature_that_lowered_the_score_is_never_given_as_a_reason() -> None:
    reasons = top_reasons(np.array([-0.5, 0.0, 0.2, -0.1], dtype=np.float32), NAMES, TEXTS)
    assert [r.feature for r in reasons] == ["falls_reported_12m"]


@pytest.mark.unit
def test_hysteresis_emits_first_scores_band_changes_and_big_moves_only() -> None:
    assert should_emit(None, 0.2, "medium", 0.02)
    assert not should_emit((0.20, "medium"), 0.21, "medium", 0.02)
    assert should_emit((0.20, "medium"), 0.23, "medium", 0.02)
    assert should_emit((0.29, "medium"), 0.30, "high", 0.02)
