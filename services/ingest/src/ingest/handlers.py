"""What ingest does with changes: check them against the mapping, find whose they are,
keep the personal part in the vault, and put pseudonymised events in the outbox — one
transaction per request, so nothing is acknowledged before it is durable.

A batch is handled with a few set-based queries (duplicates, links, vault entries,
parked changes) rather than several queries per change: this is ingest's hot path.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import String, Table, any_, bindparam, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from ingest.adapters.store import Approval, ParkedChange, RecordLink, Rejection, VaultEntry
from ingest.domain.debezium import InvalidCdc, change_from_envelope, unwrap
from ingest.domain.mapping import InvalidRow, SourceMapping, years_between
from shared import metrics
from shared.database import in_chunks
from shared.events import EventRejected, ResidentEventRecorded, TaskChanged
from shared.inbound import SourceChange
from shared.outbox import OutboxEntry, current_traceparent, outbox_entry, outbox_row
from shared.pseudonymise import age_band, resident_key
from shared.topics import INGEST_REJECTED, RESIDENT_EVENTS

EVENT_ID_NAMESPACE = uuid.UUID("5b0f6a34-3c0e-4d4b-9d55-0b5c1f2f7e11")
OUTBOX: Table = OutboxEntry.__table__  # type: ignore[attr-defined]
LINKS: Table = RecordLink.__table__  # type: ignore[attr-defined]
VAULT: Table = VaultEntry.__table__  # type: ignore[attr-defined]
PARKED: Table = ParkedChange.__table__  # type: ignore[attr-defined]


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


@dataclass(frozen=True)
class CheckedChange:
    """A change that matches its table's mapping: its row typed and converted (None for a
    delete, which carries only its key) and the row's record key."""

    change: SourceChange
    record_key: str
    row: dict[str, Any] | None


def check_change(change: SourceChange, mapping: SourceMapping) -> CheckedChange:
    """The change, checked against the mapping; InvalidRow names every column at fault."""
    if change.op == "delete":
        return CheckedChange(change, mapping.validate_key(change.table, change.record), None)
    row = mapping.validate_row(change.table, change.record)
    return CheckedChange(change, mapping.tables[change.table].record_key(row), row)


def checked_changes(
    changes: list[SourceChange], mapping: SourceMapping
) -> tuple[list[CheckedChange], dict[int, str]]:
    """A batch of native changes checked, and every problem by position, one plain
    sentence each (the checked list is complete only when there is no problem)."""
    checked = []
    problems = {}
    for index, change in enumerate(changes):
        try:
            checked.append(check_change(change, mapping))
        except InvalidRow as error:
            problems[index] = f"event {index} ({change.source_event_id}): {error}"
    return checked, problems


def check_changes(changes: list[SourceChange], mapping: SourceMapping) -> dict[int, str]:
    """Every problem with a batch of native changes, by position, one plain sentence each."""
    return checked_changes(changes, mapping)[1]


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
            check_change(change, mapping)
            changes.append(change)
        except (InvalidCdc, InvalidRow) as error:
            rejected.append(Rejected(channel, str(error), None, record))
    return changes, rejected, tombstones


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
    """One transaction's work: what the database already knows, loaded with set-based
    queries up front, and everything to write, inserted set-wise at the end.

    It works with SQLAlchemy Core (plain tuples and dicts) rather than ORM objects:
    building and tracking an object per row was most of this path's time."""

    def __init__(self, connection: Connection, pseudonym_key: str, mapping: SourceMapping) -> None:
        self.connection = connection
        self.pseudonym_key = pseudonym_key
        self.mapping = mapping
        self.outcome = Outcome()
        self.seen: set[str] = set()
        self.links: dict[tuple[str, str], str] = {}
        self.link_writes: dict[tuple[str, str], str] = {}
        # Per resident, what the events need from the vault: date of birth and ward.
        self.vault: dict[str, tuple[date | None, str | None]] = {}
        self.vault_writes: dict[str, dict[str, Any]] = {}
        self.resident_keys: dict[str, str] = {}
        self.parked_waiting: set[tuple[str, str]] = set()
        self.parked_rows: list[dict[str, Any]] = []
        self.released_parked_ids: set[int] = set()
        self.outbox_rows: list[dict[str, Any]] = []

    def resident_key_of(self, person_ref: str) -> str:
        key = self.resident_keys.get(person_ref)
        if key is None:
            key = self.resident_keys[person_ref] = resident_key(person_ref, self.pseudonym_key)
        return key

    def load(self, checked: list[CheckedChange], event_ids: list[str]) -> None:
        """What is already known about these changes, in a few queries."""
        dialect = self.connection.dialect.name
        self.seen.update(
            self.connection.execute(
                select(OUTBOX.c.event_id).where(_among(OUTBOX.c.event_id, dialect)),
                {"values": _list_value(dialect, event_ids)},
            ).scalars()
        )
        pairs = {(c.change.table, c.record_key) for c in checked}
        link_pairs = set(pairs)
        for table_name, record_key in pairs:
            link = self.mapping.tables[table_name].link
            if link:
                link_pairs.add((link, record_key))
        # Asked one table at a time, `table = ? AND key IN (…)`, so that SQLite searches
        # its index; with `(table, key) IN (VALUES …)` it scans the whole table instead.
        links = select(LINKS.c.record_key, LINKS.c.resident_key).where(
            LINKS.c.table_name == bindparam("table_name"), _among(LINKS.c.record_key, dialect)
        )
        for table_name, record_keys in _by_table(link_pairs).items():
            values = {"table_name": table_name, "values": _list_value(dialect, record_keys)}
            for record_key, key in self.connection.execute(links, values):
                self.links[(table_name, record_key)] = key
        # By key alone (its index is the selective one), the table checked here.
        self.parked_waiting.update(
            (table_name, record_key)
            for table_name, record_key in self.connection.execute(
                select(PARKED.c.waiting_for_table, PARKED.c.waiting_for_key)
                .where(_among(PARKED.c.waiting_for_key, dialect))
                .distinct(),
                {"values": _list_value(dialect, sorted({key for _, key in pairs}))},
            )
            if (table_name, record_key) in pairs
        )
        residents = set(self.links.values())
        for c in checked:
            person = self.mapping.tables[c.change.table].person
            if person and c.row is not None and c.row.get(person):
                residents.add(self.resident_key_of(str(c.row[person])))
        for key, born, ward in self.connection.execute(
            select(VAULT.c.resident_key, VAULT.c.date_of_birth, VAULT.c.ward).where(
                _among(VAULT.c.resident_key, dialect)
            ),
            {"values": _list_value(dialect, sorted(residents))},
        ):
            self.vault[key] = (born, ward)

    def accept(
        self, checked: CheckedChange, event_id: uuid.UUID, source: str, traceparent: str | None
    ) -> None:
        """Take one change: publish it pseudonymised, or park it until its resident is known."""
        change, record_key, row = checked.change, checked.record_key, checked.row
        event_key = str(event_id)
        if event_key in self.seen:
            self.outcome.duplicates += 1
            return
        table = self.mapping.tables[change.table]
        person_ref = row.get(table.person) if row is not None and table.person else None
        if person_ref:
            key: str | None = self.resident_key_of(str(person_ref))
        else:
            key = self.links.get((change.table, record_key)) or (
                self.links.get((table.link, record_key)) if table.link else None
            )
        if key is None:
            waiting_for = table.link if (row is not None and table.link) else change.table
            self.parked_rows.append(
                {
                    "waiting_for_table": waiting_for,
                    "waiting_for_key": record_key,
                    "source": source,
                    "change_json": change.model_dump_json(),
                    "traceparent": traceparent,
                    "parked_at": datetime.now(UTC),
                }
            )
            self.parked_waiting.add((waiting_for, record_key))
            self.outcome.parked += 1
            return

        self.seen.add(event_key)
        if row is not None:
            vault_fields = self.mapping.vault_fields(change.table, row)
            if vault_fields and table.person:
                self.keep_in_vault(key, str(person_ref), vault_fields)
            if self.links.get((change.table, record_key)) != key:
                self.links[(change.table, record_key)] = key
                self.link_writes[(change.table, record_key)] = key
        born, ward = self.vault.get(key, (None, None))
        on = change.occurred_at.date()
        event = ResidentEventRecorded(
            event_id=event_id,
            occurred_at=change.occurred_at,
            resident_key=key,
            source=source,
            table=change.table,
            # A row keyed by the person reference is published under the resident key instead.
            record_key=key if table.key == [table.person] else record_key,
            change=change.op,
            attributes=self.mapping.public_attributes(change.table, row, on) if row else {},
            age_band=_age_band(born, on),
            ward=ward,
        )
        self.outbox_rows.append(outbox_row(RESIDENT_EVENTS.name, event, traceparent))
        self.outcome.accepted += 1
        if row is not None and (change.table, record_key) in self.parked_waiting:
            self.release_parked(change.table, record_key)

    def keep_in_vault(self, key: str, person_ref: str, fields: dict[str, Any]) -> None:
        """The newest personal details win; the columns a change does not carry are kept."""
        pending = self.vault_writes.get(key)
        if pending is None:
            self.vault_writes[key] = {"resident_key": key, "person_ref": person_ref, **fields}
        else:
            pending.update(fields)
        born, ward = self.vault.get(key, (None, None))
        self.vault[key] = (
            fields.get("date_of_birth", born),
            fields.get("ward", ward),
        )

    def release_parked(self, table: str, record_key: str) -> None:
        """The resident of changes parked for this row is known now: take them, oldest
        first (those in the database, then those parked earlier in this batch)."""
        self.parked_waiting.discard((table, record_key))
        waiting: list[tuple[str, str, str | None]] = []
        for parked_id, source, change_json, traceparent in self.connection.execute(
            select(PARKED.c.id, PARKED.c.source, PARKED.c.change_json, PARKED.c.traceparent)
            .where(PARKED.c.waiting_for_table == table, PARKED.c.waiting_for_key == record_key)
            .order_by(PARKED.c.id)
        ):
            if parked_id not in self.released_parked_ids:
                self.released_parked_ids.add(parked_id)
                waiting.append((source, change_json, traceparent))
        still_parked = []
        for parked in self.parked_rows:
            if (parked["waiting_for_table"], parked["waiting_for_key"]) == (table, record_key):
                waiting.append((parked["source"], parked["change_json"], parked["traceparent"]))
            else:
                still_parked.append(parked)
        self.parked_rows = still_parked
        for source, change_json, traceparent in waiting:
            change = SourceChange.model_validate_json(change_json)
            self.accept(
                check_change(change, self.mapping),
                event_id_for(source, change.source_event_id),
                source,
                traceparent,
            )
            self.outcome.replayed += 1

    def write(self) -> None:
        """Everything gathered, inserted set-wise (executemany).

        Requests run concurrently, so another may have written the same link, vault entry
        or event since this one looked: links and vault entries are upserts (the newer
        change wins), and an event already in the outbox is left as it is (a duplicate)."""
        dialect = self.connection.dialect.name
        if self.link_writes:
            self.connection.execute(
                _upsert(dialect, LINKS, ["table_name", "record_key"], ["resident_key"]),
                [
                    {"table_name": t, "record_key": k, "resident_key": r}
                    for (t, k), r in self.link_writes.items()
                ],
            )
        if self.vault_writes:
            now = datetime.now(UTC)
            # One statement per set of columns: a statement's rows must all carry the same.
            by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for entry in self.vault_writes.values():
                by_columns.setdefault(tuple(sorted(entry)), []).append({**entry, "updated_at": now})
            for columns, rows in by_columns.items():
                # The person reference is kept as first seen: the resident key is made from it.
                updated = [c for c in columns if c not in ("resident_key", "person_ref")]
                statement = _upsert(dialect, VAULT, ["resident_key"], [*updated, "updated_at"])
                self.connection.execute(statement, rows)
        if self.parked_rows:
            self.connection.execute(insert(PARKED), self.parked_rows)
        for chunk in in_chunks(sorted(self.released_parked_ids)):
            self.connection.execute(delete(PARKED).where(PARKED.c.id.in_(chunk)))
        if self.outbox_rows:
            self.connection.execute(_upsert(dialect, OUTBOX, ["event_id"], []), self.outbox_rows)


def _upsert(dialect: str, table: Table, keys: list[str], updated: list[str]) -> Any:
    """INSERT … ON CONFLICT for SQLite and PostgreSQL alike: update `updated`, or (with
    none) leave the existing row as it is."""
    statement: Any = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    if not updated:
        return statement.on_conflict_do_nothing(index_elements=keys)
    return statement.on_conflict_do_update(
        index_elements=keys, set_={column: statement.excluded[column] for column in updated}
    )


def _among(column: Any, dialect: str) -> Any:
    """`column` is one of a list bound as one parameter, `values` (see `_list_value`).

    SQLAlchemy renders an `IN (…)` list afresh, value by value, at every execution, which
    was a good part of a batch's time; with one parameter the compiled statement is reused.
    SQLite reads the list as JSON (json_each), PostgreSQL as an array."""
    if dialect == "postgresql":
        return column == any_(bindparam("values", type_=postgresql.ARRAY(String)))
    listed = func.json_each(bindparam("values", type_=String)).table_valued("value")
    return column.in_(select(listed.c.value).scalar_subquery())


def _list_value(dialect: str, values: list[str]) -> Any:
    return values if dialect == "postgresql" else json.dumps(values)


def _by_table(pairs: set[tuple[str, str]]) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for table_name, record_key in sorted(pairs):
        keys.setdefault(table_name, []).append(record_key)
    return keys


def accept_changes(
    engine: Engine,
    changes: Sequence[SourceChange | CheckedChange],
    *,
    source: str,
    pseudonym_key: str,
    traceparent: str | None,
    mapping: SourceMapping,
) -> Outcome:
    """Accept changes (checked already, or checked here: InvalidRow names a bad one) in one
    transaction; nothing is acknowledged before commit."""
    checked = [c if isinstance(c, CheckedChange) else check_change(c, mapping) for c in changes]
    event_ids = [event_id_for(source, c.change.source_event_id) for c in checked]
    traceparent = traceparent or current_traceparent()
    with engine.begin() as connection:
        batch = _Batch(connection, pseudonym_key, mapping)
        batch.load(checked, [str(event_id) for event_id in event_ids])
        for change, event_id in zip(checked, event_ids, strict=True):
            batch.accept(change, event_id, source, traceparent)
        batch.write()
    return batch.outcome


def _age_band(born: date | None, on: date) -> str | None:
    return age_band(years_between(born, on)) if born else None


def record_approval(engine: Engine, task: TaskChanged) -> None:
    """Outreach approved a task: the vault may now open for that resident (idempotent)."""
    if task.event_type != "TaskApproved":
        return
    with Session(engine) as session:
        if session.get(Approval, str(task.task_id)) is None:
            session.add(Approval(task_id=str(task.task_id), resident_key=task.resident_key))
            session.commit()
