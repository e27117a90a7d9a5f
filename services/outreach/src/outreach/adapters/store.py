"""Outreach's tables: tasks and their notes, residents' flags, the append-only audit log,
officers, processed events and dead letters. (Events to publish go through
shared.outbox.OutboxEntry in the same transaction.)

Nothing here holds a name, an address, a postcode or a date of birth: a resident is only
ever their pseudonymous `resident_key`, an age band and a ward.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class TaskBase(SQLModel):
    resident_key: str = Field(index=True)
    status: str = Field(default="proposed", index=True)
    models: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    team: str = Field(index=True)
    policy_version: str
    age_band: str | None = None
    ward: str | None = None
    due_by: date | None = None
    assigned_to: str | None = None
    outcome: str | None = None
    closed_reason: str | None = None


class Task(TaskBase, table=True):
    task_id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    # When the task entered the officers' queue; a held task has none until capacity frees.
    released_at: datetime | None = Field(default=None, index=True)
    approved_by: str | None = None
    # The highest probability among the task's scores: the order held tasks are released in.
    # Officers see it only when they ask for it.
    priority: float = 0.0
    letter_reference: str | None = Field(default=None, index=True)
    letter_sent_at: datetime | None = None
    contacted_at: datetime | None = None
    closed_at: datetime | None = Field(default=None, index=True)
    traceparent: str | None = None


class TaskPublic(TaskBase):
    task_id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    released_at: datetime | None
    approved_by: str | None
    letter_reference: str | None
    letter_sent_at: datetime | None
    contacted_at: datetime | None
    closed_at: datetime | None


class TaskNote(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    task_id: uuid.UUID = Field(index=True)
    at: datetime = Field(default_factory=_now)
    author: str
    text: str


class ResidentFlag(SQLModel, table=True):
    """Something known about a resident that stops outreach, set by a person: `opted_out`
    (the resident), or `deceased`, `open_case`, ... by an admin (the policy lists which flags
    exclude). What the source systems say is in `SourceFlags`."""

    __table_args__ = (UniqueConstraint("resident_key", "flag"),)
    id: int | None = Field(default=None, primary_key=True)
    resident_key: str = Field(index=True)
    flag: str
    source: str
    set_at: datetime = Field(default_factory=_now)


class SourceFlags(SQLModel, table=True):
    """What the source systems last said about a resident (`resident.flags.v1`): the flags
    they now support and when that was so (`as_of`, the event's `occurred_at`), so that an
    older event arriving late cannot undo a newer one. Kept apart from `ResidentFlag` (set by
    an admin or by the resident) so that neither side can clear what the other set."""

    resident_key: str = Field(primary_key=True)
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    basis: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    as_of: datetime
    event_id: str
    updated_at: datetime = Field(default_factory=_now)


class AuditEntry(SQLModel, table=True):
    """Every decision, made or held back, with its reason. Rows are only ever added (and
    deleted by the retention job when they are old enough)."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=_now, index=True)
    resident_key: str = Field(index=True)
    task_id: uuid.UUID | None = Field(default=None, index=True)
    action: str
    reason: str
    actor: str
    policy_version: str | None = None
    score_event_id: str | None = None


class User(SQLModel, table=True):
    """A person who signs in to the officer service (dev log-in; production uses OIDC)."""

    username: str = Field(primary_key=True)
    password_hash: str
    role: str
    team: str | None = None
    created_at: datetime = Field(default_factory=_now)


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


class AuditLogIsAppendOnly(RuntimeError):
    pass


@event.listens_for(OrmSession, "before_flush")
def _refuse_audit_changes(session: OrmSession, _context: Any, _instances: Any) -> None:
    # The retention job deletes with a bulk statement, which does not pass through here.
    for instance in (*session.dirty, *session.deleted):
        if isinstance(instance, AuditEntry):
            raise AuditLogIsAppendOnly("Audit entries can be added, never changed or removed.")


def create_tables(engine: Engine) -> None:
    import shared.outbox  # noqa: F401  (registers the outbox table with the metadata)

    SQLModel.metadata.create_all(engine)
