"""The synthetic borough: deterministic, shaped like Barking and Dagenham and like the data
contract, with the base rates of FACTS.md."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from proactive.borough import (
    OUTCOMES,
    TARGETS,
    WARDS,
    borough_stats,
    demo_stream,
    generate_borough,
    source_changes,
    systematic_draw,
)
from shared.inbound import RECORD_KEYS, SourceChange

STATS_KEYS = {
    "falls_rate_65_plus",
    "falls_rate_80_plus",
    "homelessness_duties_per_1000_households",
    "frailty_mild_plus_65_plus",
    "people",
    "households",
}


@pytest.fixture(scope="module")
def borough():
    return generate_borough(0.1, seed=5)


@pytest.fixture(scope="module")
def changes(borough):
    return source_changes(borough)


@pytest.mark.unit
def test_the_same_seed_makes_the_same_borough_and_another_seed_does_not() -> None:
    first = source_changes(generate_borough(0.005, seed=1))
    again = source_changes(generate_borough(0.005, seed=1))
    other = source_changes(generate_borough(0.005, seed=2))
    assert [c.model_dump() for c in first] == [c.model_dump() for c in again]
    assert [c.model_dump() for c in first] != [c.model_dump() for c in other]


@pytest.mark.unit
@pytest.mark.parametrize(("scale", "seed"), [(0.1, 5), (0.1, 17), (0.05, 8)])
def test_base_rates_are_within_ten_per_cent_of_the_facts(scale: float, seed: int) -> None:
    stats = borough_stats(scale, seed)
    for name, target in TARGETS.items():
        assert abs(stats[name] - target) <= 0.1 * target, (name, stats[name], target)


@pytest.mark.unit
def test_a_tenth_of_the_borough_has_a_tenth_of_its_people_and_households(borough) -> None:
    stats = borough.stats()
    assert set(stats) >= STATS_KEYS
    assert stats["people"] == 21_890
    assert stats["households"] == 7_390
    assert 2.9 < stats["people"] / stats["households"] < 3.0  # about 2.96 people each


@pytest.mark.unit
def test_only_adults_are_in_the_resident_index_and_the_ages_match_the_census(borough) -> None:
    ages = np.array([r.age for r in borough.residents])
    assert ages.min() >= 18
    older = int((ages >= 65).sum())
    assert abs(older - 1_905) <= 1  # 19,050 aged 65+ at full scale
    children = borough.people - len(borough.residents)
    assert 5_715 < children < 5_715 + 700  # 0-15s plus the 16-17s the index leaves out


@pytest.mark.unit
def test_households_have_one_reference_person_and_share_ward_and_tenure(borough) -> None:
    by_household: dict[int, list] = {}
    for resident in borough.residents:
        by_household.setdefault(resident.household, []).append(resident)
    heads = [r for r in borough.residents if r.household_head]
    assert len(heads) == borough.households
    for members in by_household.values():
        assert sum(r.household_head for r in members) == 1
        assert len({r.ward for r in members}) == 1
        assert len({r.tenure for r in members}) == 1
        assert all(r.household_size >= len(members) for r in members)
    alone = Counter(r.lives_alone for r in borough.residents if r.age >= 65)
    assert 0.25 < alone[True] / sum(alone.values()) < 0.45


@pytest.mark.unit
def test_the_borough_has_seventeen_wards(borough) -> None:
    assert len(WARDS) == 17
    assert {r.ward for r in borough.residents} == set(WARDS)


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
def test_life_goes_on_with_moves_endings_deletes_and_deaths(changes) -> None:
    kinds = Counter((c.table, c.op) for c in changes)
    assert kinds[("social_care.care_packages", "delete")] > 0
    assert kinds[("social_care.contacts", "delete")] > 0
    deletes = [c for c in changes if c.op == "delete"]
    assert all(c.record == {RECORD_KEYS[c.table]: c.record[RECORD_KEYS[c.table]]} for c in deletes)
    residents = Counter(
        str(c.record["person_ref"]) for c in changes if c.table == "people.residents"
    )
    assert sum(n > 1 for n in residents.values()) > 100  # moved or died
    assert any(c.record.get("deceased_date") for c in changes if c.table == "people.residents")
    assert any(c.record.get("end_date") for c in changes if c.table == "social_care.care_packages")
    assert any(c.record.get("status") == "ended" for c in changes if c.table == "benefits.claims")


@pytest.mark.unit
def test_a_row_is_deleted_only_after_it_was_created(changes) -> None:
    created: set[tuple[str, str]] = set()
    for change in changes:
        slot = (change.table, str(change.record[RECORD_KEYS[change.table]]))
        if change.op == "delete":
            assert slot in created
        created.add(slot)


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
def test_outcomes_are_drawn_only_for_the_people_each_model_is_for(borough) -> None:
    for resident in borough.residents:
        for outcome in OUTCOMES:
            if not resident.eligible[outcome]:
                assert resident.labels[outcome] == 0
        assert resident.eligible["homelessness"] == (
            resident.household_head and not resident.deceased
        )


@pytest.mark.unit
def test_systematic_draws_keep_each_chance_and_land_on_the_expected_total() -> None:
    rng = np.random.default_rng(1)
    chance = np.array([0.5, 0.1, 0.9, 0.3] * 2500)
    totals = []
    firsts = []
    for _ in range(400):
        drawn = systematic_draw(rng, chance)
        totals.append(int(drawn.sum()))
        firsts.append(drawn[:4])
    assert set(totals) <= {4499, 4500, 4501}
    assert np.allclose(np.mean(firsts, axis=0), [0.5, 0.1, 0.9, 0.3], atol=0.08)


@pytest.mark.unit
@pytest.mark.parametrize("n_events", [1, 999, 1000, 2500])
def test_the_demo_stream_has_exactly_the_events_asked_for(n_events: int) -> None:
    stream = demo_stream(n_events, seed=3)
    assert len(stream) == n_events
    assert len({c.source_event_id for c in stream}) == n_events
    assert stream[0].table == "people.residents"


@pytest.mark.unit
def test_the_demo_stream_is_enriched_for_risk() -> None:
    stream = demo_stream(1000, seed=3)
    people = {c.record["person_ref"] for c in stream if c.table == "people.residents"}
    demo = generate_borough(0.02, seed=3)
    chosen = [r for r in demo.residents if r.person_ref in people]
    for outcome in OUTCOMES:
        assert sum(r.risk[outcome] for r in chosen) / len(chosen) > 1.5 * (
            sum(r.risk[outcome] for r in demo.residents) / len(demo.residents)
        )


@pytest.mark.unit
def test_the_borough_command_prints_the_base_rates_as_json_last() -> None:
    import typer
    from typer.testing import CliRunner

    from proactive.commands.borough import borough as borough_command

    app = typer.Typer()
    app.command()(borough_command)
    app.command()(lambda: None)  # two commands, so typer keeps the command name
    result = CliRunner().invoke(app, ["borough", "--scale", "0.05", "--stats", "--json"])
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last) >= STATS_KEYS
    assert last["people"] == 10_945


@pytest.mark.unit
def test_a_tenth_of_the_borough_is_made_in_a_few_seconds() -> None:
    """Not a timed test: it prints the figure (the full borough takes about ten seconds)."""
    import time

    started = time.perf_counter()
    changes = source_changes(generate_borough(0.1, seed=9))
    print(f"0.1 scale: {len(changes)} events in {time.perf_counter() - started:.1f} s")
