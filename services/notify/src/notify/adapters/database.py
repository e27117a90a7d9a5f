"""notify's own tables, through SQLModel: SQLite in the embedded stack, PostgreSQL in production.

Nothing here holds a name, an address or a postcode: a letter row keeps only the task,
the pseudonymous resident key, our reference and how far delivery got. The steps of a
delivery are recorded one by one, so a redelivered event resumes where the last attempt
stopped and never repeats a step that is done.

- `letters`: one per task, with its overall status.
- `notify_deliveries`: one per (task, letter version) sent through GOV.UK Notify, written
  before the letter is posted to Notify, so a crash can never lead to a second letter.
- `delivery_events`: the outbox. Every event notify publishes is stored here in the same
  transaction as the change it reports, then published and marked.
- `officer_notices`, `officer_digests`, `optouts`, `task_events`, `dead_letters`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Column, DateTime, UniqueConstraint, func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import registry
from sqlmodel import Field, Session, SQLModel, col, select

from shared.events import LetterSent

LETTER_PENDING = "pending"
LETTER_RENDERED = "rendered"  # a PDF in the letters folder
LETTER_SUBMITTED = "submitted"  # handed to GOV.UK Notify, which prints and posts it
LETTER_RECEIVED = "received"  # Notify's printer has dispatched it
LETTER_FAILED = "failed"
LETTER_CANCELLED = "cancelled"
NOTICE_SENT = "sent"

DELIVERY_SENDING = "sending"  # recorded before the POST: Notify may or may not have it
DELIVERY_SUBMITTED = "submitted"  # Notify has it; its status is polled
DELIVERY_FINAL = "final"  # Notify's status will not change again (or we stopped asking)


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
    # Kept so databases made by earlier versions still load; events and officer notices now
    # live in `delivery_events` and `officer_notices`.
    published_at: datetime | None = Field(default=None, sa_column=_when())
    officer_notice: str | None = Field(default=None, max_length=200)
    officer_notified_at: datetime | None = Field(default=None, sa_column=_when())
    officer_notice_published_at: datetime | None = Field(default=None, sa_column=_when())


class LetterSummary(LetterBase):
    """What `GET /v1/letters` shows: no personal data, nothing to re-identify anyone."""

    created_at: datetime


class NotifyDelivery(NotifyModel, table=True):
    """A letter handed (or about to be handed) to GOV.UK Notify: the once-only send record."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (UniqueConstraint("task_id", "letter_version"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: uuid.UUID = Field(index=True)
    letter_version: int = 1
    notify_reference: str = Field(max_length=64, unique=True)
    state: str = Field(default=DELIVERY_SENDING, max_length=16, index=True)
    send_attempts: int = 0
    notification_id: str | None = Field(default=None, max_length=64)
    notify_status: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_when(nullable=False))
    submitted_at: datetime | None = Field(default=None, sa_column=_when())
    checked_at: datetime | None = Field(default=None, sa_column=_when())
    next_check_at: datetime | None = Field(default=None, sa_column=_when())
    finished_at: datetime | None = Field(default=None, sa_column=_when())


class DeliveryEvent(NotifyModel, table=True):
    """An event for `notify.deliveries.v1`, kept until the broker has acknowledged it."""

    __tablename__ = "delivery_events"

    id: int | None = Field(default=None, primary_key=True)
    event_id: uuid.UUID = Field(unique=True)
    task_id: uuid.UUID = Field(index=True)
    resident_key: str = Field(max_length=40)
    event_type: str = Field(max_length=32)
    channel: str = Field(max_length=16)
    status: str = Field(max_length=64)
    reference: str = Field(max_length=16)
    recorded_at: datetime = Field(default_factory=utc_now, sa_column=_when(nullable=False))
    published_at: datetime | None = Field(default=None, sa_column=_when())


class OfficerNotice(NotifyModel, table=True):
    """A notice to the approving team: `letter` (on its way) or `problem` (needs a person)."""

    __tablename__ = "officer_notices"
    __table_args__ = (UniqueConstraint("task_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: uuid.UUID = Field(index=True)
    kind: str = Field(max_length=16)
    channel: str = Field(max_length=16)
    outcome: str = Field(max_length=200)
    notified_at: datetime = Field(default_factory=utc_now, sa_column=_when(nullable=False))


class OfficerDigest(NotifyModel, table=True):
    __tablename__ = "officer_digests"

    day: date = Field(primary_key=True)
    outcome: str = Field(max_length=200)
    sent_at: datetime = Field(default_factory=utc_now, sa_column=_when(nullable=False))


class OptOut(NotifyModel, table=True):
    """A resident who asked not to be contacted: any letter not yet sent is cancelled."""

    __tablename__ = "optouts"

    resident_key: str = Field(primary_key=True, max_length=40)
    event_id: uuid.UUID
    scope: str = Field(max_length=16)
    opted_out_at: datetime = Field(sa_column=_when(nullable=False))


@dataclass(frozen=True)
class DigestRow:
    """One of the day's delivery outcomes, as the daily digest sees it."""

    task_id: uuid.UUID
    reference: str
    team: str
    event_type: str
    channel: str
    status: str
    due_by: date | None


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

    def _update(
        self, task_id: uuid.UUID, events: Iterable[LetterSent] = (), **changes: object
    ) -> LetterRecord:
        """Change the letter and store the events that report it, in one transaction."""
        with Session(self.engine) as session:
            letter = session.exec(select(LetterRecord).where(LetterRecord.task_id == task_id)).one()
            for name, value in changes.items():
                setattr(letter, name, value)
            session.add(letter)
            for event in events:
                _add_event(session, event)
            session.commit()
            session.refresh(letter)
            return letter

    def mark_rendered(self, task_id: uuid.UUID, event: LetterSent) -> LetterRecord:
        return self._update(task_id, [event], status=LETTER_RENDERED, rendered_at=utc_now())

    def mark_failed(self, task_id: uuid.UUID, reason: str, event: LetterSent) -> LetterRecord:
        return self._update(task_id, [event], status=LETTER_FAILED, failure_reason=reason[:500])

    def mark_cancelled(self, task_id: uuid.UUID, reason: str, event: LetterSent) -> LetterRecord:
        return self._update(task_id, [event], status=LETTER_CANCELLED, failure_reason=reason[:500])

    # The outbox of delivery events.

    def record_event(self, event: LetterSent) -> None:
        with Session(self.engine) as session:
            _add_event(session, event)
            session.commit()

    def unpublished_events(
        self, task_id: uuid.UUID | None = None, limit: int = 500
    ) -> list[DeliveryEvent]:
        with Session(self.engine) as session:
            query = select(DeliveryEvent).where(col(DeliveryEvent.published_at).is_(None))
            if task_id is not None:
                query = query.where(DeliveryEvent.task_id == task_id)
            return list(session.exec(query.order_by(col(DeliveryEvent.id)).limit(limit)).all())

    def mark_event_published(self, event_id: uuid.UUID) -> None:
        with Session(self.engine) as session:
            row = session.exec(
                select(DeliveryEvent).where(DeliveryEvent.event_id == event_id)
            ).one()
            row.published_at = utc_now()
            session.add(row)
            session.commit()

    def events_for_task(self, task_id: uuid.UUID) -> list[DeliveryEvent]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(DeliveryEvent)
                    .where(DeliveryEvent.task_id == task_id)
                    .order_by(col(DeliveryEvent.id))
                ).all()
            )

    # GOV.UK Notify deliveries.

    def claim_delivery(
        self, task_id: uuid.UUID, letter_version: int, notify_reference: str
    ) -> NotifyDelivery:
        """The delivery row for this task and letter version, created (committed) on first sight."""
        with Session(self.engine) as session:
            existing = session.exec(
                select(NotifyDelivery).where(
                    NotifyDelivery.task_id == task_id,
                    NotifyDelivery.letter_version == letter_version,
                )
            ).first()
            if existing is not None:
                return existing
            delivery = NotifyDelivery(
                task_id=task_id, letter_version=letter_version, notify_reference=notify_reference
            )
            session.add(delivery)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return session.exec(
                    select(NotifyDelivery).where(
                        NotifyDelivery.task_id == task_id,
                        NotifyDelivery.letter_version == letter_version,
                    )
                ).one()
            session.refresh(delivery)
            return delivery

    def note_send_attempt(self, delivery_id: int) -> NotifyDelivery:
        """Counted and committed before the POST: from now on Notify may have the letter."""
        with Session(self.engine) as session:
            delivery = session.get_one(NotifyDelivery, delivery_id)
            delivery.send_attempts += 1
            session.add(delivery)
            session.commit()
            session.refresh(delivery)
            return delivery

    def record_submission(
        self,
        delivery_id: int,
        *,
        notification_id: str,
        notify_status: str | None,
        next_check_at: datetime,
    ) -> LetterRecord:
        with Session(self.engine) as session:
            delivery = session.get_one(NotifyDelivery, delivery_id)
            delivery.state = DELIVERY_SUBMITTED
            delivery.notification_id = notification_id
            delivery.notify_status = notify_status
            delivery.submitted_at = utc_now()
            delivery.next_check_at = next_check_at
            letter = session.exec(
                select(LetterRecord).where(LetterRecord.task_id == delivery.task_id)
            ).one()
            letter.status = LETTER_SUBMITTED
            letter.rendered_at = utc_now()
            session.add(delivery)
            session.add(letter)
            session.commit()
            session.refresh(letter)
            return letter

    def deliveries_due(self, now: datetime, limit: int = 100) -> list[NotifyDelivery]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(NotifyDelivery)
                    .where(
                        NotifyDelivery.state == DELIVERY_SUBMITTED,
                        col(NotifyDelivery.next_check_at) <= now,
                    )
                    .order_by(col(NotifyDelivery.next_check_at))
                    .limit(limit)
                ).all()
            )

    def delivery_for_task(
        self, task_id: uuid.UUID, letter_version: int = 1
    ) -> NotifyDelivery | None:
        with Session(self.engine) as session:
            return session.exec(
                select(NotifyDelivery).where(
                    NotifyDelivery.task_id == task_id,
                    NotifyDelivery.letter_version == letter_version,
                )
            ).first()

    def record_status(
        self,
        delivery_id: int,
        *,
        notify_status: str,
        final: bool,
        next_check_at: datetime | None,
        letter_changes: dict[str, object],
        events: Iterable[LetterSent],
    ) -> None:
        """Notify's latest status, the letter's and the events that report it, all at once."""
        with Session(self.engine) as session:
            delivery = session.get_one(NotifyDelivery, delivery_id)
            delivery.notify_status = notify_status
            delivery.checked_at = utc_now()
            delivery.next_check_at = next_check_at
            if final:
                delivery.state = DELIVERY_FINAL
                delivery.finished_at = utc_now()
            session.add(delivery)
            if letter_changes:
                letter = session.exec(
                    select(LetterRecord).where(LetterRecord.task_id == delivery.task_id)
                ).one()
                for name, value in letter_changes.items():
                    setattr(letter, name, value)
                session.add(letter)
            for event in events:
                _add_event(session, event)
            session.commit()

    # Opt-outs.

    def record_optout(
        self, resident_key: str, event_id: uuid.UUID, scope: str, when: datetime
    ) -> bool:
        """Remember an opt-out; False when it was known already."""
        with Session(self.engine) as session:
            if session.get(OptOut, resident_key) is not None:
                return False
            session.add(
                OptOut(resident_key=resident_key, event_id=event_id, scope=scope, opted_out_at=when)
            )
            try:
                session.commit()
            except IntegrityError:
                return False
            return True

    def is_opted_out(self, resident_key: str) -> bool:
        with Session(self.engine) as session:
            return session.get(OptOut, resident_key) is not None

    def pending_letters_for(self, resident_key: str) -> list[LetterRecord]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(LetterRecord).where(
                        LetterRecord.resident_key == resident_key,
                        LetterRecord.status == LETTER_PENDING,
                    )
                ).all()
            )

    # Officer notices and the daily digest.

    def officer_notice(self, task_id: uuid.UUID, kind: str) -> OfficerNotice | None:
        with Session(self.engine) as session:
            return session.exec(
                select(OfficerNotice).where(
                    OfficerNotice.task_id == task_id, OfficerNotice.kind == kind
                )
            ).first()

    def record_officer_notice(
        self, task_id: uuid.UUID, kind: str, channel: str, outcome: str, event: LetterSent
    ) -> None:
        with Session(self.engine) as session:
            session.add(
                OfficerNotice(task_id=task_id, kind=kind, channel=channel, outcome=outcome[:200])
            )
            _add_event(session, event)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()  # recorded by an earlier attempt

    def digest_rows(self, day: date) -> list[DigestRow]:
        """The letter outcomes recorded on `day` (UTC), with each letter's team and due date."""
        start = datetime.combine(day, time(0), tzinfo=UTC)
        with Session(self.engine) as session:
            rows = session.exec(
                select(DeliveryEvent, LetterRecord)
                .join(LetterRecord, col(LetterRecord.task_id) == col(DeliveryEvent.task_id))
                .where(
                    col(DeliveryEvent.recorded_at) >= start,
                    col(DeliveryEvent.recorded_at) < start + timedelta(days=1),
                    col(DeliveryEvent.event_type).in_(["LetterSent", "DeliveryFailed"]),
                    DeliveryEvent.channel != "webhook",
                )
                .order_by(col(DeliveryEvent.id))
            ).all()
        return [
            DigestRow(
                task_id=event.task_id,
                reference=event.reference,
                team=letter.team,
                event_type=event.event_type,
                channel=event.channel,
                status=event.status,
                due_by=letter.due_by,
            )
            for event, letter in rows
        ]

    def digest_sent(self, day: date) -> bool:
        with Session(self.engine) as session:
            return session.get(OfficerDigest, day) is not None

    def record_digest(self, day: date, outcome: str) -> None:
        with Session(self.engine) as session:
            session.add(OfficerDigest(day=day, outcome=outcome[:200]))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()

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
                    select(func.count()).where(OfficerNotice.outcome == NOTICE_SENT)
                ),
                "deliveries_failed": count(
                    select(func.count()).where(LetterRecord.status == LETTER_FAILED)
                ),
                "letters_cancelled": count(
                    select(func.count()).where(LetterRecord.status == LETTER_CANCELLED)
                ),
                "letters_received": count(
                    select(func.count()).where(LetterRecord.status == LETTER_RECEIVED)
                ),
                "dead_letters": count(select(func.count()).select_from(DeadLetter)),
            }


def _add_event(session: Session, event: LetterSent) -> None:
    """Stage an event in the outbox unless it is there already (same id: same event)."""
    fields = event.model_dump()
    exists = session.exec(
        select(DeliveryEvent.id).where(DeliveryEvent.event_id == fields["event_id"])
    ).first()
    if exists is not None:
        return
    session.add(
        DeliveryEvent(
            event_id=fields["event_id"],
            task_id=fields["task_id"],
            resident_key=fields["resident_key"],
            event_type=fields["event_type"],
            channel=fields["channel"],
            status=str(fields["status"])[:64],
            reference=fields["reference"],
            recorded_at=fields["occurred_at"],
        )
    )


def as_event(row: DeliveryEvent) -> LetterSent:
    """The stored event, ready to publish again exactly as it was first written."""
    return LetterSent(
        event_id=row.event_id,
        event_type=row.event_type,
        occurred_at=as_utc(row.recorded_at) or row.recorded_at,
        resident_key=row.resident_key,
        source="notify",
        task_id=row.task_id,
        channel=row.channel,
        status=row.status,
        reference=row.reference,
    )
