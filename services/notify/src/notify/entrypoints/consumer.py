"""The consumer of `outreach.tasks.v1`: shared.kafka's loop, with notify's handler and dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiokafka import ConsumerRecord

from notify.handlers import Collaborators, handle_task_changed
from shared.events import TaskChanged
from shared.kafka import consume
from shared.service import Readiness
from shared.topics import OUTREACH_TASKS

TASKS_CONSUMER = "outreach-tasks-consumer"


def task_consumer(
    *, bootstrap: str, group_id: str, deps: Collaborators, readiness: Readiness
) -> Callable[[asyncio.Event], Awaitable[None]]:
    async def handle(event: TaskChanged) -> None:
        await handle_task_changed(event, deps)

    async def dead_letter(record: ConsumerRecord, reason: str) -> None:
        await asyncio.to_thread(
            deps.store.record_dead_letter,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            reason=reason,
        )

    async def run(stopping: asyncio.Event) -> None:
        await consume(
            bootstrap=bootstrap,
            topic=OUTREACH_TASKS.name,
            group_id=group_id,
            model=TaskChanged,
            handle=handle,
            on_poison=dead_letter,
            stopping=stopping,
            on_ready=lambda: readiness.set(TASKS_CONSUMER, True),
        )

    return run
