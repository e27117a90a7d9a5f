"""OpenTelemetry start-up for a service, and trace context carried in Kafka headers.

The embedded default writes spans as JSON lines under `<data_dir>/traces/`, one file per
process, which the demo and the ops view read; production sets
`OTEL_EXPORTER_OTLP_ENDPOINT` and spans go to the collector as well. Trace context
crosses Kafka in the W3C `traceparent` header: the aiokafka instrumentation writes it on
send (the only injector), and consumers read it with `context_from_headers`.
"""

from __future__ import annotations

import functools
import json
import logging
import logging.config
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pydantic_core
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.util import ns_to_iso_str
from sqlalchemy.engine import Engine

KafkaHeaders = Sequence[tuple[str, bytes]]
_configured: TracerProvider | None = None


def _span_as_json_line(span: ReadableSpan) -> str:
    """`span.to_json(indent=None)` on one line, the same text, in about half the time: the
    SDK writes the resource (the same for every span of a process) out with the pure-Python
    indenting encoder and reads it back for each span, which was most of the cost at
    thousands of spans a second (one per event the outbox relay sends)."""
    context = span.context
    parent = span.parent
    status = {"status_code": str(span.status.status_code.name)}
    if span.status.description:
        status["description"] = span.status.description
    line = {
        "name": span.name,
        "context": ReadableSpan._format_context(context) if context else None,
        "kind": str(span.kind),
        "parent_id": f"0x{trace.format_span_id(parent.span_id)}" if parent else None,
        "start_time": ns_to_iso_str(span.start_time) if span.start_time else None,
        "end_time": ns_to_iso_str(span.end_time) if span.end_time else None,
        "status": status,
        "attributes": ReadableSpan._format_attributes(span.attributes),
        "events": ReadableSpan._format_events(span.events),
        "links": ReadableSpan._format_links(span.links),
        "resource": _resource_as_dict(span.resource),
    }
    # pydantic-core's serialiser: the same JSON (without spaces), in a third of the time.
    return pydantic_core.to_json(line).decode() + os.linesep


@functools.lru_cache(maxsize=16)
def _resource_as_dict(resource: Resource) -> dict[str, Any]:
    return dict(json.loads(resource.to_json()))


class SkipStateChangelogSpans(SpanProcessor):
    """Passes every span on but those of a Faust table's changelog writes.

    Each state update is also written to its changelog topic; the aiokafka instrumentation
    makes a root span for every such write, outside any resident's trace. They say nothing
    an operator can use and, written out, they cost more than the update itself."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        self.inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if not span.name.endswith("-changelog send"):
            self.inner.on_end(span)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def setup_tracing(
    service_name: str,
    data_dir: Path | None,
    *,
    to_file: bool = True,
    instrument_kafka: bool = True,
) -> TracerProvider:
    """Install the tracer provider for this process (once) and instrument aiokafka
    (unless the service makes its own Kafka spans, as scoring does for its batches)."""
    global _configured
    if _configured is not None:
        return _configured
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if to_file and data_dir is not None:
        traces_dir = data_dir / "traces"
        traces_dir.mkdir(parents=True, exist_ok=True)
        sink = open(traces_dir / f"{service_name}-{os.getpid()}.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        exporter = ConsoleSpanExporter(out=sink, formatter=_span_as_json_line)
        provider.add_span_processor(
            SkipStateChangelogSpans(BatchSpanProcessor(exporter, schedule_delay_millis=500))
        )
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(SkipStateChangelogSpans(BatchSpanProcessor(OTLPSpanExporter())))
    trace.set_tracer_provider(provider)
    from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentors = (AIOKafkaInstrumentor(), HTTPXClientInstrumentor())
    for instrumentor in instrumentors[0 if instrument_kafka else 1 :]:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
    from shared.metrics import setup_metrics

    setup_metrics(service_name, data_dir, to_file=to_file)
    _configured = provider
    return provider


def instrument_database(engine: Engine) -> None:
    """Spans for SQL statements (statement text only: parameters are never recorded)."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine, enable_commenter=False)


def flush_telemetry() -> None:
    """Write out every span and metric still buffered (a service calls this as it stops).

    The providers themselves are shut down at interpreter exit by the SDK; OpenTelemetry
    lets a process set its providers only once, so they stay for the process's life."""
    if _configured is not None:
        _configured.force_flush()
    from shared.metrics import flush_metrics

    flush_metrics()


def context_from_headers(headers: KafkaHeaders | None) -> otel_context.Context:
    """The trace context a producer put in a record's headers (empty if none).

    A record that carries only `traceparent` (all of ours) is read directly, as
    `traceparent_header` writes it: the propagator API costs several times as much, which
    counts once per event in a worker taking thousands a second. Anything else goes through
    the configured propagator."""
    if headers:
        fast = _context_from_traceparent_only(headers)
        if fast is not None:
            return fast
    carrier: dict[str, str] = {}
    for key, value in headers or ():
        # The first header wins, as in the aiokafka instrumentation, should one be repeated.
        if value is not None and key not in carrier:
            carrier[key] = value.decode("latin-1")
    return propagate.extract(carrier)


# What `context_from_headers` reads itself; any other tracing header needs the propagator.
_PROPAGATION_HEADERS = frozenset({"tracestate", "baggage"})
_TRACEPARENT = re.compile(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def _context_from_traceparent_only(headers: KafkaHeaders) -> otel_context.Context | None:
    traceparent = None
    for key, value in headers:
        if key in _PROPAGATION_HEADERS:
            return None
        if key == "traceparent" and traceparent is None:
            traceparent = value
    found = _TRACEPARENT.fullmatch(traceparent) if traceparent is not None else None
    if found is None:
        return None
    trace_id, span_id, flags = (int(part, 16) for part in found.groups())
    if not trace_id or not span_id:  # all zeros is invalid (W3C Trace Context)
        return None
    remote = trace.SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(flags)
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(remote))


def traceparent_header(span_context: trace.SpanContext) -> tuple[str, bytes]:
    """The W3C `traceparent` header for a span, written directly: the propagator API does
    the same through several layers, which counts when a worker sends thousands a second."""
    flags = int(span_context.trace_flags)
    value = f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{flags:02x}"
    return ("traceparent", value.encode("latin-1"))


def headers_from_context(ctx: otel_context.Context | None = None) -> list[tuple[str, bytes]]:
    """`traceparent` (and `tracestate`) for the given or current context, as Kafka headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    return [(key, value.encode("latin-1")) for key, value in carrier.items()]


def read_spans(traces_dir: Path) -> Iterable[dict[str, Any]]:
    """Every span the processes of the embedded stack exported to the local store."""
    for path in sorted(traces_dir.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                line = line.strip()
                if line:
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a half-written last line from a process killed mid-export


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line, with the current trace and span ids for correlation."""

    def format(self, record: logging.LogRecord) -> str:
        span_context = trace.get_current_span().get_span_context()
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(level))


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """JSON lines on stderr at `level`, as a `logging.config.dictConfig` mapping: the form
    a framework that configures logging itself (Faust's worker) can be handed, so that it
    keeps our format and level instead of installing its own."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonLogFormatter}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"level": level.upper(), "handlers": ["default"]},
    }
