"""Read-side queries the officer pages and the JSON API share: the filtered task queue, one
task with its notes and timeline, a team's figures, and the dead letters ops staff see."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from outreach.adapters.store import AuditEntry, DeadLetter, Task, TaskNote
from outreach.domain.lifecycle import OUTCOMES
from outreach.domain.policy import OPEN_STATUSES, Policy, week_start


@dataclass(frozen=True)
class TaskFilter:
    status: str | None = None
    team: str | None = None
    model: str | None = None
    due_before: date | None = None
    assigned_to: str | None = None


@dataclass
class TaskPage:
    tasks: list[Task]
    total: int
    offset: int
    limit: int


def list_tasks(engine: Engine, filters: TaskFilter, offset: int = 0, limit: int = 50) -> TaskPage:
    with Session(engine) as session:
        query = select(Task)
        if filters.status:
            query = query.where(Task.status == filters.status)
        if filters.team:
            query = query.where(Task.team == filters.team)
        if filters.due_before:
            query = query.where(col(Task.due_by) <= filters.due_before)
        if filters.assigned_to:
            query = query.where(Task.assigned_to == filters.assigned_to)
        ordered = query.order_by(col(Task.due_by).asc().nulls_last(), col(Task.created_at).desc())
        if filters.model:
            # Models live in a JSON list; filtering here keeps one query for both databases.
            rows = [t for t in session.exec(ordered) if filters.model in t.models]
            return TaskPage(rows[offset : offset + limit], len(rows), offset, limit)
        total = int(session.exec(select(func.count()).select_from(query.subquery())).one())
        rows = list(session.exec(ordered.offset(offset).limit(limit)))
        return TaskPage(rows, total, offset, limit)


@dataclass
class TaskDetail:
    task: Task
    notes: list[TaskNote]
    timeline: list[AuditEntry]


def task_detail(engine: Engine, task_id: uuid.UUID) -> TaskDetail | None:
    with Session(engine) as session:
        task = session.get(Task, task_id)
        if task is None:
            return None
        notes = session.exec(
            select(TaskNote).where(TaskNote.task_id == task_id).order_by(col(TaskNote.at))
        ).all()
        timeline = session.exec(
            select(AuditEntry)
            .where(AuditEntry.task_id == task_id)
            .order_by(col(AuditEntry.at), col(AuditEntry.id))
        ).all()
        return TaskDetail(task, list(notes), list(timeline))


@dataclass
class TeamFigures:
    team: str
    weekly_capacity: int | None
    taken_this_week: int
    held: int
    open_by_status: dict[str, int] = field(default_factory=dict)
    overdue: int = 0
    closed_last_28_days: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def outcome_rates(self) -> dict[str, float]:
        total = sum(self.outcomes.values())
        return {k: (v / total if total else 0.0) for k, v in self.outcomes.items()}

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "outcome_rates": self.outcome_rates}


def team_summary(engine: Engine, policy: Policy, now: datetime) -> list[TeamFigures]:
    """Capacity, throughput and outcome rates for each team the policy names."""
    teams = sorted({rule.team for rule in policy.rules} | set(policy.teams))
    since = now - timedelta(days=28)
    figures = []
    with Session(engine) as session:
        for team in teams:
            tasks = session.exec(select(Task).where(Task.team == team)).all()
            taken = int(
                session.exec(
                    select(func.count())
                    .select_from(Task)
                    .where(
                        Task.team == team,
                        col(Task.released_at) >= week_start(now),
                        col(Task.status) != "rejected",
                    )
                ).one()
            )
            open_by_status = {s: 0 for s in sorted(OPEN_STATUSES)}
            outcomes = dict.fromkeys(OUTCOMES, 0)
            overdue = closed = 0
            for task in tasks:
                if task.status in open_by_status:
                    open_by_status[task.status] += 1
                if task.outcome in outcomes:
                    outcomes[task.outcome] += 1
                if task.due_by and task.due_by < now.date() and task.status == "letter_sent":
                    overdue += 1
                closed_at = task.closed_at
                if closed_at is not None and closed_at.replace(tzinfo=now.tzinfo) >= since:
                    closed += 1
            figures.append(
                TeamFigures(
                    team=team,
                    weekly_capacity=policy.capacity_of(team),
                    taken_this_week=taken,
                    held=open_by_status["held_for_capacity"],
                    open_by_status=open_by_status,
                    overdue=overdue,
                    closed_last_28_days=closed,
                    outcomes=outcomes,
                )
            )
    return figures


def recent_dead_letters(engine: Engine, limit: int = 20) -> tuple[list[DeadLetter], int]:
    """The newest records outreach could not read (newest first), and how many there are."""
    with Session(engine) as session:
        rows = session.exec(select(DeadLetter).order_by(col(DeadLetter.id).desc()).limit(limit))
        total = session.exec(select(func.count()).select_from(DeadLetter)).one()
        return list(rows.all()), int(total)
