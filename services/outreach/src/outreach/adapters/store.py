"""Outreach's tables: tasks, the append-only audit log, processed events and dead letters.
(Events to publish go through shared.outbox.OutboxEntry in the same transaction.)"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class TaskBase(SQLModel):
    resident_key: str = Field(index=True)
    status: str = Field(default="proposed", index=True)
    models: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    team: str
    policy_version: str
    age_band: str | None = None
    ward: str | None = None
    due_by: date | None = None


class Task(TaskBase, table=True):
    task_id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    approved_by: str | None = None
    traceparent: str | None = None


class TaskPublic(TaskBase):
    task_id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    approved_by: str | None


class AuditEntry(SQLModel, table=True):
    """Every decision, made or held back, with its reason. Rows are only ever added."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=_now)
    resident_key: str = Field(index=True)
    task_id: uuid.UUID | None = None
    action: str
    reason: str
    actor: str
    policy_version: str | None = None
    score_event_id: str | None = None


class ProcessedEvent(SQLModel, table=True):
    """Events already handled, so that redelivery changes nothing (at-least-once input)."""

    __table_args__ = (UniqueConstraint("event_id", "consumer"),)
    id: int | None = Field(default=None, primary_key=True)
    event_id: str
    consumer: str


class DeadLetter(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=_now)
    topic: str
    partition: int
    offset: int
    reason: str


def create_tables(engine: Engine) -> None:
    import shared.outbox  # noqa: F401  (registers the outbox table with the metadata)

    SQLModel.metadata.create_all(engine)
