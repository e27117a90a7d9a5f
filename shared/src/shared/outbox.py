"""The transactional outbox: an event is written in the same transaction as the change
that caused it, and a relay publishes it afterwards, in order.

An event is marked published only after the broker acknowledged it, so a crash or a
broker restart between accept and publish only means it is sent again (consumers are
idempotent on event_id). The embedded broker keeps records in memory, which makes this
the piece that lets the embedded stack lose nothing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from shared.codec import encode, message_key
from shared.kafka import make_producer
from shared.telemetry import context_from_headers, headers_from_context

log = logging.getLogger(__name__)
tracer = trace.get_tracer("shared.outbox")


def _now() -> datetime:
    return datetime.now(UTC)


class OutboxEntry(SQLModel, table=True):
    """An event waiting to be published; durable before the change is acknowledged."""

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True)
    topic: str
    message_key: str | None = None
    payload: bytes
    traceparent: str | None = None
    created_at: datetime = Field(default_factory=_now)
    published_at: datetime | None = Field(default=None, index=True)


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, kept with an outbox entry."""
    return {k: v.decode() for k, v in headers_from_context()}.get("traceparent")


def outbox_entry(topic: str, event: BaseModel, traceparent: str | None = None) -> OutboxEntry:
    """An outbox row for an event, carrying the current trace unless one is given."""
    key = message_key(event)
    return OutboxEntry(
        event_id=str(event.event_id),  # type: ignore[attr-defined]
        topic=topic,
        message_key=key.decode() if key else None,
        payload=encode(event),
        traceparent=traceparent or current_traceparent(),
    )


class OutboxRelay:
    def __init__(self, engine: Engine, bootstrap: str, batch_size: int = 500) -> None:
        self.engine = engine
        self.bootstrap = bootstrap
        self.batch_size = batch_size
        self.wake = asyncio.Event()
        self.published = 0

    def pending(self) -> int:
        with Session(self.engine) as session:
            return len(
                session.exec(
                    select(OutboxEntry.id).where(col(OutboxEntry.published_at).is_(None))
                ).all()
            )

    async def run(self, stopping: asyncio.Event) -> None:
        producer = make_producer(self.bootstrap)
        await producer.start()
        try:
            while not stopping.is_set():
                sent = await self._publish_batch(producer)
                if sent < self.batch_size:
                    self.wake.clear()
                    wake = asyncio.create_task(self.wake.wait())
                    stop = asyncio.create_task(stopping.wait())
                    await asyncio.wait({wake, stop}, timeout=0.5, return_when="FIRST_COMPLETED")
                    wake.cancel()
                    stop.cancel()
        finally:
            await producer.stop()

    async def _publish_batch(self, producer: AIOKafkaProducer) -> int:
        entries = await asyncio.to_thread(self._unpublished)
        if not entries:
            return 0
        deliveries = []
        for entry in entries:
            parent = context_from_headers(
                [("traceparent", entry.traceparent.encode())] if entry.traceparent else None
            )
            with tracer.start_as_current_span(
                f"{entry.topic} publish",
                context=parent,
                kind=trace.SpanKind.PRODUCER,
                attributes={"messaging.system": "kafka", "messaging.destination.name": entry.topic},
            ):
                deliveries.append(
                    await producer.send(
                        entry.topic,
                        entry.payload,
                        key=entry.message_key.encode() if entry.message_key else None,
                    )
                )
        await asyncio.gather(*deliveries)
        await asyncio.to_thread(self._mark_published, [e.id for e in entries if e.id is not None])
        self.published += len(entries)
        return len(entries)

    def _unpublished(self) -> list[OutboxEntry]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(OutboxEntry)
                    .where(col(OutboxEntry.published_at).is_(None))
                    .order_by(col(OutboxEntry.id))
                    .limit(self.batch_size)
                ).all()
            )

    def _mark_published(self, ids: list[int]) -> None:
        with Session(self.engine) as session:
            session.exec(
                update(OutboxEntry)
                .where(col(OutboxEntry.id).in_(ids))
                .values(published_at=datetime.now(UTC))
            )
            session.commit()
