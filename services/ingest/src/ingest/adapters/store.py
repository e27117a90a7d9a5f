"""Ingest's own tables: source keys, the identity vault, record links, parked changes,
rejections, approvals from outreach and the vault's audit log. (The outbox table is
shared.outbox.OutboxEntry.)"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, date, datetime

from sqlalchemy import UniqueConstraint
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select


def _now() -> datetime:
    return datetime.now(UTC)


class SourceKey(SQLModel, table=True):
    """An API key a source system presents. Only a hash is kept."""

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)
    key_hash: str = Field(unique=True)
    created_at: datetime = Field(default_factory=_now)
    revoked: bool = False


class VaultEntry(SQLModel, table=True):
    """A resident's personal details. They never leave ingest except through the vault
    API, for a task an officer approved."""

    resident_key: str = Field(primary_key=True)
    person_ref: str = Field(index=True)
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: date | None = None
    address_line_1: str | None = None
    address_line_2: str | None = None
    address_line_3: str | None = None
    town: str | None = None
    postcode: str | None = None
    uprn: str | None = None
    ward: str | None = None
    preferred_language: str | None = None
    updated_at: datetime = Field(default_factory=_now)


class RecordLink(SQLModel, table=True):
    """Which resident a source row belongs to, so rows keyed by something else (a rent
    account by its tenancy, a delete by its key alone) can be placed."""

    __table_args__ = (UniqueConstraint("table_name", "record_key"),)
    id: int | None = Field(default=None, primary_key=True)
    table_name: str
    record_key: str
    resident_key: str


class ParkedChange(SQLModel, table=True):
    """A change whose resident is not known yet; replayed when its link arrives."""

    id: int | None = Field(default=None, primary_key=True)
    waiting_for_table: str = Field(index=True)
    waiting_for_key: str = Field(index=True)
    source: str
    change_json: str
    traceparent: str | None = None
    parked_at: datetime = Field(default_factory=_now)


class Rejection(SQLModel, table=True):
    """An inbound change ingest refused, with the reason and what was sent, so that an
    operator can inspect it and replay it once the cause is fixed. What was sent may be
    personal: it stays here, in ingest's own database, and is never published."""

    id: int | None = Field(default=None, primary_key=True)
    source: str
    channel: str
    source_event_id: str | None = None
    reason: str
    payload: str | None = None
    received_at: datetime = Field(default_factory=_now)
    replayed_at: datetime | None = None


class Approval(SQLModel, table=True):
    """An outreach task an officer approved: the only thing that opens the vault."""

    task_id: str = Field(primary_key=True)
    resident_key: str = Field(index=True)
    approved_at: datetime = Field(default_factory=_now)


class VaultAccess(SQLModel, table=True):
    """The audit log of every vault lookup, granted or refused: who, when, why."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=_now)
    caller: str
    resident_key: str
    task_id: str | None
    purpose: str
    granted: bool


def create_tables(engine: Engine) -> None:
    import shared.outbox  # noqa: F401  (registers the outbox table with the metadata)

    SQLModel.metadata.create_all(engine)


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def create_source_key(engine: Engine, source: str) -> str:
    """Make a new API key for a source system; only its hash is stored."""
    api_key = f"psk_{source}_{secrets.token_urlsafe(24)}"
    with Session(engine) as session:
        session.add(SourceKey(source=source, key_hash=hash_key(api_key)))
        session.commit()
    return api_key


def key_holder(engine: Engine, api_key: str) -> SourceKey | None:
    """The key's record (revoked or not), or None for a key never issued."""
    with Session(engine) as session:
        return session.exec(
            select(SourceKey).where(SourceKey.key_hash == hash_key(api_key))
        ).first()


def revoke_source_keys(engine: Engine, source: str) -> int:
    """Revoke every key of a source system; returns how many were revoked."""
    with Session(engine) as session:
        keys = session.exec(
            select(SourceKey).where(SourceKey.source == source, SourceKey.revoked == False)  # noqa: E712
        ).all()
        for key in keys:
            key.revoked = True
            session.add(key)
        session.commit()
        return len(keys)
