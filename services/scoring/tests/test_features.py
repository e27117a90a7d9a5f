"""The feature vector: what it reads, what it leaves out, and its time window."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from scoring.domain.features import (
    FEATURE_NAMES,
    can_be_scored,
    feature_hash,
    feature_vector,
    is_deceased,
)
from scoring.domain.state import Change, fold


def _state(build: ModuleType, events: list) -> object:
    return fold([Change.from_event(e) for e in events])


def _value(vector: np.ndarray, name: str) -> float:
    return float(vector[FEATURE_NAMES.index(name)])


@pytest.mark.unit
def test_a_high_risk_history_shows_in_the_falls_features(build: ModuleType) -> None:
    vector = feature_vector(_state(build, build.high_risk_history()))
    assert vector.dtype == np.float32
    assert vector.shape == (len(FEATURE_NAMES),)
    assert _value(vector, "age_years") == 88
    assert _value(vector, "age_80_plus") == 1
    assert _value(vector, "lives_alone") == 1
    assert _value(vector, "falls_reported_12m") == 3
    assert _value(vector, "ambulance_fall_callouts_12m") == 3
    assert _value(vector, "fall_injury_admissions_12m") == 1


@pytest.mark.unit
def test_ethnicity_sex_and_ward_are_never_features(build: ModuleType) -> None:
    assert not {"ethnicity", "sex", "ward", "preferred_language"} & set(FEATURE_NAMES)
    one = build.person(70)
    other = {
        **one,
        "ethnicity": "black",
        "sex": "male",
        "ward": "Abbey",
        "preferred_language": "ro",
    }
    first = feature_vector(_state(build, [build.resident_event("people.residents", "P1", one)]))
    second = feature_vector(_state(build, [build.resident_event("people.residents", "P1", other)]))
    assert feature_hash(first) == feature_hash(second)


@pytest.mark.unit
def test_a_fall_more_than_a_year_before_the_latest_event_no_longer_counts(
    build: ModuleType,
) -> None:
    events = [
        build.resident_event("people.residents", "P1", build.person(80), at=0),
        build.resident_event("social_care.contacts", "SC1", build.fall_contact("2025-06-01"), at=0),
        build.resident_event("revenues.council_tax_accounts", "CT1", {"arrears_pence": 0}, at=400),
    ]
    assert _value(feature_vector(_state(build, events[:2])), "falls_reported_12m") == 1
    assert _value(feature_vector(_state(build, events)), "falls_reported_12m") == 0


@pytest.mark.unit
def test_numbers_sent_as_strings_and_debezium_dates_are_understood(build: ModuleType) -> None:
    events = [
        build.resident_event("people.residents", "P1", build.person(50), at=0),
        build.resident_event(
            "housing.rent_accounts",
            "T1",
            {"weeks_in_arrears": "12.5", "nosp_served": True, "eviction_date": 20300},
            at=1,
        ),
        # 2025-06-01 is day 20240 since 1970-01-01
        build.resident_event(
            "social_care.contacts", "SC1", {"contact_date": 20240, "reason": "fall"}, at=1
        ),
    ]
    vector = feature_vector(_state(build, events))
    assert _value(vector, "rent_weeks_in_arrears") == 12.5
    assert _value(vector, "possession_notice_served") == 1
    assert _value(vector, "eviction_date_set") == 1
    assert _value(vector, "falls_reported_12m") == 1


@pytest.mark.unit
def test_a_resident_known_only_from_other_tables_or_deceased_cannot_be_scored(
    build: ModuleType,
) -> None:
    rent_only = _state(
        build, [build.resident_event("housing.rent_accounts", "T1", {"weeks_in_arrears": 3})]
    )
    assert not can_be_scored(rent_only)
    died = _state(
        build, [build.resident_event("people.residents", "P1", build.person(90, deceased=True))]
    )
    assert is_deceased(died)
    assert not can_be_scored(died)
