"""The synthetic borough's history as Debezium change events, as a council's PostgreSQL
source systems would emit them through Debezium (Kafka Connect or Debezium Server).

What comes out follows `../shared/contracts/source-systems.md` and its samples:

- one topic per table, `<prefix>.<schema>.<table>`; the record key is the row's key
  columns as JSON, the value the change envelope (`before`, `after`, `source`, `op`,
  `ts_ms`), or nothing at all (a tombstone) right after each delete;
- first a snapshot: every row alive at `snapshot_at`, table by table, as reads (`op: r`,
  `source.snapshot` `first` / `true` / `last`); then the changes after it in time order:
  creates (`c`), updates (`u`, whose `before` holds only the key columns, as without
  `REPLICA IDENTITY FULL`) and deletes (`d`, `before` the key columns, `after` null);
- `decimal.handling.mode=string` numerics as strings (`"6.5"`), `date` columns as days
  since 1970-01-01, `timestamp` columns as microseconds since the epoch;
- `source` with `version`, `connector`, `name`, `ts_ms`, `snapshot`, `db`, `sequence`,
  `schema`, `table`, `txId`, `lsn`, `xmin`; `lsn` and `txId` rise per database;
- with `with_schema=True` both key and value are wrapped as the JSON converter does with
  `schemas.enable=true`: `{"schema": {...}, "payload": {...}}`.

Everything is a function of the borough alone, so the same seed gives the same records,
byte for byte.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from proactive.borough import Borough, SourceRow, ordered_rows
from shared.events import Scalar
from shared.inbound import RECORD_KEYS

DEBEZIUM_VERSION = "2.7.3.Final"
DEFAULT_PREFIX = "council"
# Which PostgreSQL database each schema lives in (one product per service area).
DATABASES: dict[str, str] = {
    "people": "residentindex",
    "housing": "housing",
    "revenues": "revsbens",
    "benefits": "revsbens",
    "social_care": "socialcare",
    "health": "partners",
}

Kind = Literal["text", "int32", "int64", "bool", "numeric", "date", "timestamp"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    optional: bool = True


def _columns(spec: str) -> tuple[Column, ...]:
    """`name:kind` pairs; a trailing `!` marks a NOT NULL column."""
    columns = []
    for item in spec.split():
        name, kind = item.split(":")
        columns.append(Column(name, kind.rstrip("!"), optional=not kind.endswith("!")))  # type: ignore[arg-type]
    return tuple(columns)


# The data contract's columns, in table order, with their PostgreSQL types.
TABLES: dict[str, tuple[Column, ...]] = {
    "people.residents": _columns(
        "person_ref:text! given_name:text family_name:text date_of_birth:date "
        "address_line_1:text address_line_2:text address_line_3:text town:text postcode:text "
        "uprn:text ward:text sex:text ethnicity:text preferred_language:text lives_alone:bool "
        "deceased_date:date"
    ),
    "housing.tenancies": _columns(
        "tenancy_ref:text! person_ref:text! tenure_type:text! start_date:date end_date:date "
        "household_size:int32 bedrooms:int32"
    ),
    "housing.rent_accounts": _columns(
        "tenancy_ref:text! balance_pence:int64 weeks_in_arrears:numeric "
        "last_payment_date:date nosp_served:bool eviction_date:date"
    ),
    "revenues.council_tax_accounts": _columns(
        "account_ref:text! person_ref:text! arrears_pence:int64 single_person_discount:bool "
        "reduction_award_pence:int64 enforcement_stage:text"
    ),
    "benefits.claims": _columns(
        "claim_ref:text! person_ref:text! benefit_type:text! status:text! "
        "weekly_amount_pence:int64 benefit_cap_applied:bool"
    ),
    "social_care.contacts": _columns(
        "contact_id:text! person_ref:text! contact_date:date! reason:text! outcome:text"
    ),
    "social_care.care_packages": _columns(
        "package_id:text! person_ref:text! service_type:text! hours_per_week:numeric "
        "start_date:date end_date:date"
    ),
    "health.ambulance_callouts": _columns(
        "incident_id:text! person_ref:text! incident_at:timestamp! category:text!"
    ),
    "health.hospital_discharges": _columns(
        "spell_id:text! person_ref:text! admitted_on:date! discharged_on:date! reason:text! "
        "destination:text!"
    ),
}

_CONNECT_TYPES: dict[str, dict[str, Any]] = {
    "text": {"type": "string"},
    "int32": {"type": "int32"},
    "int64": {"type": "int64"},
    "bool": {"type": "boolean"},
    "numeric": {"type": "string"},  # decimal.handling.mode=string
    "date": {"type": "int32", "name": "io.debezium.time.Date", "version": 1},
    "timestamp": {"type": "int64", "name": "io.debezium.time.MicroTimestamp", "version": 1},
}
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class CdcRecord:
    """One Kafka record as Debezium writes it: topic, key and value (None: a tombstone)."""

    topic: str
    table: str  # `<schema>.<table>`
    key: dict[str, Any]
    value: dict[str, Any] | None

    @property
    def op(self) -> str | None:
        """`r`, `c`, `u` or `d`; None for a tombstone."""
        if self.value is None:
            return None
        return str(_payload(self.value)["op"])

    def key_bytes(self) -> bytes:
        return _json(self.key)

    def value_bytes(self) -> bytes | None:
        return None if self.value is None else _json(self.value)


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _payload(value: dict[str, Any]) -> dict[str, Any]:
    inner = value.get("payload")
    return inner if isinstance(inner, dict) and "schema" in value else value


def topic_for(table: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}.{table}"


def to_debezium_value(column: Column, value: Scalar) -> Scalar:
    """A native (contract) value as Debezium's PostgreSQL connector sends it."""
    if value is None:
        return None
    if column.kind == "date":
        return (date.fromisoformat(str(value)[:10]) - _EPOCH).days
    if column.kind == "timestamp":
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if column.kind == "numeric":
        return f"{float(value):.1f}"  # numeric(5,1) keeps its scale
    if column.kind in ("int32", "int64"):
        return int(value)
    return value


def from_debezium_value(column: Column, value: Any) -> Scalar:
    """The inverse of `to_debezium_value`: back to the native contract's types."""
    if value is None:
        return None
    if column.kind == "date":
        return (_EPOCH + timedelta(days=int(value))).isoformat()
    if column.kind == "timestamp":
        return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(value))).isoformat()
    if column.kind == "numeric":
        return float(value)
    scalar: Scalar = value
    return scalar


def debezium_row(table: str, record: dict[str, Scalar]) -> dict[str, Scalar]:
    """A full native row in Debezium's types, columns in table order."""
    return {c.name: to_debezium_value(c, record.get(c.name)) for c in TABLES[table]}


def native_row(table: str, row: dict[str, Any]) -> dict[str, Scalar]:
    """A Debezium `after` back as a native record (for tests and round trips)."""
    columns = {c.name: c for c in TABLES[table]}
    return {name: from_debezium_value(columns[name], value) for name, value in row.items()}


def key_of(table: str, record: dict[str, Scalar]) -> dict[str, Scalar]:
    column = RECORD_KEYS[table]
    return {column: record[column]}


def _struct(name: str, columns: Iterable[Column], optional: bool) -> dict[str, Any]:
    return {
        "type": "struct",
        "optional": optional,
        "name": name,
        "fields": [
            {"field": c.name, **_CONNECT_TYPES[c.kind], "optional": c.optional} for c in columns
        ],
    }


_SOURCE_FIELDS = [
    {"field": "version", "type": "string", "optional": False},
    {"field": "connector", "type": "string", "optional": False},
    {"field": "name", "type": "string", "optional": False},
    {"field": "ts_ms", "type": "int64", "optional": False},
    {"field": "snapshot", "type": "string", "optional": True},
    {"field": "db", "type": "string", "optional": False},
    {"field": "sequence", "type": "string", "optional": True},
    {"field": "schema", "type": "string", "optional": False},
    {"field": "table", "type": "string", "optional": False},
    {"field": "txId", "type": "int64", "optional": True},
    {"field": "lsn", "type": "int64", "optional": True},
    {"field": "xmin", "type": "int64", "optional": True},
]


@lru_cache(maxsize=64)
def value_schema(table: str, prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    """The Kafka Connect schema of `table`'s change envelope (`schemas.enable=true`)."""
    name = f"{prefix}.{table}"
    return {
        "type": "struct",
        "name": f"{name}.Envelope",
        "optional": False,
        "fields": [
            {"field": "before", **_struct(f"{name}.Value", TABLES[table], True)},
            {"field": "after", **_struct(f"{name}.Value", TABLES[table], True)},
            {
                "field": "source",
                "type": "struct",
                "optional": False,
                "name": "io.debezium.connector.postgresql.Source",
                "fields": _SOURCE_FIELDS,
            },
            {"field": "op", "type": "string", "optional": False},
            {"field": "ts_ms", "type": "int64", "optional": True},
        ],
    }


@lru_cache(maxsize=64)
def key_schema(table: str, prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    column = next(c for c in TABLES[table] if c.name == RECORD_KEYS[table])
    return _struct(f"{prefix}.{table}.Key", [column], False)


class _Database:
    """A database's write-ahead log position and transaction ids, rising per change."""

    def __init__(self, name: str) -> None:
        self.lsn = 20_000_000 + zlib.crc32(name.encode()) % 1_000_000 * 8
        self.tx_id = 500 + zlib.crc32(name.encode()) % 1000

    def next(self, size: int) -> tuple[int, int, int]:
        previous = self.lsn
        self.lsn += 8 + size
        self.tx_id += 1
        return previous, self.lsn, self.tx_id


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def debezium_records(
    borough: Borough,
    *,
    prefix: str = DEFAULT_PREFIX,
    with_schema: bool = False,
    snapshot_at: datetime | None = None,
) -> Iterator[CdcRecord]:
    """The borough's whole history as Debezium records: snapshot reads, then changes.

    `snapshot_at` (default: a year before the borough's `as_of`) is when the connector
    started: rows as they stood then are read, later changes streamed.
    """
    if snapshot_at is None:
        end = borough.as_of
        snapshot_at = datetime(end.year, end.month, end.day, 18, tzinfo=UTC) - timedelta(days=365)
    return _records(list(ordered_rows(borough.residents)), prefix, with_schema, snapshot_at)


def _records(
    rows: list[SourceRow], prefix: str, with_schema: bool, snapshot_at: datetime
) -> Iterator[CdcRecord]:
    databases = {name: _Database(name) for name in sorted(set(DATABASES.values()))}
    emit = _Emitter(prefix, with_schema, databases)

    # The snapshot: the latest version of every row alive at `snapshot_at`.
    live: dict[tuple[str, str], dict[str, Scalar]] = {}
    streamed = []
    for row in rows:
        if row.occurred_at > snapshot_at:
            streamed.append(row)
            continue
        slot = (row.table, str(row.record[RECORD_KEYS[row.table]]))
        if row.op == "delete":
            live.pop(slot, None)
        else:
            live[slot] = row.record
    table_order = list(TABLES)
    reads = sorted(live.items(), key=lambda item: (table_order.index(item[0][0]), item[0][1]))
    snapshot_ms = _ms(snapshot_at)
    for index, ((table, _), record) in enumerate(reads):
        flag = "first" if index == 0 else "last" if index == len(reads) - 1 else "true"
        yield emit.change(
            table, "r", None, record, snapshot_ms, snapshot_ms + 1 + index // 50, flag
        )

    # Then every change after it, in the order the databases committed them.
    for row in streamed:
        slot = (row.table, str(row.record[RECORD_KEYS[row.table]]))
        source_ms = _ms(row.occurred_at)
        lag = 50 + zlib.crc32(row.source_event_id.encode()) % 900
        key = key_of(row.table, row.record)
        if row.op == "delete":
            if live.pop(slot, None) is None:
                continue  # nothing to delete: a source database would not log it either
            yield emit.change(row.table, "d", key, None, source_ms, source_ms + lag, "false")
            yield CdcRecord(topic_for(row.table, prefix), row.table, emit.key(row.table, key), None)
        elif slot in live:
            live[slot] = row.record
            yield emit.change(row.table, "u", key, row.record, source_ms, source_ms + lag, "false")
        else:
            live[slot] = row.record
            yield emit.change(row.table, "c", None, row.record, source_ms, source_ms + lag, "false")


class _Emitter:
    def __init__(self, prefix: str, with_schema: bool, databases: dict[str, _Database]) -> None:
        self.prefix = prefix
        self.with_schema = with_schema
        self.databases = databases

    def key(self, table: str, key: dict[str, Scalar]) -> dict[str, Any]:
        if self.with_schema:
            return {"schema": key_schema(table, self.prefix), "payload": key}
        return key

    def change(
        self,
        table: str,
        op: str,
        before: dict[str, Scalar] | None,
        after: dict[str, Scalar] | None,
        source_ms: int,
        ts_ms: int,
        snapshot: str,
    ) -> CdcRecord:
        schema, name = table.split(".")
        db = DATABASES[schema]
        after_row = None if after is None else debezium_row(table, after)
        previous, lsn, tx_id = self.databases[db].next(len(json.dumps(after_row)))
        source: dict[str, Any] = {
            "version": DEBEZIUM_VERSION,
            "connector": "postgresql",
            "name": self.prefix,
            "ts_ms": source_ms,
            "snapshot": snapshot,
            "db": db,
            "sequence": json.dumps([str(previous), str(lsn)], separators=(",", ":")),
            "schema": schema,
            "table": name,
            "txId": tx_id,
            "lsn": lsn,
            "xmin": None,
        }
        envelope: dict[str, Any] = {
            "before": None if before is None else dict(before),
            "after": after_row,
            "source": source,
            "op": op,
            "ts_ms": ts_ms,
        }
        key = key_of(table, after if after is not None else before or {})
        value = (
            {"schema": value_schema(table, self.prefix), "payload": envelope}
            if self.with_schema
            else envelope
        )
        return CdcRecord(topic_for(table, self.prefix), table, self.key(table, key), value)


def topics(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Every CDC topic the borough writes to."""
    return [topic_for(table, prefix) for table in TABLES]
