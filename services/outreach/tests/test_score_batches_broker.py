"""Scores from the real broker in batches (`shared.kafka.consume_batches` and outreach's
scores consumer): a record it cannot read in the middle of a batch is dead-lettered and
the rest are taken, in order; offsets are committed only after the batch's transaction,
so a batch that fails comes again; and each score keeps its own trace."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from outreach.adapters.store import AuditEntry, DeadLetter, Task
from outreach.entrypoints import consumers
from outreach.entrypoints.consumers import scores_consumer
from outreach.handlers import handle_scores
from shared.codec import encode
from shared.events import RiskScored
from shared.kafka import Received, consume_batches, ensure_topics, make_producer
from shared.telemetry import setup_tracing
from shared.topics import RISK_SCORES, Topic

pytestmark = pytest.mark.integration


async def put(bootstrap: str, topic: str, values: list[bytes], parent: str) -> list[int]:
    """Send each value to partition 0, in one go, under a span of `parent`'s name (so each
    record carries a traceparent, as scoring's do); returns their offsets."""
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        with trace.get_tracer("test").start_as_current_span(parent):
            sent = [await producer.send(topic, value, key=b"k", partition=0) for value in values]
        return [(await future).offset for future in sent]
    finally:
        await producer.stop()


def poisons(found: list[tuple[int, str]]) -> Callable[[ConsumerRecord, str], Awaitable[None]]:
    async def on_poison(record: ConsumerRecord, reason: str) -> None:
        found.append((record.offset, reason))

    return on_poison


async def run_until(
    bootstrap: str,
    topic: str,
    group: str,
    handle_batch: Callable[[list[Received[RiskScored]]], Awaitable[None]],
    on_poison: Callable[[ConsumerRecord, str], Awaitable[None]],
    done: Callable[[], bool],
    timeout_s: float = 40.0,
) -> None:
    stopping = asyncio.Event()
    loop = asyncio.create_task(
        consume_batches(
            bootstrap=bootstrap, topic=topic, group_id=group, model=RiskScored,
            handle_batch=handle_batch, on_poison=on_poison, stopping=stopping,
        )
    )  # fmt: skip
    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        while not done():
            if loop.done():
                loop.result()  # raises what stopped the consumer
            assert asyncio.get_running_loop().time() < deadline, "not done in time"
            await asyncio.sleep(0.05)
    finally:
        stopping.set()
        await asyncio.wait_for(loop, 15)


@pytest.fixture
def spans(tmp_path: Path) -> Any:
    provider = setup_tracing("outreach-test", tmp_path)
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def test_a_batch_with_a_poison_record_in_the_middle_is_committed_only_once_handled(
    kafka_bootstrap, spans, make_score
):
    topic = f"test.batches.{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(kafka_bootstrap, [Topic(topic, 1, description="a test's")]))
    scores = [make_score() for _ in range(4)]
    values = [encode(s) for s in scores]
    offsets = asyncio.run(
        put(kafka_bootstrap, topic, [*values[:2], b"{not json", *values[2:]], "scoring")
    )
    group = f"test-{uuid.uuid4().hex[:8]}"

    # A handler that fails: the consumer stops and nothing is committed.
    async def fail(batch: list[Received[RiskScored]]) -> None:
        raise RuntimeError("the database went away")

    found: list[tuple[int, str]] = []
    with pytest.raises(RuntimeError, match="database went away"):
        asyncio.run(run_until(kafka_bootstrap, topic, group, fail, poisons(found), lambda: False))
    failed = [s for s in spans.get_finished_spans() if s.name == f"{topic} process"]
    assert failed and all(not s.status.is_ok for s in failed)

    # Started again, the same records come again: the poison to its handler, the rest in
    # order, in one batch.
    spans.clear()
    batches: list[list[RiskScored]] = []
    children: list[trace.Span] = []

    async def take(batch: list[Received[RiskScored]]) -> None:
        batches.append([received.event for received in batch])
        for received in batch:
            token = otel_context.attach(received.context)
            try:
                with trace.get_tracer("test").start_as_current_span("decide") as child:
                    children.append(child)
            finally:
                otel_context.detach(token)

    found.clear()
    asyncio.run(
        run_until(
            kafka_bootstrap, topic, group, take, poisons(found),
            lambda: sum(map(len, batches)) >= 4,
        )
    )  # fmt: skip
    assert [s.event_id for batch in batches for s in batch] == [s.event_id for s in scores]
    assert max(map(len, batches)) > 1  # taken together, not one by one
    assert found == [(offsets[2], found[0][1])]
    assert "RiskScored" in found[0][1]  # the reason says what it could not read

    # Each score has its own process span, in the producer's trace, parent of what the
    # handler did; it ends once the batch was handled; the batch's span links to each.
    finished = spans.get_finished_spans()
    process = {s.context.span_id: s for s in finished if s.name == f"{topic} process"}
    assert len(process) == 5  # the poison's too
    for child in children:
        parent = process[child.parent.span_id]  # type: ignore[union-attr]
        assert parent.context.trace_id == child.context.trace_id
        assert parent.end_time >= child.end_time  # type: ignore[operator]
        assert parent.attributes["messaging.destination.partition.id"] == "0"
    producer_traces = {s.context.trace_id for s in finished if s.name == f"{topic} process"}
    assert len(producer_traces) == 1  # all sent under one "scoring" span
    [batch_span] = [s for s in finished if s.name == f"{topic} process batch"]
    assert {link.context.span_id for link in batch_span.links} == set(process)

    # Committed: a third start gets only what is sent after it.
    batches.clear()
    sentinel = make_score()

    async def third() -> None:
        async def send_later() -> None:
            await asyncio.sleep(1)
            await put(kafka_bootstrap, topic, [encode(sentinel)], "scoring")

        sender = asyncio.create_task(send_later())
        await run_until(kafka_bootstrap, topic, group, take, poisons(found), lambda: bool(batches))
        await sender

    asyncio.run(third())
    assert [s.event_id for batch in batches for s in batch] == [sentinel.event_id]


def test_outreachs_scores_consumer_takes_a_poll_in_one_batch_around_a_poison_record(
    kafka_bootstrap, engine, policy, monkeypatch, make_score
):
    first, second = "r_" + uuid.uuid4().hex, "r_" + uuid.uuid4().hex
    scores = [
        make_score(first, "falls"),
        make_score(second, "homelessness"),
        make_score(first, "frailty"),
        make_score(second, "frailty", band="low"),
        make_score(first, "falls"),
    ]
    values = [encode(s) for s in scores]
    offsets = asyncio.run(
        put(kafka_bootstrap, RISK_SCORES.name, [*values[:3], b"\x00garbage", *values[3:]], "s")
    )
    sizes: list[int] = []

    def spy(engine: Engine, batch: list[RiskScored], *args: Any) -> list[str]:
        sizes.append(len(batch))
        return handle_scores(engine, batch, *args)

    monkeypatch.setattr(consumers, "handle_scores", spy)
    mine = {first, second}

    def audit() -> list[tuple[str, str]]:
        with Session(engine) as session:
            return [
                (e.resident_key, e.action)
                for e in session.exec(
                    select(AuditEntry)
                    .where(col(AuditEntry.resident_key).in_(mine))
                    .order_by(col(AuditEntry.at), col(AuditEntry.id))
                )
            ]

    async def run() -> None:
        counters = {"scores_seen": 0}
        relay = asyncio.Event()
        stopping = asyncio.Event()
        loop = asyncio.create_task(
            scores_consumer(engine, kafka_bootstrap, policy, counters, relay, lambda: None)(
                stopping
            )
        )
        deadline = asyncio.get_running_loop().time() + 40
        while len(audit()) < 3 or not relay.is_set():
            assert not loop.done(), loop.exception()
            assert asyncio.get_running_loop().time() < deadline, "not taken in time"
            await asyncio.sleep(0.1)
        stopping.set()
        await asyncio.wait_for(loop, 15)

    asyncio.run(run())
    assert audit() == [
        (first, "created"),
        (second, "created"),
        (first, "added_to_open_task"),
    ]
    with Session(engine) as session:
        tasks = {t.resident_key: t for t in session.exec(select(Task)) if t.resident_key in mine}
        dead = session.exec(select(DeadLetter).where(DeadLetter.topic == RISK_SCORES.name)).all()
    assert tasks[first].models == ["falls", "frailty"]
    assert tasks[second].models == ["homelessness"]
    assert [d.offset for d in dead] == [offsets[3]]
    assert max(sizes) >= 5
