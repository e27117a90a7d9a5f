"""What the worker does with each resident event, and with each micro-batch of scores.

`record` runs once per event, inside the Faust stream iteration (the only place a Faust
table may be written): decode, fold into the resident's state, store the state, and, if a
feature the models read has changed, queue the resident for scoring. `flush` runs when the
queue is full or on a timer: one ONNX Runtime call per model for the whole queue, then one
`RiskScored` per model whose band changed or whose probability moved by more than the
hysteresis delta, each published inside a span parented to the trace of the event that
triggered it (the batch mixes many traces, so the current context would be wrong).

The collaborators (the table, the models, the publisher) are passed in, so unit tests run
this with a dict, the committed models and a list.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, cast, get_args

import numpy as np
from opentelemetry import context as otel_context
from opentelemetry import trace

from scoring.adapters.onnx_models import ModelRegistry
from scoring.domain.explain import band_for, should_emit, top_reasons
from scoring.domain.features import (
    can_be_scored,
    feature_hash,
    feature_vector,
    is_deceased,
    resident_row,
)
from scoring.domain.state import Change, Outcome, ResidentState
from shared import metrics
from shared.codec import UndecodableEvent, decode
from shared.events import ModelName, ResidentEventRecorded, ResidentOptedOut, RiskScored, utc_now

log = logging.getLogger(__name__)
tracer = trace.get_tracer("scoring")

Publish = Callable[[RiskScored], Awaitable[None]]
SOURCE = "scoring"
OPTED_OUT = "opted_out"
RESCORE_BATCH = 5_000
EVENTS_TOPIC = {"messaging.destination.name": "resident.events.v1"}
SCORES_TOPIC = {"messaging.destination.name": "risk.scores.v1"}


@dataclass
class Stats:
    """Exact counters for `/stats`: consumed = applied + duplicates + stale + rejected."""

    events_consumed: int = 0
    events_applied: int = 0
    duplicates_ignored: int = 0
    stale_ignored: int = 0
    events_rejected: int = 0
    scores_emitted: int = 0
    scores_unchanged: int = 0
    model_batches: int = 0
    opted_out_ignored: int = 0
    opt_outs: int = 0
    rescored: int = 0


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


class ScoringService:
    def __init__(
        self,
        table: MutableMapping[str, dict[str, Any]],
        models: ModelRegistry,
        publish: Publish,
        *,
        hysteresis_delta: float = 0.02,
        batch_size: int = 256,
    ) -> None:
        self.table = table
        self.models = models
        self.publish = publish
        self.hysteresis_delta = hysteresis_delta
        self.batch_size = batch_size
        self.stats = Stats()
        self.pending: dict[str, PendingScore] = {}
        # Scores emitted since a resident's state was last written. A flush may run on a
        # timer, outside stream iteration, where Faust refuses table writes; so the last
        # emitted scores wait here and go into the state with the resident's next event.
        self._emitted: dict[str, dict[str, tuple[float, str]]] = {}
        self._flushing = asyncio.Lock()

    async def record(self, value: bytes | None) -> None:
        """Handle one record from `resident.events.v1`; flush if the batch is full."""
        self.stats.events_consumed += 1
        metrics.events_in.add(1, EVENTS_TOPIC)
        try:
            event = decode(value, ResidentEventRecorded)
        except UndecodableEvent as error:
            # No dead-letter topic exists for scoring yet; the reason is logged, with no
            # content, and counted, so nothing disappears unseen.
            self.stats.events_rejected += 1
            log.error("refused a record on resident.events.v1: %s", error)
            return
        key = event.resident_key
        stored = self.table.get(key)
        if stored is not None and stored.get(OPTED_OUT):
            # The resident asked to be left out: their state was deleted, and nothing of
            # theirs is kept or scored again.
            self.stats.opted_out_ignored += 1
            return
        state = ResidentState.from_json(stored) if stored is not None else ResidentState()
        outcome = state.apply(Change.from_event(event))
        if outcome is Outcome.DUPLICATE:
            self.stats.duplicates_ignored += 1
            return
        if outcome is Outcome.STALE:
            self.stats.stale_ignored += 1
            self.table[key] = state.to_json()  # remember the id, so a redelivery is a duplicate
            return
        self.stats.events_applied += 1
        state.scores.update(self._emitted.pop(event.resident_key, {}))
        self._queue_if_changed(event, state)
        self.table[key] = state.to_json()
        if len(self.pending) >= self.batch_size:
            await self.flush()

    def _queue_if_changed(self, event: ResidentEventRecorded, state: ResidentState) -> None:
        if is_deceased(state) or not can_be_scored(state):
            # Never score a deceased resident, even one whose score was already queued.
            self.pending.pop(event.resident_key, None)
            state.feature_hash = None
            return
        vector = feature_vector(state)
        digest = feature_hash(vector)
        if digest == state.feature_hash:
            return
        state.feature_hash = digest
        self.pending[event.resident_key] = PendingScore(
            resident_key=event.resident_key,
            features=vector,
            feature_hash=digest,
            triggered_by=event.event_id,
            age_band=event.age_band,
            ward=event.ward,
            trace_context=otel_context.get_current(),
            published_at=event.produced_at,
            previous=dict(state.scores),
            **_monitoring_attributes(state),
        )

    async def flush(self) -> int:
        """Score everything queued; return how many scores were published."""
        async with self._flushing:
            if not self.pending:
                return 0
            batch = list(self.pending.values())
            self.pending.clear()
            results = self.models.score(np.vstack([item.features for item in batch]))
            self.stats.model_batches += 1
            published = 0
            for name, (probabilities, contributions) in results.items():
                model = self.models.models[name]
                for row, item in enumerate(batch):
                    probability = float(probabilities[row])
                    band = band_for(probability, model.thresholds)
                    emitted = self._emitted.get(item.resident_key, {})
                    previous = emitted.get(name) or item.previous.get(name)
                    if not should_emit(previous, probability, band, self.hysteresis_delta):
                        self.stats.scores_unchanged += 1
                        continue
                    score = RiskScored(
                        occurred_at=utc_now(),
                        resident_key=item.resident_key,
                        source=SOURCE,
                        model=_model_name(name),
                        model_version=model.version,
                        probability=probability,
                        band=band,
                        reasons=top_reasons(contributions[row], model.feature_names, model.reasons),
                        feature_hash=item.feature_hash,
                        triggered_by=item.triggered_by,
                        age_band=item.age_band,
                        ward=item.ward,
                        sex=item.sex,
                        ethnicity=item.ethnicity,
                    )
                    with tracer.start_as_current_span(
                        f"score {name}",
                        context=item.trace_context,
                        kind=trace.SpanKind.PRODUCER,
                        attributes={"model": name, "model.version": model.version, "band": band},
                    ):
                        await self.publish(score)
                    self._emitted.setdefault(item.resident_key, {})[name] = (probability, band)
                    self.stats.scores_emitted += 1
                    metrics.scores.add(1, {"model": name, "band": band})
                    metrics.events_out.add(1, SCORES_TOPIC)
                    metrics.scoring_latency.record(
                        (score.produced_at - item.published_at).total_seconds() * 1000
                    )
                    published += 1
            return published

    def opt_out(self, value: bytes | None) -> None:
        """On `resident.optouts.v1`: delete the resident's state, keep only the marker that
        stops them being scored again, and drop any score still queued for them."""
        try:
            event = decode(value, ResidentOptedOut)
        except UndecodableEvent as error:
            self.stats.events_rejected += 1
            log.error("refused a record on resident.optouts.v1: %s", error)
            return
        self.table[event.resident_key] = {OPTED_OUT: True}
        self.pending.pop(event.resident_key, None)
        self._emitted.pop(event.resident_key, None)
        self.stats.opt_outs += 1

    async def rescore_all(self, run_id: uuid.UUID) -> int:
        """Score every resident this worker holds again (a model or the calendar moved);
        hysteresis still decides what is published. Returns residents queued."""
        queued = 0
        with tracer.start_as_current_span("rescore", attributes={"proactive.rescore": str(run_id)}):
            for key, stored in list(self.table.items()):
                if stored is None or stored.get(OPTED_OUT):
                    continue
                state = ResidentState.from_json(stored)
                if is_deceased(state) or not can_be_scored(state):
                    continue
                state.scores.update(self._emitted.get(key, {}))
                vector = feature_vector(state)
                self.pending[key] = PendingScore(
                    resident_key=key,
                    features=vector,
                    feature_hash=feature_hash(vector),
                    triggered_by=run_id,
                    age_band=None,
                    ward=None,
                    trace_context=otel_context.get_current(),
                    published_at=utc_now(),
                    previous=dict(state.scores),
                    **_monitoring_attributes(state),
                )
                queued += 1
                if len(self.pending) >= RESCORE_BATCH:
                    await self.flush()
            await self.flush()
        self.stats.rescored += queued
        return queued

    def state_of(self, resident_key: str) -> dict[str, Any] | None:
        stored = self.table.get(resident_key)
        return dict(stored) if stored is not None else None

    def counters(self) -> dict[str, int]:
        counts = asdict(self.stats)
        counts["scores_pending"] = len(self.pending)
        try:
            counts["residents"] = len(self.table)
        except Exception:  # a table mid-rebalance may refuse; the other counters still help
            counts["residents"] = -1
        return counts


def _monitoring_attributes(state: ResidentState) -> dict[str, str | None]:
    row = resident_row(state) or {}
    return {
        field: value if isinstance(value := row.get(field), str) else None
        for field in ("sex", "ethnicity")
    }


def _model_name(name: str) -> ModelName:
    if name not in get_args(ModelName):
        raise ValueError(f"unknown model {name}")
    return cast(ModelName, name)
