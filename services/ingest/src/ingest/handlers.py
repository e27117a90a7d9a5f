"""What ingest does with changes: check them against the mapping, find whose they are,
keep the personal part in the vault, and put pseudonymised events in the outbox — one
transaction per request, so nothing is acknowledged before it is durable.

A batch is handled with a few set-based queries (duplicates, links, vault entries,
parked changes) rather than several queries per change: this is ingest's hot path.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import tuple_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ingest.adapters.store import Approval, ParkedChange, RecordLink, Rejection, VaultEntry
from ingest.domain.debezium import InvalidCdc, change_from_envelope, unwrap
from ingest.domain.mapping import InvalidRow, SourceMapping, years_between
from shared import metrics
from shared.events import EventRejected, ResidentEventRecorded, TaskChanged
from shared.inbound import SourceChange
from shared.outbox import OutboxEntry, outbox_entry, outbox_row
from shared.pseudonymise import age_band, resident_key
from shared.topics import INGEST_REJECTED, RESIDENT_EVENTS

EVENT_ID_NAMESPACE = uuid.UUID("5b0f6a34-3c0e-4d4b-9d55-0b5c1f2f7e11")
CHUNK = 500  # stay well inside every database's limit on bound parameters


@dataclass
class Outcome:
    accepted: int = 0
    duplicates: int = 0
    parked: int = 0
    replayed: int = 0
    rejected: int = 0
    ignored: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "parked": self.parked,
            "rejected": self.rejected,
            "ignored": self.ignored,
        }


@dataclass
class Rejected:
    """A change refused with its reason, and what was sent, so an operator can replay it."""

    channel: str
    reason: str
    source_event_id: str | None
    payload: Any


def event_id_for(source: str, source_event_id: str) -> uuid.UUID:
    """The same change sent twice gets the same event_id, so redelivery is harmless."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}:{source_event_id}")


def check_changes(changes: list[SourceChange], mapping: SourceMapping) -> dict[int, str]:
    """Every problem with a batch of native changes, by position, one plain sentence each."""
    problems = {}
    for index, change in enumerate(changes):
        try:
            _checked_row(change, mapping)
        except InvalidRow as error:
            problems[index] = f"event {index} ({change.source_event_id}): {error}"
    return problems


def changes_from_cdc(
    records: Iterable[Any], mapping: SourceMapping, channel: str
) -> tuple[list[SourceChange], list[Rejected], int]:
    """Debezium records → checked changes, refusals with reasons, and tombstones skipped."""
    changes: list[SourceChange] = []
    rejected: list[Rejected] = []
    tombstones = 0
    for record in records:
        try:
            envelope = unwrap(record)
            if envelope is None:
                tombstones += 1
                continue
            change = change_from_envelope(envelope, mapping)
            _checked_row(change, mapping)
            changes.append(change)
        except (InvalidCdc, InvalidRow) as error:
            rejected.append(Rejected(channel, str(error), None, record))
    return changes, rejected, tombstones


def _checked_row(change: SourceChange, mapping: SourceMapping) -> tuple[str, dict[str, Any] | None]:
    if change.op == "delete":
        return mapping.validate_key(change.table, change.record), None
    row = mapping.validate_row(change.table, change.record)
    return mapping.tables[change.table].record_key(row), row


def record_rejections(engine: Engine, source: str, rejected: list[Rejected]) -> None:
    """Keep each refusal (with what was sent, in ingest's own database) and announce it on
    ingest.rejected.v1 (with the reason only: the payload may be personal)."""
    if not rejected:
        return
    with Session(engine) as session:
        for refusal in rejected:
            metrics.rejected.add(
                1, {"channel": refusal.channel, "reason": metrics.reason_kind(refusal.reason)}
            )
            row = Rejection(
                source=source,
                channel=refusal.channel,
                source_event_id=refusal.source_event_id,
                reason=refusal.reason[:2000],
                payload=json.dumps(refusal.payload, default=str)[:1_000_000],
            )
            session.add(row)
            event = EventRejected(
                source=source,
                channel=refusal.channel,
                reason=refusal.reason[:2000],
                source_event_id=refusal.source_event_id,
            )
            session.add(outbox_entry(INGEST_REJECTED.name, event))
        session.commit()


class _Batch:
    """What one transaction already knows, loaded with set-based queries up front."""

    def __init__(self, session: Session, changes: list[SourceChange], source: str) -> None:
        self.session = session
        self.event_ids = [str(event_id_for(source, c.source_event_id)) for c in changes]
        self.seen: set[str] = set()
        for chunk in _chunks(self.event_ids):
            self.seen.update(
                session.exec(
                    select(OutboxEntry.event_id).where(col(OutboxEntry.event_id).in_(chunk))
                )
            )
        self.links: dict[tuple[str, str], str] = {}
        self.new_links: dict[tuple[str, str], str] = {}
        self.moved_links: dict[tuple[str, str], str] = {}
        self.vault: dict[str, VaultEntry | None] = {}
        self.parked_waiting: set[tuple[str, str]] = set()
        self.outbox_rows: list[dict[str, Any]] = []
        self.new_vault: dict[str, dict[str, Any]] = {}

    def load_links(self, pairs: set[tuple[str, str]]) -> None:
        wanted = list(pairs - set(self.links))
        for chunk in _chunks(wanted):
            for link in self.session.exec(
                select(RecordLink).where(
                    tuple_(col(RecordLink.table_name), col(RecordLink.record_key)).in_(chunk)
                )
            ):
                self.links[(link.table_name, link.record_key)] = link.resident_key

    def load_parked(self, pairs: set[tuple[str, str]]) -> None:
        for chunk in _chunks(list(pairs)):
            self.parked_waiting.update(
                (row[0], row[1])
                for row in self.session.exec(
                    select(ParkedChange.waiting_for_table, ParkedChange.waiting_for_key).where(
                        tuple_(
                            col(ParkedChange.waiting_for_table), col(ParkedChange.waiting_for_key)
                        ).in_(chunk)
                    )
                )
            )

    def load_vault(self, keys: set[str]) -> None:
        wanted = list(keys - set(self.vault))
        for key in wanted:
            self.vault[key] = None
        for chunk in _chunks(wanted):
            for entry in self.session.exec(
                select(VaultEntry).where(col(VaultEntry.resident_key).in_(chunk))
            ):
                self.vault[entry.resident_key] = entry

    def vault_entry(self, key: str) -> VaultEntry | None:
        if key not in self.vault:
            self.load_vault({key})
        return self.vault[key]

    def write(self) -> None:
        """Everything gathered, inserted set-wise (executemany), then committed.

        Requests run concurrently, so another may have written the same link, vault entry
        or event since this one looked: links and vault entries are upserts (the newer
        change wins), and an event already in the outbox is left as it is (a duplicate)."""
        if self.new_links:
            self.session.execute(
                _upsert(RecordLink, ["table_name", "record_key"], ["resident_key"], self.session),
                [
                    {"table_name": t, "record_key": k, "resident_key": r}
                    for (t, k), r in self.new_links.items()
                ],
            )
        for (table, record_key), resident in self.moved_links.items():
            self.session.execute(
                update(RecordLink)
                .where(
                    col(RecordLink.table_name) == table, col(RecordLink.record_key) == record_key
                )
                .values(resident_key=resident)
            )
        if self.new_vault:
            now = datetime.now(UTC)
            rows = [{**row, "updated_at": now} for row in self.new_vault.values()]
            updated = sorted({column for row in rows for column in row} - {"resident_key"})
            self.session.execute(_upsert(VaultEntry, ["resident_key"], updated, self.session), rows)
        if self.outbox_rows:
            self.session.execute(
                _upsert(OutboxEntry, ["event_id"], [], self.session), self.outbox_rows
            )
        self.session.commit()


def _upsert(model: Any, keys: list[str], updated: list[str], session: Session) -> Any:
    """INSERT … ON CONFLICT for SQLite and PostgreSQL alike: update `updated`, or (with
    none) leave the existing row as it is."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement: Any = dialect.insert(model)
    if not updated:
        return statement.on_conflict_do_nothing(index_elements=keys)
    return statement.on_conflict_do_update(
        index_elements=keys, set_={column: statement.excluded[column] for column in updated}
    )


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def accept_changes(
    engine: Engine,
    changes: list[SourceChange],
    *,
    source: str,
    pseudonym_key: str,
    traceparent: str | None,
    mapping: SourceMapping,
) -> Outcome:
    """Accept checked changes in one transaction; nothing is acknowledged before commit."""
    outcome = Outcome()
    with Session(engine) as session, session.no_autoflush:
        batch = _Batch(session, changes, source)
        pairs = {(c.table, mapping.validate_key(c.table, c.record)) for c in changes}
        link_pairs = pairs | {
            (mapping.tables[t].link or t, k) for t, k in pairs if mapping.tables[t].link
        }
        batch.load_links(link_pairs)
        batch.load_parked(pairs)
        people = {
            c.record[mapping.tables[c.table].person]  # type: ignore[index]
            for c in changes
            if mapping.tables[c.table].person and c.record.get(mapping.tables[c.table].person)  # type: ignore[arg-type]
        }
        batch.load_vault(
            {resident_key(str(p), pseudonym_key) for p in people} | set(batch.links.values())
        )
        for change, event_id in zip(changes, batch.event_ids, strict=True):
            _accept_one(
                batch, change, event_id, source, pseudonym_key, traceparent, mapping, outcome
            )
        batch.write()
    return outcome


def _accept_one(
    batch: _Batch,
    change: SourceChange,
    event_id: str,
    source: str,
    pseudonym_key: str,
    traceparent: str | None,
    mapping: SourceMapping,
    outcome: Outcome,
) -> None:
    if event_id in batch.seen:
        outcome.duplicates += 1
        return
    table = mapping.tables[change.table]
    record_key, row = _checked_row(change, mapping)
    person_ref = row.get(table.person) if row is not None and table.person else None
    if person_ref:
        key: str | None = resident_key(str(person_ref), pseudonym_key)
    else:
        key = batch.links.get((change.table, record_key)) or (
            batch.links.get((table.link, record_key)) if table.link else None
        )
    if key is None:
        waiting_for = table.link if (row is not None and table.link) else change.table
        batch.session.add(
            ParkedChange(
                waiting_for_table=waiting_for,
                waiting_for_key=record_key,
                source=source,
                change_json=change.model_dump_json(),
                traceparent=traceparent,
            )
        )
        batch.parked_waiting.add((waiting_for, record_key))
        outcome.parked += 1
        return

    batch.seen.add(event_id)
    if row is not None:
        vault_fields = mapping.vault_fields(change.table, row)
        if vault_fields and table.person:
            _keep_in_vault(batch, key, str(person_ref), vault_fields)
        _link(batch, change.table, record_key, key)
    vault = batch.vault_entry(key)
    on = change.occurred_at.date()
    event = ResidentEventRecorded(
        event_id=uuid.UUID(event_id),
        occurred_at=change.occurred_at,
        resident_key=key,
        source=source,
        table=change.table,
        # A row keyed by the person reference is published under the resident key instead.
        record_key=key if table.key == [table.person] else record_key,
        change=change.op,
        attributes=mapping.public_attributes(change.table, row, on) if row else {},
        age_band=_age_band(vault.date_of_birth if vault else None, on),
        ward=vault.ward if vault else None,
    )
    batch.outbox_rows.append(outbox_row(RESIDENT_EVENTS.name, event, traceparent))
    outcome.accepted += 1
    if row is not None and (change.table, record_key) in batch.parked_waiting:
        _replay_parked(batch, change.table, record_key, pseudonym_key, mapping, outcome)


def _age_band(born: date | None, on: date) -> str | None:
    return age_band(years_between(born, on)) if born else None


def _link(batch: _Batch, table: str, record_key: str, key: str) -> None:
    known = batch.links.get((table, record_key))
    if known is None:
        batch.new_links[(table, record_key)] = key
    elif known != key and (table, record_key) not in batch.new_links:
        batch.moved_links[(table, record_key)] = key
    elif known != key:
        batch.new_links[(table, record_key)] = key
    batch.links[(table, record_key)] = key


def _keep_in_vault(batch: _Batch, key: str, person_ref: str, fields: dict[str, Any]) -> None:
    entry = batch.vault_entry(key)
    if entry is None:
        # A new resident: inserted with the batch (building an ORM object per row is what
        # made this path slow); held meanwhile as a plain, unattached entry.
        batch.new_vault[key] = {"resident_key": key, "person_ref": person_ref, **fields}
        batch.vault[key] = VaultEntry.model_construct(**batch.new_vault[key])
        return
    if key in batch.new_vault:
        batch.new_vault[key].update(fields)
        batch.vault[key] = VaultEntry.model_construct(**batch.new_vault[key])
        return
    for name, value in fields.items():
        setattr(entry, name, value)
    entry.updated_at = datetime.now(UTC)
    batch.session.add(entry)


def _replay_parked(
    batch: _Batch,
    table: str,
    record_key: str,
    pseudonym_key: str,
    mapping: SourceMapping,
    outcome: Outcome,
) -> None:
    batch.session.flush()
    waiting = batch.session.exec(
        select(ParkedChange)
        .where(ParkedChange.waiting_for_table == table, ParkedChange.waiting_for_key == record_key)
        .order_by(col(ParkedChange.id))
    ).all()
    batch.parked_waiting.discard((table, record_key))
    for parked in waiting:
        batch.session.delete(parked)
        change = SourceChange.model_validate_json(parked.change_json)
        event_id = str(event_id_for(parked.source, change.source_event_id))
        _accept_one(
            batch,
            change,
            event_id,
            parked.source,
            pseudonym_key,
            parked.traceparent,
            mapping,
            outcome,
        )
        outcome.replayed += 1


def record_approval(engine: Engine, task: TaskChanged) -> None:
    """Outreach approved a task: the vault may now open for that resident (idempotent)."""
    if task.event_type != "TaskApproved":
        return
    with Session(engine) as session:
        if session.get(Approval, str(task.task_id)) is None:
            session.add(Approval(task_id=str(task.task_id), resident_key=task.resident_key))
            session.commit()
