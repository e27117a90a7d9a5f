"""Every policy rule and every lifecycle move, through the handlers, on SQLite and on
PostgreSQL: what is stored, what is audited, and what waits in the outbox to be published."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from outreach import handlers
from outreach.adapters.store import AuditEntry, AuditLogIsAppendOnly, Task
from outreach.domain.lifecycle import TransitionNotAllowed
from outreach.domain.policy import add_working_days
from shared.codec import decode
from shared.events import LetterSent, ResidentOptedOut, TaskChanged
from shared.outbox import OutboxEntry
from shared.references import reference_for
from shared.topics import OUTREACH_TASKS, RESIDENT_OPTOUTS

pytestmark = pytest.mark.integration


def tasks_of(engine, key):
    with Session(engine) as session:
        return list(session.exec(select(Task).where(Task.resident_key == key)).all())


def audit_of(engine, key):
    with Session(engine) as session:
        return list(
            session.exec(
                select(AuditEntry)
                .where(AuditEntry.resident_key == key)
                .order_by(col(AuditEntry.id))
            ).all()
        )


def published(engine, key, topic=OUTREACH_TASKS.name, model=TaskChanged):
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxEntry).where(OutboxEntry.topic == topic).order_by(col(OutboxEntry.id))
        ).all()
        events = [decode(row.payload, model) for row in rows]
    return [e for e in events if e.resident_key == key]


def letter_for(task: Task, when: datetime | None = None) -> LetterSent:
    return LetterSent(
        event_type="LetterSent",
        occurred_at=when or datetime.now(UTC),
        resident_key=task.resident_key,
        source="notify",
        task_id=task.task_id,
        channel="pdf",
        status="rendered",
        reference=reference_for(task.task_id),
    )


def test_a_high_score_makes_one_proposed_task_published_and_audited(engine, policy, make_score):
    score = make_score()
    assert handlers.handle_score(engine, score, policy) == "create"
    assert handlers.handle_score(engine, score, policy) == "duplicate"
    [task] = tasks_of(engine, score.resident_key)
    assert (task.status, task.policy_version) == ("proposed", policy.version)
    assert [e.event_type for e in published(engine, score.resident_key)] == ["TaskCreated"]
    [entry] = audit_of(engine, score.resident_key)
    assert (entry.action, entry.actor, entry.policy_version) == (
        "created",
        "policy",
        policy.version,
    )


def test_several_models_make_one_task_so_the_resident_hears_from_us_once(
    engine, policy, make_score
):
    key = "r_" + uuid.uuid4().hex
    handlers.handle_score(engine, make_score(key, "falls", probability=0.5), policy)
    assert handlers.handle_score(engine, make_score(key, "frailty", probability=0.8), policy) == (
        "add_to_open_task"
    )
    [task] = tasks_of(engine, key)
    assert task.models == ["falls", "frailty"]
    assert task.priority == pytest.approx(0.8)
    assert [e.action for e in audit_of(engine, key)] == ["created", "added_to_open_task"]


@pytest.mark.parametrize("flag", ["deceased", "opted_out", "open_case"])
def test_an_excluded_resident_gets_no_task_and_the_suppression_is_audited_with_why(
    engine, policy, make_score, flag
):
    score = make_score()
    handlers.set_flag(engine, score.resident_key, flag, "test source", "admin")
    assert handlers.handle_score(engine, score, policy) == "suppress"
    assert tasks_of(engine, score.resident_key) == []
    suppressed = audit_of(engine, score.resident_key)[-1]
    assert suppressed.action == "suppressed"
    assert flag in suppressed.reason
    assert suppressed.score_event_id == str(score.event_id)


def test_a_child_gets_no_falls_task_but_may_get_housing_help(engine, policy, make_score):
    key = "r_" + uuid.uuid4().hex
    assert handlers.handle_score(engine, make_score(key, "falls", age_band="0-17"), policy) == (
        "suppress"
    )
    assert "aged 18 or over" in audit_of(engine, key)[-1].reason
    assert (
        handlers.handle_score(engine, make_score(key, "homelessness", age_band="0-17"), policy)
        == "create"
    )


def test_no_new_task_within_the_cool_down_after_a_letter(engine, policy, make_score):
    first = make_score()
    handlers.handle_score(engine, first, policy)
    [task] = tasks_of(engine, first.resident_key)
    handlers.approve_task(engine, task.task_id, "olive", policy)
    handlers.handle_delivery(engine, letter_for(task), policy)
    handlers.record_outcome(engine, task.task_id, "no_response", "olive")
    handlers.close_task(engine, task.task_id, "olive", "no reply after two calls")
    again = make_score(first.resident_key)
    assert handlers.handle_score(engine, again, policy) == "suppress"
    assert "cool-down" in audit_of(engine, first.resident_key)[-1].reason
    later = datetime.now(UTC) + timedelta(days=policy.cooldown_days + 1)
    assert handlers.handle_score(engine, make_score(first.resident_key), policy, later) == "create"


def test_beyond_weekly_capacity_tasks_wait_and_are_released_highest_score_first(
    engine, policy_with, make_score
):
    team = "Community independence team"
    small = policy_with(
        teams={team: {"weekly_capacity": 2}, "Housing prevention team": {"weekly_capacity": 5}}
    )
    monday = datetime(2026, 11, 23, 9, tzinfo=UTC)
    scores = [make_score(probability=p) for p in (0.5, 0.6, 0.55, 0.9, 0.7)]
    actions = [handlers.handle_score(engine, s, small, monday) for s in scores]
    assert actions == ["create", "create", *["held_for_capacity"] * 3]
    held = tasks_of(engine, scores[3].resident_key)[0]
    assert held.status == "held_for_capacity"
    assert published(engine, held.resident_key) == []  # not a task anyone sees yet
    assert "no room left this week" in audit_of(engine, held.resident_key)[-1].reason

    # A rejection frees a slot this week: the highest held score (0.9) goes first.
    rejected = tasks_of(engine, scores[0].resident_key)[0]
    handlers.reject_task(engine, rejected.task_id, "lead", "already supported by the GP", small)
    assert tasks_of(engine, scores[3].resident_key)[0].status == "proposed"
    assert tasks_of(engine, scores[4].resident_key)[0].status == "held_for_capacity"
    assert handlers.release_held(engine, small, monday + timedelta(days=1)) == 0

    # Next week the rest are released, in order, and nothing was dropped.
    assert handlers.release_held(engine, small, monday + timedelta(days=7)) == 2
    for s in scores[1:]:
        assert tasks_of(engine, s.resident_key)[0].status == "proposed"
    assert [e.action for e in audit_of(engine, scores[4].resident_key)] == [
        "held_for_capacity",
        "released",
    ]


def test_the_whole_lifecycle_is_published_and_audited(engine, policy, make_score):
    score = make_score()
    handlers.handle_score(engine, score, policy)
    [task] = tasks_of(engine, score.resident_key)
    handlers.approve_task(engine, task.task_id, "olive", policy)
    handlers.assign_task(engine, task.task_id, "omar", "lead")
    letter_day = datetime(2026, 11, 27, 10, tzinfo=UTC)  # a Friday
    handlers.handle_delivery(engine, letter_for(task, letter_day), policy)
    handlers.record_contact(engine, task.task_id, "omar", "talked about balance classes")
    handlers.add_note(engine, task.task_id, "omar", "will call back on Tuesday")
    handlers.record_outcome(engine, task.task_id, "support_offered", "omar")
    handlers.close_task(engine, task.task_id, "omar", "referred to strength and balance")

    [done] = tasks_of(engine, score.resident_key)
    assert done.status == "closed"
    assert done.outcome == "support_offered"
    assert done.assigned_to == "omar"
    assert done.due_by == add_working_days(letter_day.date(), 10)
    events = published(engine, score.resident_key)
    assert [(e.event_type, e.status) for e in events] == [
        ("TaskCreated", "proposed"),
        ("TaskApproved", "approved"),
        ("TaskStatusChanged", "approved"),  # assignment
        ("TaskStatusChanged", "letter_sent"),
        ("TaskStatusChanged", "contacted"),
        ("TaskStatusChanged", "support_offered"),
        ("TaskStatusChanged", "closed"),
    ]
    assert [e.action for e in audit_of(engine, score.resident_key)] == [
        "created",
        "approved",
        "assigned",
        "letter_sent",
        "contacted",
        "note_added",
        "support_offered",
        "closed",
    ]
    export = handlers.subject_access(engine, score.resident_key)
    assert [n["text"] for n in export["tasks"][0]["notes"]] == [
        "talked about balance classes",
        "will call back on Tuesday",
    ]


def test_a_rejection_keeps_its_reason_and_is_published_as_rejected(engine, policy, make_score):
    score = make_score()
    handlers.handle_score(engine, score, policy)
    [task] = tasks_of(engine, score.resident_key)
    handlers.reject_task(engine, task.task_id, "olive", "known to the falls team", policy)
    assert tasks_of(engine, score.resident_key)[0].status == "rejected"
    assert published(engine, score.resident_key)[-1].status == "rejected"
    assert published(engine, score.resident_key)[-1].reason == "known to the falls team"
    assert audit_of(engine, score.resident_key)[-1].reason.endswith("known to the falls team")


@pytest.mark.parametrize(
    ("steps", "refused"),
    [
        ([], "contacted"),  # no contact before a letter
        (["approve"], "support_offered"),
        (["approve", "letter"], "declined"),  # an outcome other than no reply needs contact
        (["reject"], "approve"),
    ],
)
def test_moves_out_of_order_are_refused(engine, policy, make_score, steps, refused):
    score = make_score()
    handlers.handle_score(engine, score, policy)
    [task] = tasks_of(engine, score.resident_key)
    for step in steps:
        if step == "approve":
            handlers.approve_task(engine, task.task_id, "olive", policy)
        elif step == "letter":
            handlers.handle_delivery(engine, letter_for(task), policy)
        else:
            handlers.reject_task(engine, task.task_id, "olive", "no", policy)
    attempts = {
        "contacted": lambda: handlers.record_contact(engine, task.task_id, "olive"),
        "approve": lambda: handlers.approve_task(engine, task.task_id, "olive", policy),
    }
    attempt = attempts.get(
        refused, lambda: handlers.record_outcome(engine, task.task_id, refused, "olive")
    )
    with pytest.raises((TransitionNotAllowed, handlers.TaskNotApprovable)):
        attempt()


def test_an_opt_out_closes_open_tasks_and_tells_the_other_services(engine, policy, make_score):
    score = make_score()
    handlers.handle_score(engine, score, policy)
    handlers.opt_out(engine, score.resident_key, "opt-out form")
    handlers.opt_out(engine, score.resident_key, "opt-out form")  # twice changes nothing
    [task] = tasks_of(engine, score.resident_key)
    assert task.status == "closed"
    assert published(engine, score.resident_key)[-1].status == "closed"
    assert "opted_out" in (published(engine, score.resident_key)[-1].reason or "")
    optouts = published(engine, score.resident_key, RESIDENT_OPTOUTS.name, ResidentOptedOut)
    assert len(optouts) == 1
    assert handlers.handle_score(engine, make_score(score.resident_key), policy) == "suppress"


def test_a_simulated_approval_is_labelled_as_such(engine, policy, make_score):
    score = make_score()
    handlers.handle_score(engine, score, policy)
    [task] = tasks_of(engine, score.resident_key)
    handlers.approve_task(engine, task.task_id, handlers.SIMULATED_OFFICER, policy)
    approval = audit_of(engine, score.resident_key)[-1]
    assert approval.actor == "simulated-officer"
    assert "simulated" in approval.reason


def test_the_audit_log_can_be_added_to_but_not_changed(engine, policy, make_score):
    score = make_score()
    handlers.handle_score(engine, score, policy)
    with Session(engine) as session:
        entry = session.exec(
            select(AuditEntry).where(AuditEntry.resident_key == score.resident_key)
        ).one()
        entry.reason = "something else"
        session.add(entry)
        with pytest.raises(AuditLogIsAppendOnly):
            session.commit()


def test_retention_purges_old_closed_tasks_and_audit_entries_only(
    engine, policy, make_score, caplog
):
    old, recent = make_score(), make_score()
    for s in (old, recent):
        handlers.handle_score(engine, s, policy)
        [task] = tasks_of(engine, s.resident_key)
        handlers.reject_task(engine, task.task_id, "olive", "not needed", policy)
    still_open = make_score()
    handlers.handle_score(engine, still_open, policy)
    far_future = datetime.now(UTC) + timedelta(days=policy.retention.closed_task_days + 1)
    with Session(engine) as session:
        [task] = session.exec(select(Task).where(Task.resident_key == recent.resident_key)).all()
        task.closed_at = far_future - timedelta(days=1)
        session.add(task)
        session.commit()
    with caplog.at_level("INFO"):
        purged = handlers.purge(engine, policy, far_future)
    assert tasks_of(engine, old.resident_key) == []
    assert len(tasks_of(engine, recent.resident_key)) == 1
    assert len(tasks_of(engine, still_open.resident_key)) == 1
    assert purged["tasks"] >= 1
    assert "retention: purged" in caplog.text
    audit_future = datetime.now(UTC) + timedelta(days=policy.retention.audit_days + 1)
    handlers.purge(engine, policy, audit_future)
    assert audit_of(engine, old.resident_key) == []
