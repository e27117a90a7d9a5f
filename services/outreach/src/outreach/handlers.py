"""Outreach's handlers: a score may become a task; an officer approves it; a letter moves
it on. Each runs in one transaction with its audit entry and its outgoing event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from outreach.adapters.store import AuditEntry, ProcessedEvent, Task
from outreach.domain.policy import (
    OPEN_STATUSES,
    ExistingTask,
    Policy,
    add_working_days,
    decide,
)
from shared.events import LetterSent, Reason, RiskScored, TaskChanged
from shared.outbox import current_traceparent, outbox_entry
from shared.telemetry import context_from_headers
from shared.topics import OUTREACH_TASKS

SIMULATED_OFFICER = "simulated-officer"
tracer = trace.get_tracer("outreach")


class TaskNotFound(LookupError):
    pass


class TaskNotApprovable(ValueError):
    pass


def _already_processed(session: Session, event_id: uuid.UUID, consumer: str) -> bool:
    seen = session.exec(
        select(ProcessedEvent).where(
            ProcessedEvent.event_id == str(event_id), ProcessedEvent.consumer == consumer
        )
    ).first()
    if seen:
        return True
    session.add(ProcessedEvent(event_id=str(event_id), consumer=consumer))
    return False


def _task_event(task: Task, event_type: str, actor: str) -> TaskChanged:
    return TaskChanged(
        event_type=event_type,
        occurred_at=datetime.now(UTC),
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
    )


def handle_score(engine: Engine, score: RiskScored, policy: Policy) -> str:
    """Apply the policy to a score; returns the action taken (for counting and tests)."""
    with Session(engine) as session:
        if _already_processed(session, score.event_id, "scores"):
            return "duplicate"
        tasks = session.exec(select(Task).where(Task.resident_key == score.resident_key)).all()
        decision = decide(
            score,
            policy,
            [ExistingTask(t.status, list(t.models), _aware(t.created_at)) for t in tasks],
            datetime.now(UTC),
        )
        reasons = [r.model_dump() for r in score.reasons]
        task: Task | None = None
        if decision.action == "create":
            task = _create_task(session, score, policy, decision.team or "", reasons)
        elif decision.action == "add_to_open_task":
            task = next(t for t in tasks if t.status in OPEN_STATUSES)
            task.models = [*task.models, score.model]
            task.reasons = sorted(
                [*task.reasons, *reasons], key=lambda r: -float(r["contribution"])
            )[:3]
            task.updated_at = datetime.now(UTC)
            session.add(task)
        if decision.action != "none":
            session.add(
                AuditEntry(
                    resident_key=score.resident_key,
                    task_id=task.task_id if task else None,
                    action=decision.action,
                    reason=decision.reason,
                    actor="policy",
                    policy_version=policy.version,
                    score_event_id=str(score.event_id),
                )
            )
        session.commit()
        return decision.action


def _create_task(
    session: Session, score: RiskScored, policy: Policy, team: str, reasons: list[dict[str, Any]]
) -> Task:
    task = Task(
        resident_key=score.resident_key,
        models=[score.model],
        reasons=reasons,
        team=team,
        policy_version=policy.version,
        age_band=score.age_band,
        ward=score.ward,
    )
    with tracer.start_as_current_span(
        "task create",
        attributes={"proactive.task_id": str(task.task_id), "proactive.model": score.model},
    ):
        task.traceparent = current_traceparent()
        session.add(task)
        session.add(outbox_entry(OUTREACH_TASKS.name, _task_event(task, "TaskCreated", "policy")))
    return task


def approve_task(engine: Engine, task_id: uuid.UUID, officer: str, policy: Policy) -> Task:
    """An officer's review: only an approved task may lead to a letter."""
    with Session(engine) as session:
        task = session.get(Task, task_id)
        if task is None:
            raise TaskNotFound(f"No task {task_id}.")
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
            return _approve(session, task, officer, policy)


def _actor_kind(officer: str) -> str:
    return "simulated" if officer == SIMULATED_OFFICER else "officer"


def _approve(session: Session, task: Task, officer: str, policy: Policy) -> Task:
    task.status = "approved"
    task.approved_by = officer
    task.due_by = add_working_days(datetime.now(UTC).date(), policy.contact_due_working_days)
    task.updated_at = datetime.now(UTC)
    session.add(task)
    session.add(
        AuditEntry(
            resident_key=task.resident_key,
            task_id=task.task_id,
            action="approved",
            reason="simulated approval (demo only)"
            if officer == SIMULATED_OFFICER
            else "officer review",
            actor=officer,
            policy_version=task.policy_version,
        )
    )
    session.add(outbox_entry(OUTREACH_TASKS.name, _task_event(task, "TaskApproved", officer)))
    session.commit()
    session.refresh(task)
    return task


def handle_delivery(engine: Engine, delivery: LetterSent) -> None:
    """A letter went out: the task moves to `letter_sent` (idempotent)."""
    if delivery.event_type != "LetterSent":
        return
    with Session(engine) as session:
        if _already_processed(session, delivery.event_id, "deliveries"):
            return
        task = session.get(Task, delivery.task_id)
        if task is not None and task.status == "approved":
            task.status = "letter_sent"
            task.updated_at = datetime.now(UTC)
            session.add(task)
            session.add(
                AuditEntry(
                    resident_key=task.resident_key,
                    task_id=task.task_id,
                    action="letter_sent",
                    reason=f"letter {delivery.reference} via {delivery.channel}",
                    actor="notify",
                    policy_version=task.policy_version,
                )
            )
            session.add(
                outbox_entry(OUTREACH_TASKS.name, _task_event(task, "TaskStatusChanged", "notify"))
            )
        session.commit()


def _aware(moment: datetime) -> datetime:
    # SQLite hands datetimes back without their zone; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
