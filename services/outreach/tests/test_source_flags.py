"""What the source systems say about a resident (resident.flags.v1: deceased, an open case),
through the handler on SQLite and on PostgreSQL: what is stored, audited and published, in
order per resident, and kept apart from the flags a person set by hand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from outreach import handlers
from outreach.adapters.store import AuditEntry, ResidentFlag, Task
from shared.codec import decode
from shared.events import ResidentFlagsChanged, TaskChanged
from shared.outbox import OutboxEntry
from shared.topics import OUTREACH_TASKS

pytestmark = pytest.mark.integration
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def flags_event(
    key: str, flags: list[str], at: datetime = START, basis: list[str] | None = None
) -> ResidentFlagsChanged:
    return ResidentFlagsChanged(
        occurred_at=at,
        resident_key=key,
        source="scoring",
        flags=flags,
        basis=basis if basis is not None else ["social_care.care_packages"],
    )


def tasks_of(engine, key: str) -> list[Task]:
    with Session(engine) as session:
        return list(session.exec(select(Task).where(Task.resident_key == key)).all())


def audit_of(engine, key: str) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(AuditEntry)
                .where(AuditEntry.resident_key == key)
                .order_by(col(AuditEntry.id))
            ).all()
        )


def task_events(engine, key: str) -> list[TaskChanged]:
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxEntry)
            .where(OutboxEntry.topic == OUTREACH_TASKS.name)
            .order_by(col(OutboxEntry.id))
        ).all()
    return [e for e in (decode(r.payload, TaskChanged) for r in rows) if e.resident_key == key]


def test_deceased_closes_every_open_task_with_a_plain_reason_and_stops_new_ones(
    engine, policy, make_score
):
    score = make_score()
    key = score.resident_key
    assert handlers.handle_score(engine, score, policy) == "create"
    [task] = tasks_of(engine, key)

    event = flags_event(key, ["deceased"], basis=["resident_index.people"])
    assert handlers.handle_source_flags(engine, event, policy) == "changed"

    [closed] = tasks_of(engine, key)
    assert closed.status == "closed"
    assert closed.closed_reason == "the resident has died (from the council's records)"
    published = task_events(engine, key)[-1]
    assert (published.event_type, published.status, published.task_id) == (
        "TaskStatusChanged",
        "closed",
        task.task_id,
    )
    assert published.actor == handlers.SOURCE_SYSTEMS
    assert published.reason == "the resident has died (from the council's records)"
    actions = [(a.action, a.actor) for a in audit_of(engine, key)]
    assert actions[-2:] == [
        ("flag_set", handlers.SOURCE_SYSTEMS),
        ("closed", handlers.SOURCE_SYSTEMS),
    ]
    assert "resident_index.people" in audit_of(engine, key)[-2].reason

    later = make_score(key=key, model="frailty")
    assert handlers.handle_score(engine, later, policy) == "suppress"
    assert len(tasks_of(engine, key)) == 1
    suppressed = audit_of(engine, key)[-1]
    assert (suppressed.action, suppressed.actor) == ("suppressed", "policy")
    assert suppressed.reason == "excluded (deceased): the resident has died"


def test_an_open_case_suppresses_new_tasks_until_the_source_systems_clear_it(
    engine, policy, make_score
):
    key = "r_" + uuid.uuid4().hex
    handlers.handle_source_flags(engine, flags_event(key, ["open_case"]), policy)
    assert handlers.handle_score(engine, make_score(key=key), policy) == "suppress"
    assert audit_of(engine, key)[-1].reason == (
        "excluded (open_case): the resident already has an open case with a council team"
    )

    cleared = flags_event(key, [], at=START + timedelta(days=1))
    assert handlers.handle_source_flags(engine, cleared, policy) == "changed"
    assert [(a.action, a.actor) for a in audit_of(engine, key)][-1] == (
        "flag_cleared",
        handlers.SOURCE_SYSTEMS,
    )
    assert handlers.handle_score(engine, make_score(key=key), policy) == "create"


def test_an_open_case_leaves_a_conversation_under_way_open(engine, policy, make_score):
    score = make_score()
    handlers.handle_score(engine, score, policy)
    handlers.handle_source_flags(engine, flags_event(score.resident_key, ["open_case"]), policy)
    assert [t.status for t in tasks_of(engine, score.resident_key)] == ["proposed"]


def test_an_open_case_closes_a_task_still_waiting_for_capacity(engine, policy_with, make_score):
    full = policy_with(teams={"Community independence team": {"weekly_capacity": 0},
                              "Housing prevention team": {"weekly_capacity": 0}})  # fmt: skip
    score = make_score()
    assert handlers.handle_score(engine, score, full) == "held_for_capacity"
    handlers.handle_source_flags(engine, flags_event(score.resident_key, ["open_case"]), full)

    [task] = tasks_of(engine, score.resident_key)
    assert (task.status, task.closed_reason) == (
        "closed",
        "the resident already has an open case with a council team (from the council's records)",
    )
    assert audit_of(engine, score.resident_key)[-1].actor == handlers.SOURCE_SYSTEMS
    assert handlers.release_held(engine, policy_with()) == 0


def test_a_stale_event_cannot_undo_a_newer_one_and_is_audited(engine, policy, make_score):
    key = "r_" + uuid.uuid4().hex
    newer = flags_event(key, [], at=START + timedelta(hours=2))
    older = flags_event(key, ["deceased"], at=START)
    handlers.handle_source_flags(engine, flags_event(key, ["open_case"], at=START), policy)
    assert handlers.handle_source_flags(engine, newer, policy) == "changed"
    assert handlers.handle_source_flags(engine, older, policy) == "stale"

    ignored = audit_of(engine, key)[-1]
    assert (ignored.action, ignored.actor) == ("flags_ignored", handlers.SOURCE_SYSTEMS)
    assert "older than those already applied" in ignored.reason
    assert handlers.handle_score(engine, make_score(key=key), policy) == "create"
    assert handlers.subject_access(engine, key)["source_system_flags"]["flags"] == []


def test_a_redelivered_event_changes_nothing(engine, policy):
    key = "r_" + uuid.uuid4().hex
    event = flags_event(key, ["open_case"])
    assert handlers.handle_source_flags(engine, event, policy) == "changed"
    entries = len(audit_of(engine, key))
    assert handlers.handle_source_flags(engine, event, policy) == "duplicate"
    assert len(audit_of(engine, key)) == entries
    same_again = flags_event(key, ["open_case"], at=START + timedelta(minutes=5))
    assert handlers.handle_source_flags(engine, same_again, policy) == "unchanged"
    assert len(audit_of(engine, key)) == entries


def test_the_source_systems_never_clear_a_flag_an_admin_set_by_hand(engine, policy, make_score):
    key = "r_" + uuid.uuid4().hex
    handlers.set_flag(engine, key, "open_case", "phone call from the care team", "admin")
    handlers.handle_source_flags(engine, flags_event(key, ["open_case"]), policy)
    handlers.handle_source_flags(engine, flags_event(key, [], at=START + timedelta(1)), policy)

    with Session(engine) as session:
        by_hand = session.exec(select(ResidentFlag).where(ResidentFlag.resident_key == key)).all()
    assert [(f.flag, f.source) for f in by_hand] == [("open_case", "phone call from the care team")]
    assert handlers.handle_score(engine, make_score(key=key), policy) == "suppress"


def test_an_admin_clearing_a_flag_leaves_the_source_systems_flag(engine, policy, make_score):
    key = "r_" + uuid.uuid4().hex
    handlers.handle_source_flags(engine, flags_event(key, ["open_case"]), policy)
    handlers.set_flag(engine, key, "open_case", "by hand", "admin")

    assert handlers.clear_flag(engine, key, "open_case", "admin") is True
    assert handlers.clear_flag(engine, key, "open_case", "admin") is False
    assert audit_of(engine, key)[-1].action == "flag_cleared"
    assert audit_of(engine, key)[-1].actor == "admin"
    assert handlers.handle_score(engine, make_score(key=key), policy) == "suppress"
    export = handlers.subject_access(engine, key)
    assert export["flags"] == []
    assert export["source_system_flags"]["flags"] == ["open_case"]


@pytest.mark.unit
def test_an_opt_out_cannot_be_cleared_by_an_admin(tmp_path):
    with pytest.raises(handlers.FlagNotClearable, match="Only the resident"):
        handlers.clear_flag(None, "r_" + "0" * 32, "opted_out", "admin")  # type: ignore[arg-type]


@pytest.mark.unit
def test_the_policy_excludes_both_flags_the_source_systems_send(policy):
    from typing import get_args

    from shared.events import ResidentFlag as SourceFlag

    assert set(get_args(SourceFlag)) <= set(policy.exclusions.flags)
