"""The synthetic borough: deterministic, plausible, and shaped like the data contract."""

from __future__ import annotations

from collections import Counter

import pytest

from proactive.borough import OUTCOMES, WARDS, demo_stream, generate_borough, source_changes
from shared.inbound import RECORD_KEYS, SourceChange


@pytest.fixture(scope="module")
def borough():
    return generate_borough(8000, seed=5)


@pytest.fixture(scope="module")
def changes(borough):
    return source_changes(borough)


@pytest.mark.unit
def test_the_same_seed_makes_the_same_borough_and_another_seed_does_not() -> None:
    first = source_changes(generate_borough(300, seed=1))
    again = source_changes(generate_borough(300, seed=1))
    other = source_changes(generate_borough(300, seed=2))
    assert [c.model_dump() for c in first] == [c.model_dump() for c in again]
    assert [c.model_dump() for c in first] != [c.model_dump() for c in other]


@pytest.mark.unit
def test_outcome_base_rates_are_roughly_those_in_the_facts(borough) -> None:
    adults, older = borough.base_rates(), borough.base_rates(min_age=65)
    assert 0.15 < older["falls"] < 0.4  # about 1 in 3 of 65+ fall a year; fewer need help
    assert 0.003 < adults["homelessness"] < 0.02  # ~14 duties per 1,000 households a year
    assert 0.04 < older["frailty"] < 0.2  # 130-380 fit-to-frail per 1,000 person-years
    assert adults["falls"] < older["falls"]


@pytest.mark.unit
def test_the_borough_has_seventeen_wards_and_mostly_working_age_adults(borough) -> None:
    assert len(WARDS) == 17
    assert {r.ward for r in borough.residents} == set(WARDS)
    share_older = sum(r.age >= 65 for r in borough.residents) / len(borough.residents)
    assert 0.08 < share_older < 0.16


@pytest.mark.unit
def test_every_change_names_its_columns_as_the_data_contract_does(changes) -> None:
    assert Counter(c.table for c in changes).keys() == RECORD_KEYS.keys()
    for change in changes[:5000]:
        SourceChange.model_validate(change.model_dump())  # the generator skips validation for speed
        assert RECORD_KEYS[change.table] in change.record
    rent = next(c for c in changes if c.table == "housing.rent_accounts")
    assert isinstance(rent.record["balance_pence"], int)
    assert isinstance(rent.record["weeks_in_arrears"], float)
    person = next(c for c in changes if c.table == "people.residents")
    assert str(person.record["postcode"])[:2] in {"IG", "RM"}
    assert len(str(person.record["date_of_birth"])) == 10


@pytest.mark.unit
def test_source_event_ids_are_unique(changes) -> None:
    assert len({c.source_event_id for c in changes}) == len(changes)


@pytest.mark.unit
def test_each_resident_row_comes_first_and_a_tenancy_before_its_rent_account(changes) -> None:
    first_seen: dict[str, str] = {}
    tenancies: set[str] = set()
    for change in changes:
        person = change.record.get("person_ref")
        if person is not None:
            first_seen.setdefault(str(person), change.table)
        if change.table == "housing.tenancies":
            tenancies.add(str(change.record["tenancy_ref"]))
        if change.table == "housing.rent_accounts":
            assert change.record["tenancy_ref"] in tenancies
    assert set(first_seen.values()) == {"people.residents"}


@pytest.mark.unit
@pytest.mark.parametrize("n_events", [1, 999, 1000, 2500])
def test_the_demo_stream_has_exactly_the_events_asked_for(n_events: int) -> None:
    stream = demo_stream(n_events, seed=3)
    assert len(stream) == n_events
    assert len({c.source_event_id for c in stream}) == n_events
    assert stream[0].table == "people.residents"


@pytest.mark.unit
def test_the_demo_stream_is_enriched_for_risk(borough) -> None:
    stream = demo_stream(1000, seed=3)
    people = {c.record["person_ref"] for c in stream if c.table == "people.residents"}
    demo = generate_borough(2000, seed=3)
    chosen = [r for r in demo.residents if r.person_ref in people]
    for outcome in OUTCOMES:
        assert sum(r.risk[outcome] for r in chosen) / len(chosen) > 1.5 * (
            sum(r.risk[outcome] for r in demo.residents) / len(demo.residents)
        )


@pytest.mark.unit
def test_twenty_thousand_people_are_generated_in_a_few_seconds() -> None:
    import time

    started = time.perf_counter()
    source_changes(generate_borough(20_000, seed=9))
    assert time.perf_counter() - started < 10
