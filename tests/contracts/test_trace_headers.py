"""Trace context in Kafka headers: what `context_from_headers` reads directly must be what
the configured W3C propagator would read, and anything it does not understand must go to
the propagator rather than be guessed at."""

from __future__ import annotations

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider

from shared.telemetry import context_from_headers, traceparent_header

TRACER = TracerProvider().get_tracer("test")


def _span_context(headers: list[tuple[str, bytes]]) -> trace.SpanContext:
    return trace.get_current_span(context_from_headers(headers)).get_span_context()


def _by_propagator(carrier: dict[str, str]) -> trace.SpanContext:
    return trace.get_current_span(propagate.extract(carrier)).get_span_context()


@pytest.mark.unit
def test_a_traceparent_we_wrote_reads_back_as_the_propagator_reads_it() -> None:
    with TRACER.start_as_current_span("send") as span:
        header = traceparent_header(span.get_span_context())
    read = _span_context([header, ("proactive.scored_by", b"worker-1")])
    assert read == _by_propagator({"traceparent": header[1].decode()})
    assert read.trace_id == span.get_span_context().trace_id
    assert read.span_id == span.get_span_context().span_id
    assert read.is_remote


@pytest.mark.unit
@pytest.mark.parametrize(
    "value",
    [
        b"00-" + b"0" * 32 + b"-" + b"1" * 16 + b"-01",  # all-zero trace id
        b"00-" + b"1" * 32 + b"-" + b"0" * 16 + b"-01",  # all-zero span id
        b"00-" + b"A" * 32 + b"-" + b"1" * 16 + b"-01",  # upper case
        b"00-" + b"1_" * 16 + b"-" + b"1" * 16 + b"-01",  # what int() alone would accept
        b"garbage",
        b"",
    ],
)
def test_a_malformed_traceparent_starts_no_trace(value: bytes) -> None:
    assert not _span_context([("traceparent", value)]).is_valid


@pytest.mark.unit
def test_a_record_with_tracestate_is_read_by_the_propagator() -> None:
    parent = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    read = _span_context([("traceparent", parent.encode()), ("tracestate", b"vendor=x")])
    assert read.trace_state.get("vendor") == "x"
    assert read == _by_propagator({"traceparent": parent, "tracestate": "vendor=x"})


@pytest.mark.unit
def test_no_headers_is_no_trace() -> None:
    assert not _span_context([]).is_valid
