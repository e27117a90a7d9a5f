"""How events become Kafka records and back: JSON values, resident key as the message key.

A record that cannot be decoded raises `UndecodableEvent` with a reason a person can
read, so the consumer can dead-letter it instead of crashing or dropping it.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from shared.events import SCHEMA_VERSION

EventT = TypeVar("EventT", bound=BaseModel)


class UndecodableEvent(ValueError):
    """A record that is not a valid event of the expected type."""


def encode(event: BaseModel) -> bytes:
    return event.model_dump_json().encode()


def message_key(event: BaseModel) -> bytes | None:
    """Partition by resident so that one resident's events stay in order."""
    key = getattr(event, "resident_key", None)
    return key.encode() if key else None


def decode(value: bytes | None, model: type[EventT]) -> EventT:
    if value is None:
        raise UndecodableEvent("empty record (tombstone)")
    try:
        event = model.model_validate_json(value)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in error.errors()
        )
        raise UndecodableEvent(f"not a valid {model.__name__}: {problems}"[:1000]) from error
    version = getattr(event, "schema_version", SCHEMA_VERSION)
    if version > SCHEMA_VERSION:
        raise UndecodableEvent(f"schema_version {version} is newer than this consumer knows")
    return event
