"""The local trace store writes each span as the OpenTelemetry SDK's `to_json` would (the
same JSON, on one line), only faster; the demo, the ops view and the benchmark read it."""

import json

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from shared.telemetry import _span_as_json_line

pytestmark = pytest.mark.unit


class Kept(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans):
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def test_a_span_line_is_the_sdks_json_of_that_span_on_one_line():
    kept = Kept()
    provider = TracerProvider(resource=Resource.create({"service.name": "ingest"}))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("POST /v1/events", kind=SpanKind.SERVER) as request,
        tracer.start_as_current_span(
            "resident.events.v1 send",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.kafka.partition": 3, "ratio": 0.5, "keys": ("a", "b")},
            links=[Link(request.get_span_context(), {"why": "batch"})],
        ) as send,
    ):
        send.add_event("retry", {"attempt": 2})
        send.set_status(Status(StatusCode.ERROR, "the broker said no"))
        try:
            raise ValueError("boom")
        except ValueError as error:
            send.record_exception(error)
    assert len(kept.spans) == 2
    for span in kept.spans:
        line = _span_as_json_line(span)
        assert line.endswith("\n")
        assert line.count("\n") == 1
        assert json.loads(line) == json.loads(span.to_json(indent=None))
    child = json.loads(_span_as_json_line(kept.spans[0]))
    assert child["parent_id"] is not None
    assert child["resource"]["attributes"]["service.name"] == "ingest"
