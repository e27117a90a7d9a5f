"""Outreach's handlers: a score may become a task; officers move it along its lifecycle;
a letter, an opt-out or a flag moves it on. Each runs in one transaction with its audit
entry and its outgoing event (through the outbox)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from sqlalchemy import delete, func, insert, or_, update
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from outreach.adapters.monitoring import (
    ScoredResident,
    forget_task_scores,
    record_task_score,
    task_scores,
)
from outreach.adapters.store import (
    AuditEntry,
    ProcessedEvent,
    ResidentFlag,
    SourceFlags,
    Task,
    TaskNote,
)
from outreach.domain.lifecycle import OUTCOMES, check_move
from outreach.domain.policy import (
    OPEN_STATUSES,
    ExistingTask,
    Policy,
    Resident,
    acts_on,
    add_working_days,
    decide,
    week_start,
)
from shared import metrics
from shared.database import in_chunks
from shared.events import (
    LetterSent,
    Reason,
    ResidentFlagsChanged,
    ResidentOptedOut,
    RiskScored,
    TaskChanged,
)
from shared.outbox import current_traceparent, outbox_entry
from shared.references import reference_for
from shared.telemetry import context_from_headers
from shared.topics import OUTREACH_TASKS, RESIDENT_OPTOUTS

SIMULATED_OFFICER = "simulated-officer"
# The actor recorded for what the council's source systems say (through resident.flags.v1):
# not a person, so never mistaken for an officer's or an admin's decision.
SOURCE_SYSTEMS = "source-systems"
tracer = trace.get_tracer("outreach")
log = logging.getLogger(__name__)
T = TypeVar("T")


class TaskNotFound(LookupError):
    pass


class TaskNotApprovable(ValueError):
    pass


class FlagNotClearable(ValueError):
    pass


def now_utc() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands datetimes back without their zone; they were written in UTC.
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _already_processed(session: Session, event_id: uuid.UUID, consumer: str) -> bool:
    """Whether this event was taken before; records it as taken if not."""
    return not _not_yet_processed(session, [str(event_id)], consumer)


def _audit(
    session: Session,
    resident_key: str,
    action: str,
    reason: str,
    actor: str,
    task: Task | None = None,
    policy_version: str | None = None,
    score_event_id: str | None = None,
) -> None:
    session.add(
        AuditEntry(
            resident_key=resident_key,
            task_id=task.task_id if task else None,
            action=action,
            reason=reason,
            actor=actor,
            policy_version=policy_version or (task.policy_version if task else None),
            score_event_id=score_event_id,
        )
    )


def _task_event(task: Task, event_type: str, actor: str) -> TaskChanged:
    return TaskChanged(
        event_type=event_type,
        occurred_at=now_utc(),
        resident_key=task.resident_key,
        source="outreach",
        task_id=task.task_id,
        status=task.status,
        models=task.models,
        reasons=[Reason.model_validate(r) for r in task.reasons],
        team=task.team,
        policy_version=task.policy_version,
        due_by=task.due_by,
        actor=actor,
        reason=task.closed_reason if task.status in ("rejected", "closed") else None,
    )


def _publish(session: Session, task: Task, event_type: str, actor: str) -> None:
    metrics.task_changes.add(1, {"status": task.status, "event_type": event_type})
    session.add(outbox_entry(OUTREACH_TASKS.name, _task_event(task, event_type, actor)))


def _known(task: Task) -> ExistingTask:
    """A task as the policy sees it."""
    return ExistingTask(
        status=task.status,
        models=list(task.models),
        created_at=_aware(task.created_at) or now_utc(),
        last_contact_at=max(
            (m for m in (_aware(task.letter_sent_at), _aware(task.contacted_at)) if m),
            default=None,
        ),
        closed_at=_aware(task.closed_at),
    )


# Scores and capacity


def handle_score(
    engine: Engine, score: RiskScored, policy: Policy, now: datetime | None = None
) -> str:
    """Apply the policy to a score; returns what happened (for counting and tests):
    `create`, `held_for_capacity`, `add_to_open_task`, `suppress`, `none` or `duplicate`.
    A batch of one (see `handle_scores`)."""
    return handle_scores(engine, [score], policy, now)[0]


def handle_scores(
    engine: Engine,
    scores: Sequence[RiskScored],
    policy: Policy,
    now: datetime | None = None,
    contexts: Sequence[otel_context.Context | None] | None = None,
) -> list[str]:
    """Apply the policy to a batch of scores in one transaction; returns what happened to
    each, in order (as `handle_score` says). The decisions are those of taking the scores
    one at a time in this order: what a score did (a task made, a model added to one, a
    task released) is seen by the scores after it. A score already taken (in an earlier
    batch, or earlier in this one) is a `duplicate` and changes nothing.

    The state the policy reads (tasks and flags of the residents whose scores can lead to
    outreach, which residents were scored before, which events were taken) is read once
    for the batch. `contexts`, one per score, is the trace context to decide it in (its
    consumer span), so what the score makes continues its trace."""
    now = now or now_utc()
    outcomes = ["duplicate"] * len(scores)
    with Session(engine) as session:
        fresh = _not_yet_processed(session, [str(s.event_id) for s in scores], "scores")
        if not fresh:
            return outcomes
        batch = _ScoreBatch(session, policy, now, [scores[i] for i in fresh])
        for i in fresh:
            context = contexts[i] if contexts is not None else None
            token = otel_context.attach(context) if context is not None else None
            try:
                outcomes[i] = batch.take(scores[i])
            finally:
                if token is not None:
                    otel_context.detach(token)
        batch.write()
        session.commit()
    return outcomes


def _not_yet_processed(session: Session, event_ids: list[str], consumer: str) -> list[int]:
    """The positions of the events not taken before (the first of any repeated within the
    list); records them as taken, in the caller's transaction."""
    seen: set[str] = set()
    for chunk in in_chunks(sorted(set(event_ids))):
        seen.update(
            session.exec(
                select(ProcessedEvent.event_id).where(
                    ProcessedEvent.consumer == consumer, col(ProcessedEvent.event_id).in_(chunk)
                )
            ).all()
        )
    fresh = []
    for i, event_id in enumerate(event_ids):
        if event_id not in seen:
            seen.add(event_id)
            fresh.append(i)
    if fresh:
        session.execute(
            insert(ProcessedEvent),
            [{"event_id": event_ids[i], "consumer": consumer} for i in fresh],
        )
    return fresh


class _ScoreBatch:
    """One transaction's scores: the state they need, read once, and kept up to date as
    each score is taken, so that each decides as if the ones before it had committed."""

    def __init__(
        self, session: Session, policy: Policy, now: datetime, scores: list[RiskScored]
    ) -> None:
        self.session, self.policy, self.now = session, policy, now
        # Only a score the policy acts on reads the resident's tasks and flags.
        keys = sorted({s.resident_key for s in scores if acts_on(s, policy)})
        self.tasks: dict[str, list[Task]] = {key: [] for key in keys}
        self.flags: dict[str, set[str]] = {key: set() for key in keys}
        for chunk in in_chunks(keys):
            for task in session.exec(select(Task).where(col(Task.resident_key).in_(chunk))):
                self.tasks[task.resident_key].append(task)
            for key, flag in session.exec(
                select(ResidentFlag.resident_key, ResidentFlag.flag).where(
                    col(ResidentFlag.resident_key).in_(chunk)
                )
            ):
                self.flags[key].add(flag)
            for from_sources in session.exec(
                select(SourceFlags).where(col(SourceFlags.resident_key).in_(chunk))
            ):
                self.flags[from_sources.resident_key].update(from_sources.flags)
        self.scored = _ScoredResidents(session, sorted({s.resident_key for s in scores}))
        self.teams: dict[str, _Team] = {}

    def take(self, score: RiskScored) -> str:
        session, policy, now = self.session, self.policy, self.now
        self.scored.note(score)
        if not acts_on(score, policy):
            return decide(score, policy, Resident(), now).action
        tasks = self.tasks[score.resident_key]
        resident = Resident(
            tasks=[_known(t) for t in tasks], flags=frozenset(self.flags[score.resident_key])
        )
        decision = decide(score, policy, resident, now)
        reasons = [r.model_dump() for r in score.reasons]
        outcome: str = decision.action
        if decision.action == "create":
            task = Task(
                resident_key=score.resident_key,
                status="held_for_capacity",
                models=[score.model],
                reasons=reasons,
                team=decision.team or "",
                policy_version=policy.version,
                age_band=score.age_band,
                ward=score.ward,
                priority=score.probability,
                created_at=now,
                updated_at=now,
            )
            with tracer.start_as_current_span(
                "task create",
                attributes={
                    "proactive.task_id": str(task.task_id),
                    "proactive.model": score.model,
                },
            ):
                task.traceparent = current_traceparent()
            session.add(task)
            tasks.append(task)
            record_task_score(session, task.task_id, score)
            released = self._release(task.team, task)
            if task in released:
                _audit(
                    session, score.resident_key, "created", decision.reason, "policy", task,
                    policy.version, str(score.event_id),
                )  # fmt: skip
            else:
                outcome = "held_for_capacity"
                _audit(
                    session,
                    score.resident_key,
                    "held_for_capacity",
                    f"{decision.reason}; {task.team} has no room left this week, so the task "
                    "waits and is released, highest score first, when there is room",
                    "policy",
                    task,
                    policy.version,
                    str(score.event_id),
                )
        elif decision.action == "add_to_open_task":
            task = next(t for t in tasks if t.status in OPEN_STATUSES)
            task.models = [*task.models, score.model]
            task.reasons = sorted(
                [*task.reasons, *reasons], key=lambda r: -float(r["contribution"])
            )[:3]
            task.priority = max(task.priority, score.probability)
            record_task_score(session, task.task_id, score)
            task.updated_at = now
            session.add(task)
            if task.status != "held_for_capacity":
                _publish(session, task, "TaskStatusChanged", "policy")
            _audit(
                session, score.resident_key, "added_to_open_task", decision.reason, "policy",
                task, policy.version, str(score.event_id),
            )  # fmt: skip
        elif decision.action == "suppress":
            _audit(
                session, score.resident_key, "suppressed", decision.reason, "policy", None,
                policy.version, str(score.event_id),
            )  # fmt: skip
        return outcome

    def _release(self, team: str, task: Task) -> list[Task]:
        """`_release_team` after `task` (new, held) joined the team: the same tasks are
        released, highest score first, while there is room. The team's load and held tasks
        are read once a batch, without flushing what the batch did so far: within a batch
        of scores only the releases kept here change them."""
        session, capacity = self.session, self.policy.capacity_of(team)
        state = self.teams.get(team)
        if state is None:
            with session.no_autoflush:
                load = 0 if capacity is None else _team_load(session, team, self.now)
            state = self.teams[team] = _Team(load)
        state.new.append(task)
        if capacity is not None and state.load >= capacity:
            return []
        if state.held is None:
            with session.no_autoflush:
                state.held = list(session.exec(_held_tasks(team)).all())
        candidates = {id(t): t for t in (*state.held, *state.new)}
        held = [t for t in candidates.values() if t.status == "held_for_capacity"]
        held.sort(key=lambda t: (-t.priority, _aware(t.created_at) or self.now))
        released = held if capacity is None else held[: capacity - state.load]
        for each in released:
            _release_task(session, each, self.now)
        state.load += len(released)
        return released

    def write(self) -> None:
        self.scored.write()


class _Team:
    """A team's week as a batch of scores sees it: the tasks it took on (its load), the
    held tasks read from the database (once it has room) and those the batch made."""

    def __init__(self, load: int) -> None:
        self.load = load
        self.held: list[Task] | None = None
        self.new: list[Task] = []


class _ScoredResidents:
    """Which residents were scored, with the age band, ward, sex and ethnicity of their
    latest score (the fairness monitor's population): a batch's rows read at once and
    written at once."""

    FIELDS = ("age_band", "ward", "sex", "ethnicity", "last_scored_at")

    def __init__(self, session: Session, keys: list[str]) -> None:
        self.session = session
        self.known: dict[str, dict[str, Any]] = {}
        for chunk in in_chunks(keys):
            for key, *values in session.execute(
                select_columns(
                    col(ScoredResident.resident_key),
                    *(col(getattr(ScoredResident, name)) for name in self.FIELDS),
                ).where(col(ScoredResident.resident_key).in_(chunk))
            ):
                self.known[key] = dict(zip(self.FIELDS, values, strict=True))
        self.changed: dict[str, dict[str, Any]] = {}
        self.new: dict[str, dict[str, Any]] = {}

    def note(self, score: RiskScored) -> None:
        key = score.resident_key
        row = self.new.get(key) or self.changed.get(key)
        if row is None:
            if key in self.known:
                row = self.changed[key] = {"resident_key": key, **self.known[key]}
            else:
                row = self.new[key] = {
                    "resident_key": key,
                    "age_band": None,
                    "ward": None,
                    "sex": None,
                    "ethnicity": None,
                    "first_scored_at": score.occurred_at,
                }
        row["age_band"] = score.age_band or row["age_band"]
        row["ward"] = score.ward or row["ward"]
        row["sex"] = score.sex or row["sex"]
        row["ethnicity"] = score.ethnicity or row["ethnicity"]
        row["last_scored_at"] = score.occurred_at

    def write(self) -> None:
        if self.new:
            self.session.execute(insert(ScoredResident), list(self.new.values()))
        if self.changed:
            self.session.execute(update(ScoredResident), list(self.changed.values()))


def _team_load(session: Session, team: str, now: datetime) -> int:
    """Tasks the team took on this week: released to the queue and not turned down at review."""
    return int(
        session.exec(
            select(func.count())
            .select_from(Task)
            .where(
                Task.team == team,
                col(Task.released_at) >= week_start(now),
                or_(col(Task.approved_by).is_not(None), col(Task.status) == "proposed"),
            )
        ).one()
    )


def _held_tasks(team: str) -> SelectOfScalar[Task]:
    return (
        select(Task)
        .where(Task.team == team, Task.status == "held_for_capacity")
        .order_by(col(Task.priority).desc(), col(Task.created_at))
    )


def _release_team(session: Session, policy: Policy, team: str, now: datetime) -> list[Task]:
    """Move held tasks into the officers' queue, highest score first, while there is room."""
    capacity = policy.capacity_of(team)
    held = session.exec(_held_tasks(team)).all()
    if not held:
        return []
    room = len(held) if capacity is None else max(0, capacity - _team_load(session, team, now))
    released = list(held[:room])
    for task in released:
        _release_task(session, task, now)
    return released


def _release_task(session: Session, task: Task, now: datetime) -> None:
    task.status = "proposed"
    task.released_at = now
    task.updated_at = now
    session.add(task)
    if task.created_at and _aware(task.created_at) != now:
        _audit(
            session, task.resident_key, "released",
            f"{task.team} has room this week; released highest score first", "policy", task,
        )  # fmt: skip
    made_in = context_from_headers(
        [("traceparent", task.traceparent.encode())] if task.traceparent else None
    )
    with tracer.start_as_current_span("task release", context=made_in):
        _publish(session, task, "TaskCreated", "policy")


def release_held(engine: Engine, policy: Policy, now: datetime | None = None) -> int:
    """The scheduled job: release held tasks for every team with room (e.g. a new week)."""
    now = now or now_utc()
    with Session(engine) as session:
        teams = session.exec(
            select(Task.team).where(Task.status == "held_for_capacity").distinct()
        ).all()
        released = sum(len(_release_team(session, policy, team, now)) for team in teams)
        session.commit()
        return released


# Officers' actions


def _load(session: Session, task_id: uuid.UUID) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise TaskNotFound(f"No task {task_id}.")
    return task


def _change(engine: Engine, task_id: uuid.UUID, change: Callable[[Session, Task], T]) -> T:
    with Session(engine) as session:
        task = _load(session, task_id)
        result = change(session, task)
        session.commit()
        if isinstance(result, Task):
            session.refresh(result)
        return result


def _move(
    session: Session, task: Task, status: str, actor: str, reason: str, now: datetime
) -> None:
    check_move(task.status, status)
    task.status = status
    task.updated_at = now
    if status in ("closed", "rejected"):
        task.closed_at = now
    session.add(task)
    _audit(session, task.resident_key, status, reason, actor, task)
    _publish(session, task, "TaskStatusChanged", actor)


def approve_task(engine: Engine, task_id: uuid.UUID, officer: str, policy: Policy) -> Task:
    """An officer's review: only an approved task may lead to a letter."""
    with Session(engine) as session:
        task = _load(session, task_id)
        if task.status == "approved":
            return task
        if task.status != "proposed":
            raise TaskNotApprovable(f"Task {task_id} is '{task.status}', not 'proposed'.")
        # The approval continues the trace that made the task, so ops can follow one
        # change from its source system to its letter; the officer's request is linked.
        request_span = trace.get_current_span().get_span_context()
        made_in = context_from_headers(
            [("traceparent", task.traceparent.encode())] if task.traceparent else None
        )
        with tracer.start_as_current_span(
            "task approve",
            context=made_in,
            links=[trace.Link(request_span)] if request_span.is_valid else [],
            attributes={
                "proactive.task_id": str(task.task_id),
                "proactive.actor_kind": _actor_kind(officer),
            },
        ):
            now = now_utc()
            task.status = "approved"
            task.approved_by = officer
            task.letter_reference = reference_for(task.task_id)
            task.assigned_to = task.assigned_to or (
                None if officer == SIMULATED_OFFICER else officer
            )
            # Provisional: set again from the day the letter is actually sent.
            task.due_by = add_working_days(now.date(), policy.contact_due_working_days)
            task.updated_at = now
            session.add(task)
            _audit(
                session,
                task.resident_key,
                "approved",
                "simulated approval (demo only)"
                if officer == SIMULATED_OFFICER
                else "officer review",
                officer,
                task,
            )
            _publish(session, task, "TaskApproved", officer)
            session.commit()
            session.refresh(task)
            return task


def _actor_kind(officer: str) -> str:
    return "simulated" if officer == SIMULATED_OFFICER else "officer"


def reject_task(
    engine: Engine, task_id: uuid.UUID, officer: str, reason: str, policy: Policy
) -> Task:
    """An officer decides against contact; the team's slot goes to the next held task."""

    def reject(session: Session, task: Task) -> Task:
        now = now_utc()
        task.closed_reason = reason
        _move(session, task, "rejected", officer, f"rejected at review: {reason}", now)
        session.flush()
        _release_team(session, policy, task.team, now)
        return task

    return _change(engine, task_id, reject)


def assign_task(engine: Engine, task_id: uuid.UUID, officer: str, actor: str) -> Task:
    def assign(session: Session, task: Task) -> Task:
        task.assigned_to = officer
        task.updated_at = now_utc()
        session.add(task)
        _audit(session, task.resident_key, "assigned", f"assigned to {officer}", actor, task)
        _publish(session, task, "TaskStatusChanged", actor)
        return task

    return _change(engine, task_id, assign)


def record_contact(engine: Engine, task_id: uuid.UUID, officer: str, note: str = "") -> Task:
    def contact(session: Session, task: Task) -> Task:
        now = now_utc()
        task.contacted_at = now
        _move(session, task, "contacted", officer, "contact made" + _with(note), now)
        _add_note(session, task, officer, note)
        return task

    return _change(engine, task_id, contact)


def record_outcome(
    engine: Engine, task_id: uuid.UUID, outcome: str, officer: str, note: str = ""
) -> Task:
    if outcome not in OUTCOMES:
        raise ValueError(f"The outcome must be one of {', '.join(OUTCOMES)}.")

    def record(session: Session, task: Task) -> Task:
        task.outcome = outcome
        _move(session, task, outcome, officer, "outcome recorded" + _with(note), now_utc())
        _add_note(session, task, officer, note)
        return task

    return _change(engine, task_id, record)


def close_task(engine: Engine, task_id: uuid.UUID, officer: str, reason: str) -> Task:
    def close(session: Session, task: Task) -> Task:
        task.closed_reason = reason
        _move(session, task, "closed", officer, reason, now_utc())
        return task

    return _change(engine, task_id, close)


def add_note(engine: Engine, task_id: uuid.UUID, officer: str, text: str) -> Task:
    def note(session: Session, task: Task) -> Task:
        _add_note(session, task, officer, text)
        _audit(session, task.resident_key, "note_added", "a note was added", officer, task)
        return task

    return _change(engine, task_id, note)


def _add_note(session: Session, task: Task, author: str, text: str) -> None:
    if text.strip():
        session.add(TaskNote(task_id=task.task_id, author=author, text=text.strip()))


def _with(note: str) -> str:
    return " (with a note)" if note.strip() else ""


def record_view(engine: Engine, task_id: uuid.UUID, actor: str) -> None:
    """Opening a resident's task is itself audited: who looked, and when."""

    def view(session: Session, task: Task) -> None:
        _audit(session, task.resident_key, "viewed", "task opened", actor, task)

    _change(engine, task_id, view)


def record_export(engine: Engine, resident_key: str, actor: str) -> None:
    with Session(engine) as session:
        _audit(session, resident_key, "exported", "subject-access export produced", actor)
        session.commit()


# Not about any resident: the audit log's resident key is left blank for these.
NO_RESIDENT = ""


def record_ops_action(engine: Engine, action: str, reason: str, actor: str) -> None:
    """An operator's action on the pipeline (say, replaying a refused change), audited."""
    with Session(engine) as session:
        _audit(session, NO_RESIDENT, action, reason[:1000], actor)
        session.commit()


# Letters, opt-outs and flags


def handle_delivery(engine: Engine, delivery: LetterSent, policy: Policy | None = None) -> None:
    """A letter went out: the task moves to `letter_sent` and the contact is due within the
    policy's working days of it (idempotent)."""
    if delivery.event_type != "LetterSent":
        return
    working_days = policy.contact_due_working_days if policy else 10
    with Session(engine) as session:
        if _already_processed(session, delivery.event_id, "deliveries"):
            return
        task = session.get(Task, delivery.task_id)
        if task is not None and task.status == "approved":
            sent = _aware(delivery.occurred_at) or now_utc()
            task.letter_sent_at = sent
            task.letter_reference = delivery.reference
            task.due_by = add_working_days(sent.date(), working_days)
            _move(
                session,
                task,
                "letter_sent",
                "notify",
                f"letter {delivery.reference} via {delivery.channel}",
                now_utc(),
            )
        session.commit()


def set_flag(engine: Engine, resident_key: str, flag: str, source: str, actor: str) -> bool:
    """Record a flag on a resident (idempotent); an excluding flag closes open tasks.
    Returns whether the flag is new."""
    with Session(engine) as session:
        new = _set_flag(session, resident_key, flag, source, actor)
        session.commit()
        return new


def _set_flag(session: Session, resident_key: str, flag: str, source: str, actor: str) -> bool:
    existing = session.exec(
        select(ResidentFlag).where(
            ResidentFlag.resident_key == resident_key, ResidentFlag.flag == flag
        )
    ).first()
    if existing is not None:
        return False
    session.add(ResidentFlag(resident_key=resident_key, flag=flag, source=source))
    _audit(session, resident_key, "flag_set", f"{flag} (from {source})", actor)
    _close_open_tasks(
        session,
        resident_key,
        f"resident flagged: {flag}",
        f"closed because the resident is {flag}",
        actor,
    )
    return True


def _close_open_tasks(
    session: Session,
    resident_key: str,
    closed_reason: str,
    audit_reason: str,
    actor: str,
    statuses: frozenset[str] = OPEN_STATUSES,
) -> int:
    """Close every open task of the resident (or those in `statuses`); each closure is
    audited and published on outreach.tasks.v1 (a closed task is never sent a letter).
    Returns how many closed."""
    now = now_utc()
    open_tasks = session.exec(
        select(Task).where(
            Task.resident_key == resident_key, col(Task.status).in_(sorted(statuses))
        )
    ).all()
    for task in open_tasks:
        task.closed_reason = closed_reason
        _move(session, task, "closed", actor, audit_reason, now)
    return len(open_tasks)


def clear_flag(engine: Engine, resident_key: str, flag: str, actor: str) -> bool:
    """Remove a flag a person set (an admin's `deceased` or `open_case` set by hand); what
    the source systems say is theirs to clear. Returns whether there was such a flag."""
    if flag == "opted_out":
        raise FlagNotClearable(
            "Only the resident can change an opt-out; it cannot be cleared here."
        )
    with Session(engine) as session:
        existing = session.exec(
            select(ResidentFlag).where(
                ResidentFlag.resident_key == resident_key, ResidentFlag.flag == flag
            )
        ).first()
        if existing is None:
            return False
        session.delete(existing)
        _audit(session, resident_key, "flag_cleared", f"{flag} (set by hand, now cleared)", actor)
        session.commit()
        return True


def handle_source_flags(engine: Engine, event: ResidentFlagsChanged, policy: Policy) -> str:
    """Apply what the source systems now say about a resident (resident.flags.v1): the event
    holds every flag they support, so a flag missing from it is cleared. Flags set by a
    person are kept apart and never touched. `deceased` closes every open task; every flag
    the policy lists stops new tasks (`decide` reads these flags with the others).

    Idempotent on `event_id`; in order per resident by `occurred_at`: an event older than
    the one already applied is ignored (and audited), so a late arrival cannot undo a newer
    change. Returns `duplicate`, `stale`, `unchanged` or `changed`."""
    key = event.resident_key
    occurred = _aware(event.occurred_at) or now_utc()
    with Session(engine) as session:
        if _already_processed(session, event.event_id, "flags"):
            return "duplicate"
        state = session.get(SourceFlags, key)
        if state is not None and occurred < (_aware(state.as_of) or occurred):
            _audit(
                session, key, "flags_ignored",
                f"the source systems' flags as of {occurred.isoformat()} are older than those "
                f"already applied (as of {(_aware(state.as_of) or occurred).isoformat()})",
                SOURCE_SYSTEMS,
            )  # fmt: skip
            session.commit()
            return "stale"
        before = set(state.flags) if state is not None else set()
        after: set[str] = set(event.flags)
        tables = ", ".join(event.basis) or "no table named"
        for flag in sorted(after - before):
            _audit(
                session, key, "flag_set", f"{flag}, from the source systems ({tables})",
                SOURCE_SYSTEMS, policy_version=policy.version,
            )  # fmt: skip
        for flag in sorted(before - after):
            _audit(
                session, key, "flag_cleared", f"{flag}: the source systems no longer say so",
                SOURCE_SYSTEMS, policy_version=policy.version,
            )  # fmt: skip
        if state is None:
            state = SourceFlags(resident_key=key, as_of=occurred, event_id=str(event.event_id))
        state.flags = sorted(after)
        state.basis = list(event.basis)
        state.as_of = occurred
        state.event_id = str(event.event_id)
        state.updated_at = now_utc()
        session.add(state)
        if "deceased" in after:
            why = policy.exclusions.flags.get("deceased", "the resident has died")
            _close_open_tasks(
                session, key, f"{why} (from the council's records)",
                f"closed because {why}, as the source systems report", SOURCE_SYSTEMS,
            )  # fmt: skip
        elif "open_case" in after:
            # A conversation already under way carries on; a task still waiting for the
            # team's capacity has reached nobody yet, so it would be a new task: it closes.
            why = policy.exclusions.flags.get("open_case", "the resident has an open case")
            _close_open_tasks(
                session, key, f"{why} (from the council's records)",
                f"closed before release because {why}, as the source systems report",
                SOURCE_SYSTEMS, frozenset({"held_for_capacity"}),
            )  # fmt: skip
        session.commit()
        return "changed" if after != before else "unchanged"


def find_task_by_reference(engine: Engine, reference: str) -> Task | None:
    """The task whose letter carries this reference (set when the task is approved)."""
    with Session(engine) as session:
        return session.exec(select(Task).where(Task.letter_reference == reference)).first()


def opt_out(engine: Engine, resident_key: str, source: str) -> None:
    """A resident asked not to be contacted: flag them, close open tasks, and tell the other
    services (resident.optouts.v1), all in one transaction."""
    with Session(engine) as session:
        if _set_flag(session, resident_key, "opted_out", source, "resident"):
            session.add(
                outbox_entry(
                    RESIDENT_OPTOUTS.name,
                    ResidentOptedOut(
                        occurred_at=now_utc(), resident_key=resident_key, source="outreach"
                    ),
                )
            )
        session.commit()


def handle_opt_out(engine: Engine, event: ResidentOptedOut) -> None:
    """An opt-out from any channel (ours included: setting the flag twice changes nothing)."""
    with Session(engine) as session:
        if _already_processed(session, event.event_id, "optouts"):
            return
        _set_flag(session, event.resident_key, "opted_out", event.source, "resident")
        session.commit()


# Subject access and retention


def subject_access(engine: Engine, resident_key: str) -> dict[str, Any]:
    """Everything outreach holds about a resident: tasks (with their scores' reasons and
    letter references), notes, flags and every audit entry."""
    with Session(engine) as session:
        tasks = session.exec(
            select(Task).where(Task.resident_key == resident_key).order_by(col(Task.created_at))
        ).all()
        task_ids = [t.task_id for t in tasks]
        scores = task_scores(session, task_ids)
        notes = (
            session.exec(select(TaskNote).where(col(TaskNote.task_id).in_(task_ids))).all()
            if task_ids
            else []
        )
        flags = session.exec(
            select(ResidentFlag).where(ResidentFlag.resident_key == resident_key)
        ).all()
        from_sources = session.get(SourceFlags, resident_key)
        audit = session.exec(
            select(AuditEntry)
            .where(AuditEntry.resident_key == resident_key)
            .order_by(col(AuditEntry.at), col(AuditEntry.id))
        ).all()
        return {
            "resident_key": resident_key,
            "produced_at": now_utc().isoformat(),
            "tasks": [
                {
                    **t.model_dump(mode="json", exclude={"traceparent"}),
                    "letter_reference": t.letter_reference
                    or (reference_for(t.task_id) if t.approved_by else None),
                    "notes": [n.model_dump(mode="json") for n in notes if n.task_id == t.task_id],
                    # Which model versions' scores made or joined the task, as they arrived.
                    "scores": scores.get(t.task_id, []),
                }
                for t in tasks
            ],
            "flags": [f.model_dump(mode="json") for f in flags],
            "source_system_flags": from_sources.model_dump(mode="json")
            if from_sources is not None
            else None,
            "audit": [a.model_dump(mode="json") for a in audit],
        }


def purge(engine: Engine, policy: Policy, now: datetime | None = None) -> dict[str, int]:
    """Delete closed tasks (with their notes) and audit entries older than the policy's
    retention periods; logs and returns what it deleted."""
    now = now or now_utc()
    task_cutoff = now - timedelta(days=policy.retention.closed_task_days)
    audit_cutoff = now - timedelta(days=policy.retention.audit_days)
    finished = ("closed", "rejected")
    with Session(engine) as session:
        old_tasks = session.exec(
            select(Task.task_id).where(
                col(Task.status).in_(finished), col(Task.closed_at) < task_cutoff
            )
        ).all()
        notes = 0
        if old_tasks:
            notes = session.exec(
                delete(TaskNote).where(col(TaskNote.task_id).in_(old_tasks))
            ).rowcount
            session.exec(delete(Task).where(col(Task.task_id).in_(old_tasks)))
            forget_task_scores(session, old_tasks)
        audit = session.exec(delete(AuditEntry).where(col(AuditEntry.at) < audit_cutoff)).rowcount
        session.commit()
    purged = {"tasks": len(old_tasks), "notes": int(notes or 0), "audit_entries": int(audit or 0)}
    log.info(
        "retention: purged %(tasks)d closed tasks, %(notes)d notes and %(audit_entries)d "
        "audit entries",
        purged,
    )
    return purged
