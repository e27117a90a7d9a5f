"""notify's own tables, through SQLModel: SQLite in the embedded stack, PostgreSQL in production.

Nothing here holds a name, an address or a postcode: a letter row keeps only the task,
the pseudonymous resident key, our reference and how far delivery got. The steps of a
delivery are recorded one by one, so a redelivered event resumes where the last attempt
stopped and never repeats a step that is done.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import Column, DateTime, UniqueConstraint, func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import registry
from sqlmodel import Field, Session, SQLModel, col, select

LETTER_PENDING = "pending"
LETTER_RENDERED = "rendered"
LETTER_FAILED = "failed"
NOTICE_SENT = "sent"


def utc_now() -> datetime:
    return datetime.now(UTC)


def _when(nullable: bool = True) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable)


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite forgets the time zone it was given; every time stored here is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class NotifyModel(SQLModel, registry=registry()):
    """notify's own table registry, so another service's tables in the same process never clash."""


class LetterBase(NotifyModel):
    reference: str = Field(max_length=16, unique=True)
    task_id: uuid.UUID = Field(unique=True)
    status: str = Field(default=LETTER_PENDING, max_length=16)
    channel: str = Field(max_length=16)


class LetterRecord(LetterBase, table=True):
    """One letter per task: the unique task id is what makes a redelivered approval harmless."""

    __tablename__ = "letters"

    id: int | None = Field(default=None, primary_key=True)
    resident_key: str = Field(max_length=40, index=True)
    team: str = Field(max_length=64)
    due_by: date | None = None
    failure_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_when(nullable=False))
    rendered_at: datetime | None = Field(default=None, sa_column=_when())
    published_at: datetime | None = Field(default=None, sa_column=_when())
    officer_notice: str | None = Field(default=None, max_length=200)
    officer_notified_at: datetime | None = Field(default=None, sa_column=_when())
    officer_notice_published_at: datetime | None = Field(default=None, sa_column=_when())


class LetterSummary(LetterBase):
    """What `GET /v1/letters` shows: no personal data, nothing to re-identify anyone."""

    created_at: datetime


class TaskEventSeen(NotifyModel, table=True):
    __tablename__ = "task_events"

    event_id: uuid.UUID = Field(primary_key=True)
    task_id: uuid.UUID = Field(index=True)
    event_type: str = Field(max_length=32)
    seen_at: datetime = Field(default_factory=utc_now, sa_column=_when(nullable=False))


class DeadLetter(NotifyModel, table=True):
    """A record from a topic that could not be read, kept with the reason so it can be replayed."""

    __tablename__ = "dead_letters"
    __table_args__ = (UniqueConstraint("topic", "partition", "offset"),)

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=255)
    partition: int
    offset: int
    key: str | None = Field(default=None, max_length=255)
    value: str | None = None
    reason: str = Field(max_length=1000)
    received_at: datetime = Field(default_factory=utc_now, sa_column=_when(nullable=False))


class LetterStore:
    """The repository: every read and write notify makes to its database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_tables(self) -> None:
        NotifyModel.metadata.create_all(self.engine)

    def record_task_event(self, event_id: uuid.UUID, task_id: uuid.UUID, event_type: str) -> bool:
        """Remember an event was seen; False when it had been seen before."""
        with Session(self.engine) as session:
            if session.get(TaskEventSeen, event_id) is not None:
                return False
            session.add(TaskEventSeen(event_id=event_id, task_id=task_id, event_type=event_type))
            try:
                session.commit()
            except IntegrityError:
                return False
            return True

    def claim_letter(
        self,
        *,
        task_id: uuid.UUID,
        reference: str,
        resident_key: str,
        team: str,
        due_by: date | None,
        channel: str,
    ) -> LetterRecord:
        """The task's letter row, created on first sight; the same row on every redelivery."""
        existing = self.letter_for_task(task_id)
        if existing is not None:
            return existing
        with Session(self.engine) as session:
            letter = LetterRecord(
                task_id=task_id,
                reference=reference,
                resident_key=resident_key,
                team=team,
                due_by=due_by,
                channel=channel,
            )
            session.add(letter)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()  # another worker claimed it between our read and write
            else:
                session.refresh(letter)
                return letter
        claimed = self.letter_for_task(task_id)
        if claimed is None:
            raise RuntimeError(f"letter for task {task_id} vanished after a conflicting insert")
        return claimed

    def letter_for_task(self, task_id: uuid.UUID) -> LetterRecord | None:
        with Session(self.engine) as session:
            return session.exec(select(LetterRecord).where(LetterRecord.task_id == task_id)).first()

    def letter_by_reference(self, reference: str) -> LetterRecord | None:
        with Session(self.engine) as session:
            return session.exec(
                select(LetterRecord).where(LetterRecord.reference == reference)
            ).first()

    def list_letters(self, limit: int = 100, offset: int = 0) -> list[LetterSummary]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(LetterRecord)
                .order_by(col(LetterRecord.created_at).desc(), col(LetterRecord.id).desc())
                .offset(offset)
                .limit(limit)
            ).all()
        return [
            LetterSummary(
                reference=row.reference,
                task_id=row.task_id,
                status=row.status,
                channel=row.channel,
                created_at=as_utc(row.created_at) or row.created_at,
            )
            for row in rows
        ]

    def _update(self, task_id: uuid.UUID, **changes: object) -> LetterRecord:
        with Session(self.engine) as session:
            letter = session.exec(select(LetterRecord).where(LetterRecord.task_id == task_id)).one()
            for name, value in changes.items():
                setattr(letter, name, value)
            session.add(letter)
            session.commit()
            session.refresh(letter)
            return letter

    def mark_rendered(self, task_id: uuid.UUID) -> LetterRecord:
        return self._update(task_id, status=LETTER_RENDERED, rendered_at=utc_now())

    def mark_failed(self, task_id: uuid.UUID, reason: str) -> LetterRecord:
        return self._update(task_id, status=LETTER_FAILED, failure_reason=reason[:500])

    def mark_published(self, task_id: uuid.UUID) -> LetterRecord:
        return self._update(task_id, published_at=utc_now())

    def mark_officer_notified(self, task_id: uuid.UUID, outcome: str) -> LetterRecord:
        return self._update(task_id, officer_notice=outcome[:200], officer_notified_at=utc_now())

    def mark_officer_notice_published(self, task_id: uuid.UUID) -> LetterRecord:
        return self._update(task_id, officer_notice_published_at=utc_now())

    def record_dead_letter(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        reason: str,
    ) -> None:
        with Session(self.engine) as session:
            duplicate = session.exec(
                select(DeadLetter).where(
                    DeadLetter.topic == topic,
                    DeadLetter.partition == partition,
                    DeadLetter.offset == offset,
                )
            ).first()
            if duplicate is not None:
                return  # the same record, redelivered after a restart
            session.add(
                DeadLetter(
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    key=key.decode("utf-8", "replace")[:255] if key else None,
                    value=value.decode("utf-8", "replace")[:100_000] if value is not None else None,
                    reason=reason[:1000],
                )
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()

    def stats(self) -> dict[str, int]:
        with Session(self.engine) as session:

            def count(statement: object) -> int:
                return int(session.exec(statement).one())  # type: ignore[call-overload]

            return {
                "tasks_seen": count(select(func.count(func.distinct(TaskEventSeen.task_id)))),
                "letters_rendered": count(
                    select(func.count()).where(col(LetterRecord.rendered_at).is_not(None))
                ),
                "notifications_sent": count(
                    select(func.count()).where(LetterRecord.officer_notice == NOTICE_SENT)
                ),
                "deliveries_failed": count(
                    select(func.count()).where(LetterRecord.status == LETTER_FAILED)
                ),
                "dead_letters": count(select(func.count()).select_from(DeadLetter)),
            }
