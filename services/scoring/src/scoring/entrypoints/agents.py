"""The Faust agents and timers: transport in, handler calls out, nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import faust
from opentelemetry import context as otel_context
from opentelemetry import trace

from scoring.handlers import ScoringService
from shared.telemetry import context_from_headers

tracer = trace.get_tracer("scoring")


def register_agents(
    app: faust.App,
    events: faust.TopicT,
    optouts: faust.TopicT,
    service: ScoringService,
) -> faust.types.AgentT:
    @app.agent(events, name="score-resident-events")
    async def score_resident_events(stream: faust.StreamT[Any]) -> None:
        # One event at a time (the table may only be written inside stream iteration),
        # and not acknowledged on the way out: the service acknowledges each event once
        # the scores and flags it led to are on the broker, so Faust never commits an
        # offset whose consequences a crash could still lose.
        unacknowledged = stream.noack()  # type: ignore[attr-defined]  # missing from StreamT

        async def acknowledge(received: Sequence[Any]) -> None:
            for event in received:
                await unacknowledged.ack(event)

        service.acknowledge = acknowledge
        async for event in unacknowledged.events():
            message = event.message
            # The consumer edge of the trace ingest started (W3C `traceparent` header).
            span = tracer.start_span(
                f"{message.topic} process",
                context=context_from_headers(_headers(message.headers)),
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": message.topic,
                    "messaging.destination.partition.id": str(message.partition),
                    "messaging.kafka.offset": message.offset,
                    "messaging.consumer.group.name": app.conf.id,
                },
            )
            token = otel_context.attach(trace.set_span_in_context(span))
            try:
                await service.record(event.value, receipt=event)
            finally:
                otel_context.detach(token)
                span.end()

    @app.agent(optouts, name="forget-opted-out-residents")
    async def forget_opted_out_residents(stream: faust.StreamT[Any]) -> None:
        async for value in stream:
            await service.opt_out(value)

    @app.timer(interval=30.0, name="reload-models")
    async def reload_models() -> None:
        # A new model file in the folder is picked up here, or refused with its reason;
        # candidates put in the shadow folder start (or stop) scoring in shadow.
        service.models.reload()
        if service.shadow is not None:
            service.shadow.refresh()

    return score_resident_events


def _headers(headers: Any) -> list[tuple[str, bytes]]:
    """Faust gives headers as a list of pairs or a mapping, depending on the transport."""
    if headers is None:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers)
