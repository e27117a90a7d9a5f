"""One way to open a service's database: SQLite in the data folder by default, or
PostgreSQL when the service's `*_DATABASE_URL` setting names one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import create_engine

T = TypeVar("T")
# Values bound in one `IN (...)`: well inside every database's limit on bound parameters.
IN_CHUNK = 500


def in_chunks(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """`values` in slices small enough for one `IN (...)` clause each."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def database_url(explicit: str | None, data_dir: Path, service: str) -> str:
    if explicit:
        return explicit
    folder = data_dir / service
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / (service + '.db')}"


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # WAL lets readers work while the consumer writes; synchronous=NORMAL is durable
            # across a process crash, which is the failure the embedded stack must survive.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)
