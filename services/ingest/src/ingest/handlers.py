"""What ingest does with a change: check it, find whose it is, keep the personal part in
the vault, and put the pseudonymised event in the outbox — all in one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ingest.adapters.store import (
    Approval,
    ParkedChange,
    RecordLink,
    Rejection,
    VaultEntry,
)
from ingest.domain.records import (
    InvalidRow,
    Resident,
    Row,
    non_personal_attributes,
    validate_key_only,
    validate_row,
    years_between,
)
from shared.events import ResidentEventRecorded, TaskChanged
from shared.inbound import RECORD_KEYS, SourceChange
from shared.outbox import OutboxEntry, outbox_entry
from shared.pseudonymise import age_band, resident_key
from shared.topics import RESIDENT_EVENTS

EVENT_ID_NAMESPACE = uuid.UUID("5b0f6a34-3c0e-4d4b-9d55-0b5c1f2f7e11")
# A row keyed by something other than a person is placed through the row it hangs off.
PARENT_LINK = {"housing.rent_accounts": "housing.tenancies"}


@dataclass
class Outcome:
    accepted: int = 0
    duplicates: int = 0
    parked: int = 0
    replayed: int = 0
    problems: list[str] = field(default_factory=list)


def event_id_for(source: str, source_event_id: str) -> uuid.UUID:
    """The same change sent twice gets the same event_id, so redelivery is harmless."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}:{source_event_id}")


def check_changes(changes: list[SourceChange]) -> list[str]:
    """Every problem with a batch, one plain sentence each, numbered by position."""
    problems = []
    for index, change in enumerate(changes):
        try:
            _validated_row(change)
        except InvalidRow as error:
            problems.append(f"event {index} ({change.source_event_id}): {error}")
    return problems


def record_rejections(
    engine: Engine, source: str, channel: str, rejected: list[tuple[str | None, str]]
) -> None:
    with Session(engine) as session:
        for source_event_id, reason in rejected:
            session.add(
                Rejection(
                    source=source, channel=channel, source_event_id=source_event_id, reason=reason
                )
            )
        session.commit()


def accept_changes(
    engine: Engine,
    changes: list[SourceChange],
    *,
    source: str,
    pseudonym_key: str,
    traceparent: str | None,
) -> Outcome:
    """Accept checked changes in one transaction; nothing is acknowledged before commit."""
    outcome = Outcome()
    with Session(engine) as session:
        for change in changes:
            _accept_one(session, change, source, pseudonym_key, traceparent, outcome)
        session.commit()
    return outcome


def _validated_row(change: SourceChange) -> tuple[str, Row | None]:
    if change.op == "delete":
        return validate_key_only(change.table, change.record), None
    row = validate_row(change.table, change.record)
    return str(getattr(row, RECORD_KEYS[change.table])), row


def _accept_one(
    session: Session,
    change: SourceChange,
    source: str,
    pseudonym_key: str,
    traceparent: str | None,
    outcome: Outcome,
) -> None:
    event_id = str(event_id_for(source, change.source_event_id))
    if session.exec(select(OutboxEntry.id).where(OutboxEntry.event_id == event_id)).first():
        outcome.duplicates += 1
        return
    record_key, row = _validated_row(change)
    person_ref = getattr(row, "person_ref", None)
    key = (
        resident_key(person_ref, pseudonym_key)
        if person_ref
        else _linked_resident(session, change.table, record_key)
    )
    if key is None:
        waiting_for = change.table if row is None else PARENT_LINK.get(change.table, change.table)
        session.add(
            ParkedChange(
                waiting_for_table=waiting_for,
                waiting_for_key=record_key,
                source=source,
                change_json=change.model_dump_json(),
                traceparent=traceparent,
            )
        )
        outcome.parked += 1
        return

    if isinstance(row, Resident):
        _keep_in_vault(session, key, row)
    if row is not None:
        _link(session, change.table, record_key, key)
    vault = session.get(VaultEntry, key)
    on = change.occurred_at.date()
    event = ResidentEventRecorded(
        event_id=uuid.UUID(event_id),
        occurred_at=change.occurred_at,
        resident_key=key,
        source=source,
        table=change.table,
        # A resident's own row is keyed by the person reference, which never leaves ingest.
        record_key=key if change.table == "people.residents" else record_key,
        change=change.op,
        attributes=non_personal_attributes(row, on) if row else {},
        age_band=age_band(years_between(vault.date_of_birth, on))
        if vault and vault.date_of_birth
        else None,
        ward=vault.ward if vault else None,
    )
    session.add(outbox_entry(RESIDENT_EVENTS.name, event, traceparent))
    outcome.accepted += 1
    if row is not None:
        _replay_parked(session, change.table, record_key, pseudonym_key, outcome)


def _linked_resident(session: Session, table: str, record_key: str) -> str | None:
    for link_table in (table, PARENT_LINK.get(table)):
        if link_table is None:
            continue
        link = session.exec(
            select(RecordLink).where(
                RecordLink.table_name == link_table, RecordLink.record_key == record_key
            )
        ).first()
        if link:
            return link.resident_key
    return None


def _link(session: Session, table: str, record_key: str, key: str) -> None:
    link = session.exec(
        select(RecordLink).where(
            RecordLink.table_name == table, RecordLink.record_key == record_key
        )
    ).first()
    if link is None:
        session.add(RecordLink(table_name=table, record_key=record_key, resident_key=key))
        session.flush()
    elif link.resident_key != key:
        link.resident_key = key
        session.add(link)


def _keep_in_vault(session: Session, key: str, row: Resident) -> None:
    entry = session.get(VaultEntry, key) or VaultEntry(resident_key=key, person_ref=row.person_ref)
    for column in (
        "given_name",
        "family_name",
        "date_of_birth",
        "address_line_1",
        "address_line_2",
        "address_line_3",
        "town",
        "postcode",
        "uprn",
        "ward",
        "preferred_language",
    ):
        setattr(entry, column, getattr(row, column))
    session.add(entry)
    session.flush()


def _replay_parked(
    session: Session, table: str, record_key: str, pseudonym_key: str, outcome: Outcome
) -> None:
    waiting = session.exec(
        select(ParkedChange)
        .where(ParkedChange.waiting_for_table == table, ParkedChange.waiting_for_key == record_key)
        .order_by(col(ParkedChange.id))
    ).all()
    for parked in waiting:
        session.delete(parked)
        session.flush()
        change = SourceChange.model_validate_json(parked.change_json)
        _accept_one(session, change, parked.source, pseudonym_key, parked.traceparent, outcome)
        outcome.replayed += 1


def record_approval(engine: Engine, task: TaskChanged) -> None:
    """Outreach approved a task: the vault may now open for that resident (idempotent)."""
    if task.event_type != "TaskApproved":
        return
    with Session(engine) as session:
        if session.get(Approval, str(task.task_id)) is None:
            session.add(Approval(task_id=str(task.task_id), resident_key=task.resident_key))
            session.commit()
