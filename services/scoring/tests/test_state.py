"""Folding resident events into state: order, duplicates and deletes."""

from __future__ import annotations

import itertools
from types import ModuleType

import pytest

from scoring.domain.state import Change, Outcome, ResidentState, fold


def _rent(build: ModuleType, weeks: float, day: int, **extra: object):
    return Change.from_event(
        build.resident_event(
            "housing.rent_accounts",
            "T1",
            {"tenancy_ref": "T1", "weeks_in_arrears": weeks, **extra},
            at=day,
        )
    )


@pytest.mark.unit
def test_a_late_event_does_not_overwrite_a_newer_version_of_the_same_row(build: ModuleType) -> None:
    state = ResidentState()
    assert state.apply(_rent(build, 9.0, day=10)) is Outcome.APPLIED
    assert state.apply(_rent(build, 2.0, day=3)) is Outcome.STALE
    assert state.live_rows("housing.rent_accounts")[0]["weeks_in_arrears"] == 9.0


@pytest.mark.unit
def test_a_redelivered_event_is_counted_as_a_duplicate_and_changes_nothing(
    build: ModuleType,
) -> None:
    change = _rent(build, 4.0, day=1)
    state = ResidentState()
    state.apply(change)
    before = state.to_json()
    assert state.apply(change) is Outcome.DUPLICATE
    assert state.to_json() == before


@pytest.mark.unit
def test_every_order_of_the_same_events_folds_to_the_same_rows(build: ModuleType) -> None:
    changes = [
        Change.from_event(build.resident_event("people.residents", "P1", build.person(80), at=0)),
        _rent(build, 1.0, day=2),
        _rent(build, 5.0, day=4),
        Change.from_event(
            build.resident_event("housing.rent_accounts", "T1", {}, at=6, change="delete")
        ),
        Change.from_event(
            build.resident_event(
                "social_care.contacts", "SC1", build.fall_contact("2025-06-03"), at=3
            )
        ),
    ]
    expected = fold(changes).rows
    for order in itertools.permutations(changes):
        assert fold(list(order)).rows == expected


@pytest.mark.unit
def test_a_delete_is_not_undone_by_an_older_upsert_arriving_late(build: ModuleType) -> None:
    state = ResidentState()
    state.apply(
        Change.from_event(
            build.resident_event("housing.rent_accounts", "T1", {}, at=5, change="delete")
        )
    )
    assert state.apply(_rent(build, 3.0, day=2)) is Outcome.STALE
    assert state.live_rows("housing.rent_accounts") == []


@pytest.mark.unit
def test_state_survives_a_round_trip_through_its_stored_form(build: ModuleType) -> None:
    state = fold([_rent(build, 1.5, day=1), _rent(build, 2.5, day=2)])
    state.scores["falls"] = (0.3, "high")
    state.feature_hash = "abc"
    assert ResidentState.from_json(state.to_json()) == state
