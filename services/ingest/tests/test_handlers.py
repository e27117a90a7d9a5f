"""Ingest's handlers against a real SQLite database (no broker: the outbox is the output)."""

from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from ingest.adapters.store import ParkedChange, VaultEntry, create_tables
from ingest.domain.mapping import InvalidRow, load_mapping
from ingest.handlers import accept_changes, check_changes
from shared.codec import decode
from shared.database import make_engine
from shared.events import ResidentEventRecorded
from shared.inbound import SourceChange
from shared.outbox import OutboxEntry
from shared.pseudonymise import resident_key

pytestmark = pytest.mark.unit
KEY = "test-pseudonym-key"
WHEN = datetime(2026, 11, 1, 10, tzinfo=UTC)
MAPPING = load_mapping()


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'ingest.db'}")
    create_tables(engine)
    return engine


def change(source_event_id: str, table: str, record: dict, op: str = "upsert") -> SourceChange:
    return SourceChange(
        source_event_id=source_event_id, table=table, op=op, occurred_at=WHEN, record=record
    )


def accept(engine, changes, source="people"):
    return accept_changes(
        engine, changes, source=source, pseudonym_key=KEY, traceparent=None, mapping=MAPPING
    )


def published(engine) -> list[ResidentEventRecorded]:
    with Session(engine) as session:
        rows = session.exec(select(OutboxEntry).order_by(OutboxEntry.id)).all()
        return [decode(row.payload, ResidentEventRecorded) for row in rows]


RESIDENT = change(
    "r1",
    "people.residents",
    {
        "person_ref": "P0000001",
        "given_name": "Ada",
        "family_name": "Example",
        "date_of_birth": "1950-01-01",
        "postcode": "RM9 4AA",
        "ward": "Thames View",
        "sex": "female",
    },
)
TENANCY = change(
    "t1",
    "housing.tenancies",
    {"tenancy_ref": "T9", "person_ref": "P0000001", "tenure_type": "secure"},
)
RENT = change(
    "a1",
    "housing.rent_accounts",
    {"tenancy_ref": "T9", "balance_pence": 84250, "weeks_in_arrears": 6.5, "nosp_served": True},
)


def test_an_accepted_change_becomes_a_pseudonymous_event_and_personal_details_go_to_the_vault(
    engine,
):
    outcome = accept(engine, [RESIDENT])
    assert outcome.accepted == 1
    [event] = published(engine)
    assert event.resident_key == resident_key("P0000001", KEY)
    assert event.record_key == event.resident_key
    assert event.age_band == "75-84"
    assert event.ward == "Thames View"
    assert event.attributes["age_years"] == 76
    assert event.attributes["deceased"] is False
    for personal in ("P0000001", "Ada", "Example", "RM9", "1950"):
        assert personal not in event.model_dump_json()
    with Session(engine) as session:
        vault = session.get(VaultEntry, event.resident_key)
        assert vault is not None
        assert vault.postcode == "RM9 4AA"


def test_the_same_change_sent_twice_is_accepted_once_even_within_one_batch(engine):
    accept(engine, [RESIDENT, RESIDENT])
    again = accept(engine, [RESIDENT])
    assert again.duplicates == 1
    assert again.accepted == 0
    assert len(published(engine)) == 1


def test_a_rent_account_waits_for_its_tenancy_and_is_replayed_when_it_arrives(engine):
    first = accept(engine, [RENT], source="housing")
    assert first.parked == 1
    assert published(engine) == []
    second = accept(engine, [TENANCY], source="housing")
    assert second.replayed == 1
    events = published(engine)
    assert [e.table for e in events] == ["housing.tenancies", "housing.rent_accounts"]
    assert events[1].resident_key == resident_key("P0000001", KEY)
    assert events[1].attributes["nosp_served"] is True
    with Session(engine) as session:
        assert session.exec(select(ParkedChange)).all() == []


def test_a_link_arriving_later_in_the_same_batch_releases_the_parked_change(engine):
    outcome = accept(engine, [RENT, TENANCY], source="housing")
    assert outcome.replayed == 1
    assert [e.table for e in published(engine)] == ["housing.tenancies", "housing.rent_accounts"]


def test_a_delete_carrying_only_its_key_is_placed_through_the_earlier_row(engine):
    package = {
        "package_id": "CP-20931",
        "person_ref": "P0000001",
        "service_type": "home_care",
        "hours_per_week": 7.5,
    }
    accept(engine, [change("c1", "social_care.care_packages", package)], source="care")
    delete = change("c2", "social_care.care_packages", {"package_id": "CP-20931"}, "delete")
    accept(engine, [delete], source="care")
    deleted = published(engine)[-1]
    assert deleted.change == "delete"
    assert deleted.record_key == "CP-20931"
    assert deleted.resident_key == resident_key("P0000001", KEY)


def test_a_delete_that_arrives_before_its_row_waits_for_it(engine):
    delete = change("c2", "social_care.care_packages", {"package_id": "CP-1"}, "delete")
    assert accept(engine, [delete], source="care").parked == 1
    package = {"package_id": "CP-1", "person_ref": "P0000001", "service_type": "telecare"}
    accept(engine, [change("c1", "social_care.care_packages", package)], source="care")
    assert [e.change for e in published(engine)] == ["upsert", "delete"]


def test_every_problem_in_a_batch_is_named_by_position():
    bad = [
        change(
            "x1",
            "benefits.claims",
            {"claim_ref": "C1", "person_ref": "P1", "benefit_type": "lottery", "status": "active"},
        ),
        RESIDENT,
        change("x2", "social_care.contacts", {"contact_id": "S1", "person_ref": "P1"}),
        change("x3", "housing.boats", {"boat_ref": "B1"}),
    ]
    problems = check_changes(bad, MAPPING)
    assert sorted(problems) == [0, 2, 3]
    assert problems[0].startswith("event 0 (x1)")
    assert "benefit_type" in problems[0]
    assert "contact_date" in problems[2]
    assert "unknown table `housing.boats`" in problems[3]


def test_concurrent_batches_about_the_same_residents_are_all_taken_once(engine):
    """Requests run in parallel: two may both find no link or vault entry yet and both
    write one. That must be an upsert, not a server error."""
    import threading

    people = [f"P{n:07d}" for n in range(40)]

    def batch(tag: str) -> list[SourceChange]:
        return [
            change(f"{tag}-{person}", "housing.tenancies",
                   {"tenancy_ref": f"T-{person}", "person_ref": person, "tenure_type": "secure"})
            for person in people
        ] + [
            change(f"{tag}-r-{person}", "people.residents",
                   {"person_ref": person, "given_name": tag, "ward": "Abbey"})
            for person in people
        ]  # fmt: skip

    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def send(tag: str) -> None:
        try:
            start.wait()
            accept(engine, batch(tag))
        except BaseException as error:  # the test reports any failure, whatever it is
            errors.append(error)

    threads = [threading.Thread(target=send, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(published(engine)) == 4 * 2 * len(people)


def test_a_residents_newer_details_reach_the_vault_and_the_events_after_them(engine):
    accept(engine, [RESIDENT])
    moved = change("r2", "people.residents", {**RESIDENT.record, "ward": "Abbey"})
    outcome = accept(engine, [TENANCY, moved, change("t2", "housing.tenancies", {
        **TENANCY.record, "tenure_type": "introductory"})])  # fmt: skip
    assert outcome.accepted == 3
    tenancy_before, _, tenancy_after = published(engine)[1:]
    assert (tenancy_before.ward, tenancy_after.ward) == ("Thames View", "Abbey")
    assert tenancy_after.age_band == "75-84"
    with Session(engine) as session:
        vault = session.get(VaultEntry, resident_key("P0000001", KEY))
        assert vault is not None
        assert (vault.ward, vault.postcode, vault.person_ref) == ("Abbey", "RM9 4AA", "P0000001")


def test_changes_parked_earlier_and_in_this_batch_are_replayed_oldest_first(engine):
    assert accept(engine, [RENT], source="housing").parked == 1
    later = change("a2", "housing.rent_accounts", {**RENT.record, "balance_pence": 90000})
    outcome = accept(engine, [later, TENANCY], source="housing")
    assert (outcome.parked, outcome.replayed, outcome.accepted) == (1, 2, 3)
    events = published(engine)
    assert [e.table for e in events] == [
        "housing.tenancies", "housing.rent_accounts", "housing.rent_accounts"]  # fmt: skip
    assert [e.attributes["balance_pence"] for e in events[1:]] == [84250, 90000]
    with Session(engine) as session:
        assert session.exec(select(ParkedChange)).all() == []
    # Sent again, the parked changes are duplicates now, not parked a second time.
    again = accept(engine, [RENT, later], source="housing")
    assert (again.duplicates, again.parked) == (2, 0)


def test_a_tenancy_passed_to_another_resident_takes_its_rent_account_along(engine):
    accept(engine, [TENANCY], source="housing")
    handed_over = change("t2", "housing.tenancies", {**TENANCY.record, "person_ref": "P0000002"})
    accept(engine, [handed_over, RENT], source="housing")
    assert published(engine)[-1].resident_key == resident_key("P0000002", KEY)
    accept(engine, [change("a3", "housing.rent_accounts", RENT.record)], source="housing")
    assert published(engine)[-1].resident_key == resident_key("P0000002", KEY)


def test_an_invalid_change_given_to_accept_is_refused_and_nothing_is_kept(engine):
    bad = change("x1", "housing.tenancies", {"tenancy_ref": "T1", "tenure_type": "castle"})
    with pytest.raises(InvalidRow, match="tenure_type"):
        accept(engine, [RESIDENT, bad])
    assert published(engine) == []
