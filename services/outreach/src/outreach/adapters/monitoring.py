"""Outreach's monitoring tables: which residents have been scored (for the fairness
monitor's denominators) and which model versions' scores made or joined each task (the
model-change record), with the queries the fairness page and the subject-access export read.

Like every outreach table, nothing here names anyone: a resident is their pseudonymous
`resident_key`, an age band and a ward.

Schema: migration revision 0002 (`migrations/versions/r0002_fairness_monitoring_tables.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, func
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Engine
from sqlmodel import JSON, Field, Session, SQLModel, col, delete, select

from outreach.adapters.store import Task
from outreach.domain.fairness import ResidentCell, TaskCell
from shared.events import RiskScored

UNKNOWN = "unknown"


def _now() -> datetime:
    return datetime.now(UTC)


class ScoredResident(SQLModel, table=True):
    """A resident outreach has had at least one score for, with the age band and ward of
    their latest score: the population the fairness monitor's selection rate divides by."""

    resident_key: str = Field(primary_key=True)
    age_band: str | None = Field(default=None, index=True)
    ward: str | None = Field(default=None, index=True)
    # For fairness monitoring only: never shown on a task, never used to decide anything.
    sex: str | None = None
    ethnicity: str | None = None
    first_scored_at: datetime = Field(default_factory=_now)
    last_scored_at: datetime = Field(default_factory=_now, index=True)


class TaskScore(SQLModel, table=True):
    """One score that made or joined a task, exactly as it arrived: the model, its version,
    the probability, band and reasons. With the model cards kept for every version (and the
    transparency record's history), any task can be explained later as it was made."""

    id: int | None = Field(default=None, primary_key=True)
    task_id: uuid.UUID = Field(index=True)
    score_event_id: str = Field(unique=True)
    model: str
    model_version: str = Field(index=True)
    probability: float
    band: str
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    scored_at: datetime
    recorded_at: datetime = Field(default_factory=_now)


# Written by handlers.handle_scores, in the transaction of the score's batch (which
# residents were scored is kept there, read and written once a batch).


def record_task_score(session: Session, task_id: uuid.UUID, score: RiskScored) -> None:
    """Keep the score that made or joined a task, with its model version."""
    session.add(
        TaskScore(
            task_id=task_id,
            score_event_id=str(score.event_id),
            model=score.model,
            model_version=score.model_version,
            probability=score.probability,
            band=score.band,
            reasons=[r.model_dump() for r in score.reasons],
            scored_at=score.occurred_at,
        )
    )


def forget_task_scores(session: Session, task_ids: Sequence[uuid.UUID]) -> int:
    """The retention job deletes a task's scores with the task."""
    if not task_ids:
        return 0
    result = session.exec(delete(TaskScore).where(col(TaskScore.task_id).in_(task_ids)))
    return int(result.rowcount or 0)


# Read by the fairness monitor and the subject-access export.


def task_scores(
    session: Session, task_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The scores behind each task, oldest first, as the export shows them."""
    if not task_ids:
        return {}
    rows = session.exec(
        select(TaskScore)
        .where(col(TaskScore.task_id).in_(task_ids))
        .order_by(col(TaskScore.scored_at), col(TaskScore.id))
    ).all()
    found: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row.task_id, []).append(
            row.model_dump(mode="json", exclude={"id", "task_id"})
        )
    return found


def fairness_cells(engine: Engine) -> tuple[list[ResidentCell], list[TaskCell]]:
    """Scored residents and tasks, counted by age band, ward, sex and ethnicity (and, for
    tasks, by how far they got): everything the fairness figures need, and nothing about
    any one person. A task's sex and ethnicity come from its resident's latest score."""
    # Grouped on columns and IS NOT NULL tests only (no bound values), which PostgreSQL
    # accepts in GROUP BY as written in the SELECT.
    approved = col(Task.approved_by).is_not(None)
    contacted = col(Task.contacted_at).is_not(None)
    sex, ethnicity = col(ScoredResident.sex), col(ScoredResident.ethnicity)
    task_columns = (
        col(Task.age_band), col(Task.ward), sex, ethnicity, col(Task.status), approved, contacted
    )  # fmt: skip
    with Session(engine) as session:
        resident_columns = (col(ScoredResident.age_band), col(ScoredResident.ward), sex, ethnicity)
        residents = session.execute(
            select_columns(*resident_columns, func.count()).group_by(*resident_columns)
        ).all()
        tasks = session.execute(
            select_columns(*task_columns, col(Task.outcome), func.count())
            .select_from(Task)
            .outerjoin(ScoredResident, col(ScoredResident.resident_key) == col(Task.resident_key))
            .group_by(*task_columns, col(Task.outcome))
        ).all()
    return (
        [
            ResidentCell(a or UNKNOWN, w or UNKNOWN, int(n), s or UNKNOWN, e or UNKNOWN)
            for a, w, s, e, n in residents
        ],
        [
            TaskCell(
                age_band=age or UNKNOWN,
                ward=ward or UNKNOWN,
                reviewed=bool(was_approved) or status == "rejected",
                approved=bool(was_approved),
                contacted=bool(was_contacted),
                support_offered=outcome == "support_offered",
                count=int(count),
                sex=sex_of or UNKNOWN,
                ethnicity=ethnicity_of or UNKNOWN,
            )
            for age, ward, sex_of, ethnicity_of, status, was_approved, was_contacted, outcome, count in tasks
        ],
    )


def model_versions_in_use(engine: Engine) -> list[dict[str, Any]]:
    """Each model version that made or joined tasks: how many, first and last seen."""
    with Session(engine) as session:
        rows = session.execute(
            select_columns(
                col(TaskScore.model),
                col(TaskScore.model_version),
                func.count(func.distinct(TaskScore.task_id)),
                func.min(TaskScore.scored_at),
                func.max(TaskScore.scored_at),
            )
            .group_by(col(TaskScore.model), col(TaskScore.model_version))
            .order_by(col(TaskScore.model), func.min(TaskScore.scored_at))
        ).all()
    return [
        {
            "model": model,
            "model_version": version,
            "tasks": int(tasks),
            "first_scored_at": first.isoformat() if first else None,
            "last_scored_at": last.isoformat() if last else None,
        }
        for model, version, tasks, first, last in rows
    ]
