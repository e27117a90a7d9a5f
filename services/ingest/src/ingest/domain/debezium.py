"""Debezium change events, turned into the same source changes native events become.

Accepts an envelope with or without the JSON converter's `schema`/`payload` wrapper,
from Debezium Server's HTTP sink or from a Kafka CDC topic. A tombstone (a null value
after a delete) carries nothing and is skipped. Values arrive in Debezium's defaults: a
`date` as days since 1970-01-01, a `timestamp` as microseconds since the epoch, and a
`numeric` as a string (`decimal.handling.mode=string`); the mapping says which is which.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from ingest.domain.mapping import InvalidRow, SourceMapping
from shared.inbound import SourceChange

EPOCH_DAY = date(1970, 1, 1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OPS = {"c": "upsert", "u": "upsert", "r": "upsert", "d": "delete"}


class InvalidCdc(ValueError):
    """A Debezium record that cannot be taken; the message says why, plainly."""


def unwrap(value: Any) -> dict[str, Any] | None:
    """The envelope itself, or None for a tombstone."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidCdc(f"a Debezium record must be a JSON object, not {type(value).__name__}")
    if "payload" in value and "schema" in value:
        value = value["payload"]
        if value is None:
            return None
        if not isinstance(value, dict):
            raise InvalidCdc("the `payload` of a wrapped Debezium record must be an object")
    return value


def _table_of(envelope: dict[str, Any]) -> str:
    source = envelope.get("source")
    if not isinstance(source, dict) or not source.get("schema") or not source.get("table"):
        raise InvalidCdc("the envelope's `source` must name its `schema` and `table`")
    return f"{source['schema']}.{source['table']}"


def _occurred_at(envelope: dict[str, Any]) -> datetime:
    source = envelope["source"]
    millis = source.get("ts_ms") or envelope.get("ts_ms")
    if not isinstance(millis, int) or isinstance(millis, bool):
        raise InvalidCdc("the envelope has no `source.ts_ms` or `ts_ms` to order it by")
    try:
        return EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        raise InvalidCdc(f"`ts_ms` {millis} is not a time this side of year 9999") from None


def _decode_values(record: dict[str, Any], table: str, mapping: SourceMapping) -> dict[str, Any]:
    columns = mapping.column_types(table)
    decoded = dict(record)
    for name, value in record.items():
        column = columns.get(name)
        if column is None or not isinstance(value, int) or isinstance(value, bool):
            continue
        try:
            if column.type == "date":
                decoded[name] = (EPOCH_DAY + timedelta(days=value)).isoformat()
            elif column.type == "timestamp":
                decoded[name] = (EPOCH + timedelta(microseconds=value)).isoformat()
        except OverflowError:
            raise InvalidCdc(
                f"column `{name}`: {value} is out of range for a {column.type}"
            ) from None
    return decoded


def change_from_envelope(envelope: dict[str, Any], mapping: SourceMapping) -> SourceChange:
    """One source change from one (unwrapped) envelope; InvalidCdc or InvalidRow if not."""
    op = envelope.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise InvalidCdc(f"unknown op {op!r}: expected one of c, u, r, d")
    table = _table_of(envelope)
    mapping.table(table)  # an unknown table is refused here, by name
    side = "before" if op == "d" else "after"
    record = envelope.get(side)
    if not isinstance(record, dict):
        raise InvalidCdc(f"op {op!r} needs `{side}` to be an object")
    record = _decode_values(record, table, mapping)
    key = mapping.validate_key(table, record)
    source = envelope["source"]
    position = source.get("lsn") or source.get("ts_ms")
    try:
        return SourceChange(
            # Idempotent on (table, key, position in the log, op): a redelivered change
            # gets the same id, and so the same event_id downstream.
            source_event_id=f"cdc:{table}:{key}:{position}:{op}"[:128],
            table=table,
            op=OPS[op],
            occurred_at=_occurred_at(envelope),
            record=record,
        )
    except ValueError as error:
        raise InvalidCdc(f"the change could not be read: {error}") from error


def envelopes_in(body: Any) -> list[Any]:
    """Debezium Server's HTTP sink posts one record, or an array of them."""
    return body if isinstance(body, list) else [body]


__all__ = ["InvalidCdc", "InvalidRow", "change_from_envelope", "envelopes_in", "unwrap"]
