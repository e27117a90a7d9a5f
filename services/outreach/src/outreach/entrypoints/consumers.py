"""Outreach reads scores (which may become tasks), deliveries (which move tasks on),
opt-outs from any channel (which close them) and what the source systems say about a
resident (deceased, an open case: which stop outreach)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import ConsumerRecord
from sqlalchemy.engine import Engine
from sqlmodel import Session

from outreach.adapters.store import DeadLetter
from outreach.domain.policy import Policy
from outreach.handlers import (
    handle_delivery,
    handle_opt_out,
    handle_scores,
    handle_source_flags,
)
from shared.events import LetterSent, ResidentFlagsChanged, ResidentOptedOut, RiskScored
from shared.kafka import Received, consume, consume_batches
from shared.topics import NOTIFY_DELIVERIES, RESIDENT_FLAGS, RESIDENT_OPTOUTS, RISK_SCORES

Loop = Callable[[asyncio.Event], Awaitable[None]]
# Scores taken in one transaction at most: a few hundred keep a transaction short (a
# fraction of a second) while the commit's cost is shared.
SCORES_BATCH = 500


def _dead_letter(engine: Engine) -> Callable[[ConsumerRecord, str], Awaitable[None]]:
    def store(record: ConsumerRecord, reason: str) -> None:
        with Session(engine) as session:
            session.add(
                DeadLetter(
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    reason=reason,
                )
            )
            session.commit()

    async def on_poison(record: ConsumerRecord, reason: str) -> None:
        await asyncio.to_thread(store, record, reason)

    return on_poison


def scores_consumer(
    engine: Engine,
    bootstrap: str,
    policy: Policy,
    counters: dict[str, int],
    wake_relay: asyncio.Event,
    on_ready: Callable[[], None],
    max_batch: int = SCORES_BATCH,
) -> Loop:
    """Scores are taken a poll at a time (up to `max_batch`), each poll in one transaction,
    and acknowledged once it committed."""

    async def handle(batch: list[Received[RiskScored]]) -> None:
        actions = await asyncio.to_thread(
            handle_scores,
            engine,
            [received.event for received in batch],
            policy,
            None,
            [received.context for received in batch],
        )
        counters["scores_seen"] += len(batch)
        if any(action in ("create", "add_to_open_task") for action in actions):
            wake_relay.set()

    async def run(stopping: asyncio.Event) -> None:
        await consume_batches(
            bootstrap=bootstrap,
            topic=RISK_SCORES.name,
            group_id="outreach-scores",
            model=RiskScored,
            handle_batch=handle,
            on_poison=_dead_letter(engine),
            stopping=stopping,
            on_ready=on_ready,
            max_records=max_batch,
        )

    return run


def deliveries_consumer(
    engine: Engine,
    bootstrap: str,
    policy: Policy,
    wake_relay: asyncio.Event,
    on_ready: Callable[[], None],
) -> Loop:
    async def handle(delivery: LetterSent) -> None:
        await asyncio.to_thread(handle_delivery, engine, delivery, policy)
        wake_relay.set()

    return _loop(
        bootstrap,
        NOTIFY_DELIVERIES.name,
        "outreach-deliveries",
        LetterSent,
        handle,
        engine,
        on_ready,
    )


def optouts_consumer(
    engine: Engine, bootstrap: str, wake_relay: asyncio.Event, on_ready: Callable[[], None]
) -> Loop:
    async def handle(event: ResidentOptedOut) -> None:
        await asyncio.to_thread(handle_opt_out, engine, event)
        wake_relay.set()

    return _loop(
        bootstrap,
        RESIDENT_OPTOUTS.name,
        "outreach-optouts",
        ResidentOptedOut,
        handle,
        engine,
        on_ready,
    )


def flags_consumer(
    engine: Engine,
    bootstrap: str,
    policy: Policy,
    wake_relay: asyncio.Event,
    on_ready: Callable[[], None],
) -> Loop:
    async def handle(event: ResidentFlagsChanged) -> None:
        if await asyncio.to_thread(handle_source_flags, engine, event, policy) == "changed":
            wake_relay.set()

    return _loop(
        bootstrap,
        RESIDENT_FLAGS.name,
        "outreach-flags",
        ResidentFlagsChanged,
        handle,
        engine,
        on_ready,
    )


def _loop(
    bootstrap: str,
    topic: str,
    group_id: str,
    model: Any,
    handle: Callable[[Any], Awaitable[None]],
    engine: Engine,
    on_ready: Callable[[], None],
) -> Loop:
    async def run(stopping: asyncio.Event) -> None:
        await consume(
            bootstrap=bootstrap,
            topic=topic,
            group_id=group_id,
            model=model,
            handle=handle,
            on_poison=_dead_letter(engine),
            stopping=stopping,
            on_ready=on_ready,
        )

    return run
