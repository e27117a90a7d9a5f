"""Ingest listens to outreach's task events: an approval opens the vault for that task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import ConsumerRecord
from sqlalchemy.engine import Engine

from ingest.handlers import record_approval, record_rejections
from shared.events import TaskChanged
from shared.kafka import consume
from shared.topics import OUTREACH_TASKS

log = logging.getLogger(__name__)


def approvals_consumer(
    engine: Engine, bootstrap: str, on_ready: Callable[[], None]
) -> Callable[[asyncio.Event], Awaitable[None]]:
    async def handle(task: TaskChanged) -> None:
        await asyncio.to_thread(record_approval, engine, task)

    async def poison(record: ConsumerRecord, reason: str) -> None:
        log.warning("unreadable task event at offset %s: %s", record.offset, reason)
        await asyncio.to_thread(
            record_rejections,
            engine,
            "outreach",
            "cdc-kafka",
            [(None, f"{OUTREACH_TASKS.name}: {reason}")],
        )

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
