"""Ingest's Kafka consumers: council CDC topics (Debezium via Kafka Connect), and
outreach's task events, whose approvals open the vault for that task."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from aiokafka import ConsumerRecord
from opentelemetry import trace
from sqlalchemy.engine import Engine

from ingest.domain.mapping import SourceMapping
from ingest.handlers import (
    Rejected,
    accept_changes,
    changes_from_cdc,
    record_approval,
    record_rejections,
)
from shared.events import TaskChanged
from shared.kafka import consume, consume_records
from shared.outbox import current_traceparent
from shared.topics import OUTREACH_TASKS

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ingest.cdc")
Loop = Callable[[asyncio.Event], Awaitable[None]]


def cdc_topics(mapping: SourceMapping, prefix: str) -> list[str]:
    return [f"{prefix}.{table}" for table in mapping.tables]


def cdc_consumer(
    engine: Engine,
    bootstrap: str,
    mapping: SourceMapping,
    prefix: str,
    pseudonym_key: str,
    wake_relay: asyncio.Event,
    on_ready: Callable[[], None],
) -> Loop:
    source = f"cdc:{prefix}"

    async def handle_batch(records: list[ConsumerRecord]) -> None:
        values: list[object] = []
        unreadable: list[Rejected] = []
        for record in records:
            if record.value is None:
                values.append(None)  # a tombstone
                continue
            try:
                values.append(json.loads(record.value))
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                unreadable.append(
                    Rejected(
                        "cdc-kafka",
                        f"{record.topic} offset {record.offset}: not JSON ({error})",
                        None,
                        record.value.decode("utf-8", "replace"),
                    )
                )
        with tracer.start_as_current_span(
            "council CDC process",
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.batch.message_count": len(records),
                "messaging.consumer.group.name": "ingest-cdc",
            },
        ):
            changes, rejected, _ = changes_from_cdc(values, mapping, "cdc-kafka")
            await asyncio.to_thread(record_rejections, engine, source, unreadable + rejected)
            await asyncio.to_thread(
                accept_changes,
                engine,
                changes,
                source=source,
                pseudonym_key=pseudonym_key,
                traceparent=current_traceparent(),
                mapping=mapping,
            )
        wake_relay.set()

    async def run(stopping: asyncio.Event) -> None:
        await consume_records(
            bootstrap=bootstrap,
            topics=cdc_topics(mapping, prefix),
            group_id="ingest-cdc",
            handle_batch=handle_batch,
            stopping=stopping,
            on_ready=on_ready,
        )

    return run


def approvals_consumer(engine: Engine, bootstrap: str, on_ready: Callable[[], None]) -> Loop:
    async def handle(task: TaskChanged) -> None:
        await asyncio.to_thread(record_approval, engine, task)

    async def poison(record: ConsumerRecord, reason: str) -> None:
        log.warning("unreadable task event at offset %s: %s", record.offset, reason)
        refusal = Rejected("cdc-kafka", f"{OUTREACH_TASKS.name}: {reason}", None, None)
        await asyncio.to_thread(record_rejections, engine, "outreach", [refusal])

    async def run(stopping: asyncio.Event) -> None:
        await consume(
            bootstrap=bootstrap,
            topic=OUTREACH_TASKS.name,
            group_id="ingest-approvals",
            model=TaskChanged,
            handle=handle,
            on_poison=poison,
            stopping=stopping,
            on_ready=on_ready,
        )

    return run
