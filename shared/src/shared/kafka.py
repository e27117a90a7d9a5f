"""Small, shared Kafka plumbing on aiokafka: topic creation, a producer, consumer loops.

The consumer loops are the one place that decides what happens to a record: they decode
it, run the handler inside a span joined to the producer's trace, dead-letter what cannot
be decoded (with the reason), and commit offsets only after the handler returned, so
delivery is at-least-once and handlers must be idempotent. `consume` hands the handler
one event at a time; `consume_batches` hands it each poll's events at once (for a handler
that takes them in one transaction), each with its own span.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from opentelemetry import context as otel_context
from opentelemetry import trace
from pydantic import BaseModel

from shared import metrics
from shared.codec import UndecodableEvent, decode, encode, message_key
from shared.settings import CommonSettings
from shared.telemetry import context_from_headers
from shared.topics import ALL_TOPICS, Topic

log = logging.getLogger(__name__)
tracer = trace.get_tracer("shared.kafka")
EventT = TypeVar("EventT", bound=BaseModel)

# Tansu makes a consumer-group join wait about half the session timeout; these keep joins
# quick in dev and are ordinary values for Apache Kafka too.
CONSUMER_GROUP_TIMEOUTS = {
    "session_timeout_ms": 10_000,
    "heartbeat_interval_ms": 1_000,
    "rebalance_timeout_ms": 5_000,
}


async def ensure_topics(bootstrap: str, topics: Iterable[Topic] = ALL_TOPICS) -> list[str]:
    """Create each topic with its partition count unless it exists already; returns the
    names of the topics it had to create."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=t.name,
                num_partitions=t.partitions,
                replication_factor=1,
                topic_configs={"cleanup.policy": "compact"} if t.compacted else {},
            )
            for t in topics
            if t.name not in existing
        ]
        if wanted:
            # Another process may have created one between our list and our create.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
        return [topic.name for topic in wanted]
    finally:
        await admin.close()


async def ensure_topics_if_reachable(bootstrap: str, topics: Iterable[Topic] = ALL_TOPICS) -> bool:
    """`ensure_topics`, but a broker that is down does not stop a service from starting:
    it starts not ready, and its loops (which create topics themselves) retry."""
    try:
        await asyncio.wait_for(ensure_topics(bootstrap, topics), timeout=15)
    except (KafkaError, OSError, TimeoutError) as error:
        log.warning(
            "the broker at %s did not answer (%s); starting anyway, not ready", bootstrap, error
        )
        return False
    return True


def make_producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)


async def publish(producer: AIOKafkaProducer, topic: str, event: BaseModel) -> None:
    """Send one event and wait for the broker's acknowledgement."""
    await producer.send_and_wait(topic, encode(event), key=message_key(event))


PoisonHandler = Callable[[ConsumerRecord, str], Awaitable[None]]


async def consume_records(
    *,
    bootstrap: str,
    topics: list[str],
    group_id: str,
    handle_batch: Callable[[list[ConsumerRecord]], Awaitable[None]],
    stopping: asyncio.Event,
    on_ready: Callable[[], None] | None = None,
    max_records: int = 500,
) -> None:
    """Hand each poll's records to `handle_batch`, then commit: at-least-once delivery."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_wait_ms=CommonSettings().kafka_fetch_max_wait_ms,
        **CONSUMER_GROUP_TIMEOUTS,
    )
    await consumer.start()
    if on_ready:
        on_ready()
    try:
        while not stopping.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=max_records)
            records = [record for partition in batches.values() for record in partition]
            if records:
                await handle_batch(records)
                await consumer.commit()
                for partition, polled in batches.items():
                    metrics.events_in.add(
                        len(polled), {"messaging.destination.name": partition.topic}
                    )
                    highwater = consumer.highwater(partition)
                    if highwater is not None:
                        metrics.record_lag(
                            group_id,
                            partition.topic,
                            partition.partition,
                            highwater - await consumer.position(partition),
                        )
    except KafkaError:
        log.exception("consumer of %s stopped on a broker error", ", ".join(topics))
        raise
    finally:
        await consumer.stop()


async def consume(
    *,
    bootstrap: str,
    topic: str,
    group_id: str,
    model: type[EventT],
    handle: Callable[[EventT], Awaitable[None]],
    on_poison: PoisonHandler,
    stopping: asyncio.Event,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Consume `topic` until `stopping` is set; see the module docstring for the rules."""

    async def handle_batch(records: list[ConsumerRecord]) -> None:
        for record in records:
            await _process(record, topic, group_id, model, handle, on_poison)

    await consume_records(
        bootstrap=bootstrap,
        topics=[topic],
        group_id=group_id,
        handle_batch=handle_batch,
        stopping=stopping,
        on_ready=on_ready,
        max_records=200,
    )


@dataclass(frozen=True)
class Received(Generic[EventT]):
    """A decoded event, and the trace context to handle it in: its own `<topic> process`
    span, joined to the producer's trace (so what the handler makes continues it)."""

    event: EventT
    context: otel_context.Context


async def consume_batches(
    *,
    bootstrap: str,
    topic: str,
    group_id: str,
    model: type[EventT],
    handle_batch: Callable[[list[Received[EventT]]], Awaitable[None]],
    on_poison: PoisonHandler,
    stopping: asyncio.Event,
    on_ready: Callable[[], None] | None = None,
    max_records: int = 500,
) -> None:
    """Consume `topic` until `stopping` is set, handing `handle_batch` each poll's events
    (up to `max_records`, in order within each partition) at once.

    The rules are `consume`'s: each record gets its `<topic> process` span, joined to the
    producer's trace, that lasts until its batch was handled; what cannot be decoded goes
    to `on_poison` with the reason and the rest of the batch carries on; offsets are
    committed only after `handle_batch` returned (so after its transaction committed),
    and a batch that fails is not committed, so it comes again: at-least-once."""

    async def handle_records(records: list[ConsumerRecord]) -> None:
        with tracer.start_as_current_span(
            f"{topic} process batch",
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": topic,
                "messaging.consumer.group.name": group_id,
                "messaging.batch.message_count": len(records),
            },
        ) as batch_span:
            spans: list[trace.Span] = []
            try:
                received: list[Received[EventT]] = []
                for record in records:
                    span = _process_span(record, topic, group_id)
                    spans.append(span)
                    batch_span.add_link(span.get_span_context())
                    try:
                        event = decode(record.value, model)
                    except UndecodableEvent as error:
                        span.set_attribute("error.type", "UndecodableEvent")
                        metrics.dead_lettered.add(1, {"messaging.destination.name": topic})
                        with trace.use_span(span):
                            await on_poison(record, str(error))
                        continue
                    received.append(Received(event, trace.set_span_in_context(span)))
                if received:
                    await handle_batch(received)
            except Exception as error:
                for span in spans:
                    span.record_exception(error)
                    span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
                raise
            finally:
                for span in spans:
                    span.end()

    await consume_records(
        bootstrap=bootstrap,
        topics=[topic],
        group_id=group_id,
        handle_batch=handle_records,
        stopping=stopping,
        on_ready=on_ready,
        max_records=max_records,
    )


def _process_span(record: ConsumerRecord, topic: str, group_id: str) -> trace.Span:
    return tracer.start_span(
        f"{topic} process",
        context=context_from_headers(record.headers),
        kind=trace.SpanKind.CONSUMER,
        attributes=_process_attributes(record, topic, group_id),
    )


def _process_attributes(record: ConsumerRecord, topic: str, group_id: str) -> dict[str, str | int]:
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": record.offset,
        "messaging.consumer.group.name": group_id,
    }


async def _process(
    record: ConsumerRecord,
    topic: str,
    group_id: str,
    model: type[EventT],
    handle: Callable[[EventT], Awaitable[None]],
    on_poison: PoisonHandler,
) -> None:
    parent = context_from_headers(record.headers)
    with tracer.start_as_current_span(
        f"{topic} process",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes=_process_attributes(record, topic, group_id),
    ) as span:
        try:
            event = decode(record.value, model)
        except UndecodableEvent as error:
            span.set_attribute("error.type", "UndecodableEvent")
            metrics.dead_lettered.add(1, {"messaging.destination.name": topic})
            await on_poison(record, str(error))
            return
        await handle(event)
