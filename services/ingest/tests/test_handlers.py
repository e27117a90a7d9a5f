"""Ingest's handlers against a real SQLite database (no broker: the outbox is the output)."""

from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from ingest.adapters.store import ParkedChange, VaultEntry, create_tables
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


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'ingest.db'}")
    create_tables(engine)
    return engine


def change(source_event_id: str, table: str, record: dict, op: str = "upsert") -> SourceChange:
    return SourceChange(
        source_event_id=source_event_id, table=table, op=op, occurred_at=WHEN, record=record
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


def test_an_accepted_change_becomes_a_pseudonymous_event_and_personal_details_go_to_the_vault(
    engine,
):
    outcome = accept_changes(
        engine, [RESIDENT], source="people", pseudonym_key=KEY, traceparent=None
    )
    assert outcome.accepted == 1
    [event] = published(engine)
    assert event.resident_key == resident_key("P0000001", KEY)
    assert event.age_band == "75-84" and event.ward == "Thames View"
    assert "P0000001" not in event.model_dump_json() and "Ada" not in event.model_dump_json()
    with Session(engine) as session:
        vault = session.get(VaultEntry, event.resident_key)
        assert vault is not None and vault.postcode == "RM9 4AA"


def test_the_same_change_sent_twice_is_accepted_once(engine):
    accept_changes(engine, [RESIDENT], source="people", pseudonym_key=KEY, traceparent=None)
    again = accept_changes(engine, [RESIDENT], source="people", pseudonym_key=KEY, traceparent=None)
    assert again.duplicates == 1 and again.accepted == 0
    assert len(published(engine)) == 1


def test_a_rent_account_waits_for_its_tenancy_and_is_replayed_when_it_arrives(engine):
    rent = change(
        "a1",
        "housing.rent_accounts",
        {"tenancy_ref": "T9", "balance_pence": 84250, "weeks_in_arrears": 6.5, "nosp_served": True},
    )
    first = accept_changes(engine, [rent], source="housing", pseudonym_key=KEY, traceparent=None)
    assert first.parked == 1 and published(engine) == []
    tenancy = change(
        "t1",
        "housing.tenancies",
        {"tenancy_ref": "T9", "person_ref": "P0000001", "tenure_type": "secure"},
    )
    second = accept_changes(
        engine, [tenancy], source="housing", pseudonym_key=KEY, traceparent=None
    )
    assert second.replayed == 1
    events = published(engine)
    assert [e.table for e in events] == ["housing.tenancies", "housing.rent_accounts"]
    assert events[1].resident_key == resident_key("P0000001", KEY)
    assert events[1].attributes["nosp_served"] is True
    with Session(engine) as session:
        assert session.exec(select(ParkedChange)).all() == []


def test_a_delete_carrying_only_its_key_is_placed_through_the_earlier_row(engine):
    package = {
        "package_id": "CP-20931",
        "person_ref": "P0000001",
        "service_type": "home_care",
        "hours_per_week": 7.5,
    }
    accept_changes(
        engine,
        [change("c1", "social_care.care_packages", package)],
        source="care",
        pseudonym_key=KEY,
        traceparent=None,
    )
    accept_changes(
        engine,
        [change("c2", "social_care.care_packages", {"package_id": "CP-20931"}, "delete")],
        source="care",
        pseudonym_key=KEY,
        traceparent=None,
    )
    deleted = published(engine)[-1]
    assert deleted.change == "delete" and deleted.record_key == "CP-20931"
    assert deleted.resident_key == resident_key("P0000001", KEY)


def test_every_problem_in_a_batch_is_named_by_position():
    bad = [
        change(
            "x1",
            "benefits.claims",
            {"claim_ref": "C1", "person_ref": "P1", "benefit_type": "lottery", "status": "active"},
        ),
        RESIDENT,
        change("x2", "social_care.contacts", {"contact_id": "S1", "person_ref": "P1"}),
    ]
    problems = check_changes(bad)
    assert len(problems) == 2
    assert problems[0].startswith("event 0 (x1)") and "benefit_type" in problems[0]
    assert problems[1].startswith("event 2 (x2)") and "contact_date" in problems[1]
