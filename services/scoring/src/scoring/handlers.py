"""What the worker does with each resident event, and with each micro-batch of scores.

`record` runs once per event, inside the Faust stream iteration (the only place a Faust
table may be written): decode, fold into the resident's state, store the state, and, if a
feature the models read has changed, queue the resident for scoring. `flush` runs when the
queue is full or on a timer: one ONNX Runtime call per model for the whole queue (and one
per shadow candidate), then one `RiskScored` per model whose band changed or whose
probability moved by more than the hysteresis delta.

Nothing is acknowledged before its consequences are out: every message a batch of events
leads to (scores, shadow scores, source-system flags, dead letters) is published in one
call, and only when the broker has them are those events acknowledged, so that Faust
commits their offsets. A worker killed in between gets the events again; the state says
which features were last *published*, so they are scored again rather than forgotten.

Publishing is pipelined: a flush hands its batch to one sender task, which publishes the
batches in order (retrying while the broker is away) and then acknowledges them, so that
the stream goes on to the next events during the round trip instead of waiting for it.
At most `PUBLISH_AHEAD` batches wait to go out; the stream waits for room after that.
Decisions (hysteresis, "were these features already scored?") see what has been handed to
the sender; only what the broker has confirmed goes into a resident's stored state.

Each resident's scores are sent inside one span parented to the trace of the event that
triggered them (a batch mixes many traces, so the current context would be wrong).

The collaborators (the table, the models, the publisher) are passed in, so unit tests run
this with a dict, the committed models and a list.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, cast, get_args

import numpy as np
import pydantic_core
from opentelemetry import context as otel_context
from opentelemetry import trace

from scoring.adapters.onnx_models import LoadedModel, ModelRegistry
from scoring.domain.explain import band_for, should_emit, top_reason_fields
from scoring.domain.features import (
    can_be_scored,
    feature_hash,
    feature_vector,
    resident_row,
    source_flags,
)
from scoring.domain.state import Change, Outcome, ResidentState, read_stored, stored_form
from shared import metrics
from shared.codec import UndecodableEvent, decode, encode
from shared.events import (
    SCHEMA_VERSION,
    ModelName,
    ResidentEventRecorded,
    ResidentFlagsChanged,
    ResidentOptedOut,
    utc_now,
)
from shared.telemetry import headers_from_context, traceparent_header
from shared.topics import (
    RESIDENT_EVENTS,
    RESIDENT_EVENTS_DEAD_LETTERS,
    RESIDENT_FLAGS,
    RISK_SCORES,
    RISK_SCORES_SHADOW,
)

log = logging.getLogger(__name__)
tracer = trace.get_tracer("scoring")

SOURCE = "scoring"
OPTED_OUT = "opted_out"
RESCORE_BATCH = 5_000
# The part of an unreadable record kept in the dead-letter topic: enough to see what it
# was, small enough for any broker's message limit.
DEAD_LETTER_KEEP_BYTES = 64 * 1024
RESIDENT_COUNT_MAX_AGE_S = 2.0
# Batches handed to the sender and not yet confirmed, before a flush waits for room.
PUBLISH_AHEAD = 4
# A failed publish is retried after this, doubling up to the cap: the events stay
# unacknowledged meanwhile, so nothing is lost if the worker stops instead.
PUBLISH_RETRY_FIRST_S = 0.2
PUBLISH_RETRY_MAX_S = 10.0
# Which source tables the flags are derived from, named on each flags event.
FLAG_BASIS = {
    "deceased": ["people.residents", "health.hospital_discharges"],
    "open_case": ["social_care.contacts", "social_care.care_packages"],
}


@dataclass(frozen=True)
class Outgoing:
    """One record to publish: topic, key, value and headers (trace context, reasons)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


Publish = Callable[[Sequence[Outgoing]], Awaitable[None]]
Acknowledge = Callable[[Sequence[Any]], Awaitable[None]]


@dataclass
class Stats:
    """Exact counters for `/stats`: consumed = applied + duplicates + stale + rejected +
    opted_out_ignored."""

    events_consumed: int = 0
    events_applied: int = 0
    duplicates_ignored: int = 0
    stale_ignored: int = 0
    events_rejected: int = 0
    dead_lettered: int = 0
    scores_emitted: int = 0
    scores_unchanged: int = 0
    shadow_scores_emitted: int = 0
    flags_published: int = 0
    model_batches: int = 0
    opted_out_ignored: int = 0
    opt_outs: int = 0
    rescored: int = 0
    rescored_after_redelivery: int = 0


@dataclass
class PendingScore:
    resident_key: str
    features: np.ndarray
    feature_hash: str
    triggered_by: uuid.UUID
    age_band: str | None
    ward: str | None
    trace_context: otel_context.Context
    # When ingest accepted the triggering event: the start of the scoring latency.
    published_at: datetime
    # Carried on the score for fairness monitoring only; the models never read them.
    sex: str | None = None
    ethnicity: str | None = None
    # The last scores emitted for this resident when the event was handled.
    previous: dict[str, tuple[float, str]] = field(default_factory=dict)


@dataclass
class _Published:
    """What was published (or handed to the sender) for a resident since their state was
    last written. Flushes run outside stream iteration, where Faust refuses table writes;
    so this waits here and goes into the state with the resident's next event."""

    scores: dict[str, tuple[float, str]] = field(default_factory=dict)
    feature_hash: str | None = None
    # The flush that last added to it: once that flush is confirmed, nothing newer for
    # the resident is on its way.
    flush: int = 0


@dataclass
class _Outbound:
    """One flush's records, what they publish per resident, and the events they settle."""

    flush: int
    records: list[Outgoing]
    published: dict[str, _Published]
    receipts: list[Any]
    done: asyncio.Future[None]


async def _acknowledge_nothing(_: Sequence[Any]) -> None:
    return None


class ScoringService:
    def __init__(
        self,
        # Resident key → state as JSON bytes (`stored_form`); a dict of mappings also reads.
        table: MutableMapping[str, Any],
        models: ModelRegistry,
        publish: Publish,
        *,
        shadow: ModelRegistry | None = None,
        acknowledge: Acknowledge = _acknowledge_nothing,
        hysteresis_delta: float = 0.02,
        batch_size: int = 256,
        max_wait_s: float = 0.01,
        worker: str | None = None,
    ) -> None:
        # Named on every score (a header), so that ops can tell which worker scored it.
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self._scored_by = ("proactive.scored_by", self.worker.encode())
        self._residents_counted: tuple[float, int] = (0.0, 0)
        self.table = table
        self.models = models
        self.shadow = shadow
        self.publish = publish
        self.acknowledge = acknowledge
        self.hysteresis_delta = hysteresis_delta
        self.batch_size = batch_size
        self.max_wait_s = max_wait_s
        self.stats = Stats()
        self.pending: dict[str, PendingScore] = {}
        self._outgoing: list[Outgoing] = []
        self._receipts: list[Any] = []
        # Per resident: what the broker has confirmed (goes into the state with the
        # resident's next event), and what has been handed to the sender (what decisions
        # go by; never older than the confirmed).
        self._published: dict[str, _Published] = {}
        self._sent: dict[str, _Published] = {}
        self._flushes_made = 0
        self._flushes_confirmed = 0
        self._consumed_unreported = 0  # the events-in metric is added once per flush
        self._flushing = asyncio.Lock()
        self._outbound: asyncio.Queue[_Outbound] = asyncio.Queue(maxsize=PUBLISH_AHEAD)
        self._sender: asyncio.Task[None] | None = None
        self._last_outbound: asyncio.Future[None] | None = None
        # Set when something starts waiting for a flush, `max_wait_s` ahead.
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_flushes: set[asyncio.Task[int]] = set()

    async def record(self, value: bytes | None, receipt: Any = None) -> None:
        """Handle one record from `resident.events.v1`; flush if the batch is full.
        `receipt` is what `acknowledge` is given once the record's consequences are out."""
        self.stats.events_consumed += 1
        self._consumed_unreported += 1
        if receipt is not None:
            self._receipts.append(receipt)
        try:
            event = decode(value, ResidentEventRecorded)
        except UndecodableEvent as error:
            self._dead_letter(RESIDENT_EVENTS.name, value, str(error))
        else:
            self._fold(event)
        if len(self.pending) >= self.batch_size or len(self._receipts) >= 4 * self.batch_size:
            await self.flush(wait=False)
        elif self._deadline is None:
            # This event (and whatever it queued) waits at most `max_wait_s` for a flush.
            self._deadline = asyncio.get_running_loop().call_later(
                self.max_wait_s, self._deadline_reached
            )

    def _deadline_reached(self) -> None:
        self._deadline = None
        flush = asyncio.create_task(self.flush(wait=False))
        self._deadline_flushes.add(flush)  # a reference, until it is done
        flush.add_done_callback(self._deadline_flushes.discard)

    def _fold(self, event: ResidentEventRecorded) -> None:
        key = event.resident_key
        stored = read_stored(self.table.get(key))
        if stored is not None and stored.get(OPTED_OUT):
            # The resident asked to be left out: their state was deleted, and nothing of
            # theirs is kept or scored again.
            self.stats.opted_out_ignored += 1
            return
        state = ResidentState.from_json(stored) if stored is not None else ResidentState()
        outcome = state.apply(Change.from_event(event))
        if outcome is Outcome.DUPLICATE:
            self.stats.duplicates_ignored += 1
            # Redelivered after a crash, scores queued but never published are still owed.
            if key not in self.pending and self._queue_if_changed(
                event, state, self._last_hash(key, state)
            ):
                self.stats.rescored_after_redelivery += 1
            return
        if outcome is Outcome.STALE:
            self.stats.stale_ignored += 1
            self.table[key] = stored_form(state.to_json())  # so that a redelivery is a duplicate
            return
        self.stats.events_applied += 1
        published = self._published.pop(key, None)
        if published is not None:
            state.scores.update(published.scores)
            state.feature_hash = published.feature_hash or state.feature_hash
            sent = self._sent.get(key)
            if sent is not None and sent.flush <= self._flushes_confirmed:
                del self._sent[key]  # the state now holds it, and nothing newer is on its way
        self._update_flags(event, state)
        self._queue_if_changed(event, state, self._last_hash(key, state))
        self.table[key] = stored_form(state.to_json())

    def _last_hash(self, key: str, state: ResidentState) -> str | None:
        """The features last queued, handed to the sender or published for the resident:
        an event that leaves them as they are needs no new scores."""
        pending = self.pending.get(key)
        if pending is not None:
            return pending.feature_hash
        sent = self._sent.get(key)
        return sent.feature_hash if sent and sent.feature_hash else state.feature_hash

    def _update_flags(self, event: ResidentEventRecorded, state: ResidentState) -> None:
        flags = source_flags(state)
        if flags == state.flags:
            return
        state.flags = list(flags)
        change = ResidentFlagsChanged(
            # The time of the state the flags were read from (it only moves forward), not
            # of this change: a late change to an old row must not look stale downstream.
            occurred_at=datetime.fromtimestamp(state.latest, UTC),
            resident_key=event.resident_key,
            source=SOURCE,
            flags=flags,
            basis=sorted({table for flag in flags for table in FLAG_BASIS[flag]}),
        )
        key = event.resident_key.encode()
        self._outgoing.append(
            Outgoing(RESIDENT_FLAGS.name, key, encode(change), headers_from_context())
        )
        self.stats.flags_published += 1

    def _queue_if_changed(
        self, event: ResidentEventRecorded, state: ResidentState, last_hash: str | None
    ) -> bool:
        if "deceased" in state.flags or not can_be_scored(state):
            # Never score a deceased resident, even one whose score was already queued.
            self.pending.pop(event.resident_key, None)
            return False
        vector = feature_vector(state)
        digest = feature_hash(vector)
        if digest == last_hash:
            return False
        self.pending[event.resident_key] = _pending(
            event.resident_key,
            state,
            vector,
            digest,
            event.event_id,
            event.produced_at,
            age_band=event.age_band,
            ward=event.ward,
        )
        return True

    def _dead_letter(self, topic: str, value: bytes | None, reason: str) -> None:
        """Set an unreadable record aside with its reason; the stream goes on."""
        self.stats.events_rejected += 1
        self.stats.dead_lettered += 1
        body = value or b""
        headers = [
            ("proactive.reason", reason.encode()),
            ("proactive.source_topic", topic.encode()),
            ("proactive.original_bytes", str(len(body)).encode()),
        ]
        kept = body[:DEAD_LETTER_KEEP_BYTES]
        self._outgoing.append(Outgoing(RESIDENT_EVENTS_DEAD_LETTERS.name, None, kept, headers))
        metrics.dead_lettered.add(1, {"messaging.destination.name": topic})
        # The reason only: the record itself may hold anything.
        log.error("dead-lettered a record from %s: %s", topic, reason)

    async def flush(self, *, wait: bool = True) -> int:
        """Score everything queued and hand it, with anything else owed, to the sender,
        which publishes it and then acknowledges the events it came from. With `wait`,
        return once that (and everything handed over before it) is out. Returns how many
        scores were made."""
        async with self._flushing:
            if self._deadline is not None:  # this flush takes what it was set for
                self._deadline.cancel()
                self._deadline = None
            batch = list(self.pending.values())
            self.pending.clear()
            outgoing, self._outgoing = self._outgoing, []
            receipts, self._receipts = self._receipts, []
            if self._consumed_unreported:
                metrics.events_in.add(
                    self._consumed_unreported, {"messaging.destination.name": RESIDENT_EVENTS.name}
                )
                self._consumed_unreported = 0
            published: dict[str, _Published] = {}
            scores = self._score(batch, outgoing, published) if batch else 0
            self._flushes_made += 1
            for key, done in published.items():
                _merge(self._sent, key, done).flush = self._flushes_made
            if outgoing or receipts or published:
                outbound = _Outbound(
                    self._flushes_made,
                    outgoing,
                    published,
                    receipts,
                    asyncio.get_running_loop().create_future(),
                )
                if self._sender is None or self._sender.done():
                    self._sender = asyncio.create_task(self._send_in_order())
                await self._outbound.put(outbound)  # waits while PUBLISH_AHEAD are waiting
                self._last_outbound = outbound.done
            last = self._last_outbound
        if wait and last is not None:
            await asyncio.shield(last)
        return scores

    async def _send_in_order(self) -> None:
        """The one sender: each batch published (retried until the broker takes it), its
        results confirmed, its events acknowledged, in the order the flushes made them."""
        while True:
            outbound = await self._outbound.get()
            delay = PUBLISH_RETRY_FIRST_S
            while outbound.records:
                try:
                    await self.publish(outbound.records)
                    break
                except Exception as error:  # the broker away, or refusing: try again
                    log.warning(
                        "publishing %d records failed (%s); retrying in %.1f s",
                        len(outbound.records),
                        error,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(PUBLISH_RETRY_MAX_S, delay * 2)
            for key, done in outbound.published.items():
                _merge(self._published, key, done)
            self._flushes_confirmed = outbound.flush
            if outbound.receipts:
                await self.acknowledge(outbound.receipts)
            outbound.done.set_result(None)

    def _score(
        self,
        batch: list[PendingScore],
        outgoing: list[Outgoing],
        published: dict[str, _Published],
    ) -> int:
        matrix = np.vstack([item.features for item in batch])
        results = self.models.score(matrix)
        shadow_results = self.shadow.score(matrix) if self.shadow and self.shadow.models else {}
        self.stats.model_batches += 1
        now = utc_now()
        # Enough for every score and shadow score this batch can make.
        event_ids = new_event_ids(len(batch) * (len(results) + len(shadow_results)))
        emitted = 0
        by_band: Counter[tuple[str, str]] = Counter()
        for row, item in enumerate(batch):
            messages: list[bytes] = []
            bands: dict[str, str] = {}
            last = self._sent.get(item.resident_key)
            for name, (probabilities, contributions) in results.items():
                model = self.models.models[name]
                probability = float(probabilities[row])
                band = band_for(probability, model.thresholds)
                previous = (last.scores.get(name) if last else None) or item.previous.get(name)
                if not should_emit(previous, probability, band, self.hysteresis_delta):
                    self.stats.scores_unchanged += 1
                    continue
                messages.append(
                    risk_scored_json(
                        item, model, probability, contributions[row], now, next(event_ids)
                    )
                )
                bands[name] = band
                by_band[(name, band)] += 1
                published.setdefault(item.resident_key, _Published()).scores[name] = (
                    probability,
                    band,
                )
            published.setdefault(item.resident_key, _Published()).feature_hash = item.feature_hash
            shadow_messages = []
            for name, (probabilities, contributions) in shadow_results.items():
                candidate = self.shadow.models[name]  # type: ignore[union-attr]
                shadow_messages.append(
                    risk_scored_json(
                        item,
                        candidate,
                        float(probabilities[row]),
                        contributions[row],
                        now,
                        next(event_ids),
                    )
                )
            if not messages and not shadow_messages:
                continue
            key = item.resident_key.encode()
            # One producer span per resident in the trace of the event that triggered the
            # scores; its context travels in the headers of each score.
            # (Started and ended here rather than made current: nothing runs inside it.)
            span = tracer.start_span(
                f"{RISK_SCORES.name} send",
                context=item.trace_context,
                kind=trace.SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": RISK_SCORES.name,
                    "messaging.batch.message_count": len(messages),
                    "proactive.bands": [f"{n}={b}" for n, b in bands.items()],
                    "proactive.shadow_scores": len(shadow_messages),
                },
            )
            headers = [traceparent_header(span.get_span_context()), self._scored_by]
            span.end()
            outgoing.extend(Outgoing(RISK_SCORES.name, key, value, headers) for value in messages)
            outgoing.extend(
                Outgoing(RISK_SCORES_SHADOW.name, key, value, headers) for value in shadow_messages
            )
            emitted += len(messages)
            self.stats.shadow_scores_emitted += len(shadow_messages)
            if messages:
                metrics.scoring_latency.record((now - item.published_at).total_seconds() * 1000)
        self.stats.scores_emitted += emitted
        for (model_name, band_name), count in by_band.items():
            metrics.scores.add(count, {"model": model_name, "band": band_name})
        metrics.events_out.add(emitted, {"messaging.destination.name": RISK_SCORES.name})
        return emitted

    async def opt_out(self, value: bytes | None) -> None:
        """On `resident.optouts.v1`: delete the resident's state, keep only the marker that
        stops them being scored again, and drop any score still queued for them."""
        try:
            event = decode(value, ResidentOptedOut)
        except UndecodableEvent as error:
            self._dead_letter("resident.optouts.v1", value, str(error))
            await self.flush()  # the dead letter is out before this record is acknowledged
            return
        self.table[event.resident_key] = stored_form({OPTED_OUT: True})
        self.pending.pop(event.resident_key, None)
        self._published.pop(event.resident_key, None)
        self._sent.pop(event.resident_key, None)
        self.stats.opt_outs += 1

    async def rescore_all(self, run_id: uuid.UUID) -> int:
        """Score every resident this worker holds again (a model or the calendar moved);
        hysteresis still decides what is published. Returns residents queued."""
        queued = 0
        with tracer.start_as_current_span("rescore", attributes={"proactive.rescore": str(run_id)}):
            for key, value in list(self.table.items()):
                stored = read_stored(value)
                if stored is None or stored.get(OPTED_OUT):
                    continue
                state = ResidentState.from_json(stored)
                if "deceased" in state.flags or not can_be_scored(state):
                    continue
                last = self._sent.get(key)
                if last is not None:
                    state.scores.update(last.scores)
                vector = feature_vector(state)
                self.pending[key] = _pending(
                    key, state, vector, feature_hash(vector), run_id, utc_now()
                )
                queued += 1
                if len(self.pending) >= RESCORE_BATCH:
                    await self.flush(wait=False)
            await self.flush()
        self.stats.rescored += queued
        return queued

    def state_of(self, resident_key: str) -> dict[str, Any] | None:
        stored = read_stored(self.table.get(resident_key))
        return dict(stored) if stored is not None else None

    def counters(self) -> dict[str, Any]:
        counts: dict[str, Any] = asdict(self.stats)
        counts["worker"] = self.worker
        counts["scores_pending"] = len(self.pending)
        counts["events_unacknowledged"] = len(self._receipts)
        counts["residents"] = self._residents()
        return counts

    def _residents(self) -> int:
        """Residents held, counted at most every few seconds: counting walks every key of
        the store, and `/stats` is polled."""
        counted_at, count = self._residents_counted
        if time.monotonic() - counted_at > RESIDENT_COUNT_MAX_AGE_S:
            try:
                count = len(self.table)
            except Exception:  # a table mid-rebalance may refuse; the other counters help
                count = -1
            self._residents_counted = (time.monotonic(), count)
        return count


def _merge(held: dict[str, _Published], key: str, done: _Published) -> _Published:
    """Add one resident's newly published scores (and feature hash) to a view of them."""
    view = held.setdefault(key, _Published())
    view.scores.update(done.scores)
    view.feature_hash = done.feature_hash or view.feature_hash
    return view


def risk_scored_json(
    item: PendingScore,
    model: LoadedModel,
    probability: float,
    contributions: np.ndarray,
    now: datetime,
    event_id: uuid.UUID,
) -> bytes:
    """A `RiskScored` record's value, byte for byte what `encode(RiskScored(...))` gives
    (a test holds it to that), written directly.

    Every value is one this worker computed and checked (a probability from a model that
    passed the contract check, a band from the card), so validating them again, and
    building four models per score only to serialise them, was most of the cost of each
    score; pydantic-core's own serialiser writes the same JSON from plain values."""
    _model_name(model.name)
    return pydantic_core.to_json(
        {
            "event_id": event_id,
            "schema_version": SCHEMA_VERSION,
            "occurred_at": now,
            "produced_at": now,
            "resident_key": item.resident_key,
            "source": SOURCE,
            "event_type": "RiskScored",
            "model": model.name,
            "model_version": model.version,
            "probability": probability,
            "band": band_for(probability, model.thresholds),
            "reasons": top_reason_fields(contributions, model.feature_names, model.reasons),
            "feature_hash": item.feature_hash,
            "triggered_by": item.triggered_by,
            "age_band": item.age_band,
            "ward": item.ward,
            "sex": item.sex,
            "ethnicity": item.ethnicity,
        }
    )


def new_event_ids(count: int) -> Iterator[uuid.UUID]:
    """`count` random (version 4) UUIDs from one read of the system's random source: one
    `os.urandom` call per UUID, as `uuid.uuid4` makes, costs a system call each."""
    random = os.urandom(16 * count)
    for start in range(0, 16 * count, 16):
        yield uuid.UUID(bytes=random[start : start + 16], version=4)


def _pending(
    resident_key: str,
    state: ResidentState,
    vector: np.ndarray,
    digest: str,
    triggered_by: uuid.UUID,
    published_at: datetime,
    *,
    age_band: str | None = None,
    ward: str | None = None,
) -> PendingScore:
    """A resident queued for the next micro-batch, in the current trace."""
    row = resident_row(state) or {}
    sex, ethnicity = (
        value if isinstance(value := row.get(field), str) else None
        for field in ("sex", "ethnicity")
    )
    return PendingScore(
        resident_key=resident_key,
        features=vector,
        feature_hash=digest,
        triggered_by=triggered_by,
        age_band=age_band,
        ward=ward,
        trace_context=otel_context.get_current(),
        published_at=published_at,
        sex=sex,
        ethnicity=ethnicity,
        previous=dict(state.scores),
    )


def _model_name(name: str) -> ModelName:
    if name not in get_args(ModelName):
        raise ValueError(f"unknown model {name}")
    return cast(ModelName, name)
