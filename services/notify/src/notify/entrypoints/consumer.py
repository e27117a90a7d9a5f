"""The consumers of `outreach.tasks.v1` and `resident.optouts.v1`: shared.kafka's loop, with
notify's handlers and dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiokafka import ConsumerRecord

from notify.handlers import Collaborators, handle_optout, handle_task_changed
from shared.events import ResidentOptedOut, TaskChanged
from shared.kafka import consume
from shared.service import Readiness
from shared.topics import OUTREACH_TASKS, RESIDENT_OPTOUTS

TASKS_CONSUMER = "outreach-tasks-consumer"
OPTOUTS_CONSUMER = "resident-optouts-consumer"


def task_consumer(
    *, bootstrap: str, group_id: str, deps: Collaborators, readiness: Readiness
) -> Callable[[asyncio.Event], Awaitable[None]]:
    async def handle(event: TaskChanged) -> None:
        await handle_task_changed(event, deps)

    async def run(stopping: asyncio.Event) -> None:
        await consume(
            bootstrap=bootstrap,
            topic=OUTREACH_TASKS.name,
            group_id=group_id,
            model=TaskChanged,
            handle=handle,
            on_poison=_dead_letters(deps),
            stopping=stopping,
            on_ready=lambda: readiness.set(TASKS_CONSUMER, True),
        )

    return run


def optout_consumer(
    *, bootstrap: str, group_id: str, deps: Collaborators, readiness: Readiness
) -> Callable[[asyncio.Event], Awaitable[None]]:
    async def handle(event: ResidentOptedOut) -> None:
        await handle_optout(event, deps)

    async def run(stopping: asyncio.Event) -> None:
        await consume(
            bootstrap=bootstrap,
            topic=RESIDENT_OPTOUTS.name,
            group_id=group_id,
            model=ResidentOptedOut,
            handle=handle,
            on_poison=_dead_letters(deps),
            stopping=stopping,
            on_ready=lambda: readiness.set(OPTOUTS_CONSUMER, True),
        )

    return run


def _dead_letters(deps: Collaborators) -> Callable[[ConsumerRecord, str], Awaitable[None]]:
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

    return dead_letter
