"""The transactional outbox: an event is written in the same transaction as the change
that caused it, and a relay publishes it afterwards, in order.

An event is marked published only after the broker acknowledged it, so a crash or a
broker restart between accept and publish only means it is sent again (consumers are
idempotent on event_id). The embedded broker keeps records in memory, which makes this
the piece that lets the embedded stack lose nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from pydantic import BaseModel
from sqlalchemy import Row, Table, bindparam, update
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from shared import metrics
from shared.codec import encode, message_key
from shared.kafka import ensure_topics
from shared.telemetry import context_from_headers, headers_from_context, traceparent_header
from shared.topics import ALL_TOPICS, Topic

log = logging.getLogger(__name__)
tracer = trace.get_tracer("shared.outbox")
Header = tuple[str, bytes]
# Records are partitioned by key exactly as Kafka's default partitioner does (murmur2), so
# a resident's events land on the same partition whichever producer wrote them.
_partitioner = DefaultPartitioner()
# A record batch of up to 512 KiB (one produce request per partition for a relay batch),
# well inside Kafka's default limit of 1 MiB on a batch.
RECORD_BATCH_BYTES = 512 * 1024


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


OUTBOX: Table = OutboxEntry.__table__  # type: ignore[attr-defined]


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, kept with an outbox entry."""
    return {k: v.decode() for k, v in headers_from_context()}.get("traceparent")


def outbox_row(topic: str, event: BaseModel, traceparent: str | None = None) -> dict[str, object]:
    """An outbox row as plain values, for inserting many at once on a hot path."""
    key = message_key(event)
    return {
        "event_id": str(event.event_id),  # type: ignore[attr-defined]
        "topic": topic,
        "message_key": key.decode() if key else None,
        "payload": encode(event),
        "traceparent": traceparent or current_traceparent(),
        "created_at": _now(),
        "published_at": None,
    }


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
    """Publishes the outbox in order, marking each entry once the broker acknowledged it.

    The embedded broker (Tansu, memory storage) forgets every topic when it restarts, and
    then acknowledges records sent to a topic it no longer has without keeping them
    (measured). So before each batch the relay checks that the topics still exist; if
    they have gone, it recreates them and publishes again everything it published within
    `replay_window_s`. Consumers are idempotent on event_id, so a repeat is harmless,
    whereas a silent gap would not be.

    The shared topics alone cannot tell it: after a restart, the first service back
    recreates them, and every other relay would find them present. So each outbox also
    keeps a topic of its own (`marker`, named from its database): when that is missing, the
    broker has forgotten what this relay published.
    """

    def __init__(
        self,
        engine: Engine,
        bootstrap: str,
        batch_size: int = 500,
        replay_window_s: float = 3600.0,
        topic_check_interval_s: float = 1.0,
    ) -> None:
        self.engine = engine
        self.bootstrap = bootstrap
        self.batch_size = batch_size
        self.replay_window_s = replay_window_s
        self.topic_check_interval_s = topic_check_interval_s
        self.wake = asyncio.Event()
        self.published = 0
        self.republished = 0
        self._topics_checked_at = 0.0
        self.marker = Topic(_marker_name(engine), 1, description="This outbox's broker check")

    def pending(self) -> int:
        with Session(self.engine) as session:
            return len(
                session.exec(
                    select(OutboxEntry.id).where(col(OutboxEntry.published_at).is_(None))
                ).all()
            )

    async def run(self, stopping: asyncio.Event) -> None:
        # Topics that had to be made now mean a broker that lost them (or a first start,
        # when there is nothing recent to send again).
        if await ensure_topics(self.bootstrap, (*ALL_TOPICS, self.marker)):
            await self._republish_recent("the broker had no topics when the relay started")
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", max_batch_size=RECORD_BATCH_BYTES
        )
        await admin.start()
        await producer.start()
        try:
            while not stopping.is_set():
                await self._check_topics(admin)
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
            await admin.close()

    async def _check_topics(self, admin: AIOKafkaAdminClient) -> None:
        now = time.monotonic()
        if now - self._topics_checked_at < self.topic_check_interval_s:
            return
        self._topics_checked_at = now
        existing = set(await admin.list_topics())
        missing = [t.name for t in (*ALL_TOPICS, self.marker) if t.name not in existing]
        if not missing:
            return
        await ensure_topics(self.bootstrap, (*ALL_TOPICS, self.marker))
        await self._republish_recent(f"the broker has lost topics {', '.join(missing)}")

    async def _republish_recent(self, why: str) -> None:
        requeued = await asyncio.to_thread(self._requeue_recent)
        self.republished += requeued
        if requeued:
            log.warning("%s (restarted?); queued %d recent events to publish again", why, requeued)

    def _requeue_recent(self) -> int:
        since = datetime.now(UTC) - timedelta(seconds=self.replay_window_s)
        with Session(self.engine) as session:
            result = session.exec(
                update(OutboxEntry)
                .where(col(OutboxEntry.published_at) >= since)
                .values(published_at=None)
            )
            session.commit()
            return int(result.rowcount or 0)

    async def _publish_batch(self, producer: AIOKafkaProducer) -> int:
        rows = await asyncio.to_thread(self._unpublished)
        if not rows:
            return 0
        # One producer span per topic and trace, in the trace of the request that accepted
        # the events (a batch of changes posted together shares one): every record carries
        # its span's traceparent, so each consumer's span joins that request's trace. A span
        # per record was most of the relay's cost at thousands of events a second.
        spans: dict[tuple[str, str | None], tuple[Span, list[Header]]] = {}
        try:
            counts = await self._send(producer, rows, spans)
        except BaseException as error:
            for span, _ in spans.values():
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                span.end()
            raise
        for span, _ in spans.values():
            span.end()
        await asyncio.to_thread(self._mark_published, [row[0] for row in rows])
        for topic, count in counts.items():
            metrics.events_out.add(count, {"messaging.destination.name": topic})
        self.published += len(rows)
        return len(rows)

    async def _send(
        self,
        producer: AIOKafkaProducer,
        rows: list[Row[tuple[int, str, str | None, bytes, str | None]]],
        spans: dict[tuple[str, str | None], tuple[Span, list[Header]]],
    ) -> dict[str, int]:
        """Send `rows` as one record batch per partition (more if one fills), in order;
        return once the broker has acknowledged every one. Counts by topic."""
        by_partition: dict[tuple[str, int], list[tuple[bytes | None, bytes, list[Header]]]] = {}
        counts: dict[str, int] = {}
        partitions: dict[str, list[int]] = {}
        for _, topic, key, payload, traceparent in rows:
            sending = spans.get((topic, traceparent))
            if sending is None:
                span = tracer.start_span(
                    f"{topic} send",
                    context=context_from_headers(
                        [("traceparent", traceparent.encode())] if traceparent else None
                    ),
                    kind=SpanKind.PRODUCER,
                    attributes={
                        "messaging.system": "kafka",
                        "messaging.destination.name": topic,
                        "messaging.operation.name": "send",
                        "messaging.operation.type": "publish",
                    },
                )
                sending = spans[(topic, traceparent)] = (
                    span,
                    [traceparent_header(span.get_span_context())],
                )
            everyone = partitions.get(topic)
            if everyone is None:
                everyone = partitions[topic] = sorted(await producer.partitions_for(topic))
            key_bytes = key.encode() if key else None
            partition = _partitioner(key_bytes, everyone, everyone)
            by_partition.setdefault((topic, partition), []).append((key_bytes, payload, sending[1]))
            counts[topic] = counts.get(topic, 0) + 1
        deliveries = []
        for (topic, partition), records in by_partition.items():
            batch = producer.create_batch()
            for key_bytes, payload, headers in records:
                if batch.append(key=key_bytes, value=payload, timestamp=None, headers=headers):
                    continue
                # Full: send what it holds and start another (in order, per partition);
                # an empty batch takes any record.
                batch.close()
                deliveries.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key_bytes, value=payload, timestamp=None, headers=headers)
            batch.close()
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*deliveries)
        return counts

    def _unpublished(self) -> list[Row[tuple[int, str, str | None, bytes, str | None]]]:
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select_columns(
                        OUTBOX.c.id,
                        OUTBOX.c.topic,
                        OUTBOX.c.message_key,
                        OUTBOX.c.payload,
                        OUTBOX.c.traceparent,
                    )
                    .where(OUTBOX.c.published_at.is_(None))
                    .order_by(OUTBOX.c.id)
                    .limit(self.batch_size)
                ).all()
            )

    def _mark_published(self, ids: list[int]) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
                .values(published_at=datetime.now(UTC)),
                {"ids": ids},
            )


def _marker_name(engine: Engine) -> str:
    """One name per outbox database; replicas sharing a database share their outbox too."""
    where = engine.url.render_as_string(hide_password=True)
    return f"proactive.outbox-relay.{hashlib.sha256(where.encode()).hexdigest()[:16]}"
