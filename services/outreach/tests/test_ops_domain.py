"""The ops view's pure parts: reading Prometheus text, putting health in words, laying a
trace out as a waterfall, and reading the local trace store within bounds."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from outreach.adapters.traces import TraceStore
from outreach.domain.ops import (
    health,
    layout,
    milliseconds,
    parse_prometheus,
    span_from_json,
    sum_by,
    summarise_traces,
    throughput,
    trace_link,
)

pytestmark = pytest.mark.unit

EXPOSITION = r"""# HELP proactive_events_consumed_total Records consumed, by topic
# TYPE proactive_events_consumed_total counter
proactive_events_consumed_total{messaging_destination_name="risk.scores.v1",otel_scope_name="proactive"} 926.0
proactive_events_consumed_total{messaging_destination_name="notify.deliveries.v1",otel_scope_name="proactive"} 75.0
proactive_events_published_total{messaging_destination_name="outreach.tasks.v1"} 273.0
proactive_consumer_lag{messaging_consumer_group_name="outreach-scores",messaging_destination_name="risk.scores.v1",messaging_destination_partition_id="0"} 3.0
proactive_consumer_lag{messaging_consumer_group_name="outreach-scores",messaging_destination_name="risk.scores.v1",messaging_destination_partition_id="1"} 4.0
proactive_tasks_changes_total{event_type="TaskCreated",status="proposed"} 75.0
proactive_tasks_changes_total{event_type="TaskApproved",status="approved"} 70.0
proactive_tasks_changes_total{event_type="TaskReleased",status="proposed"} 5.0
proactive_scoring_latency_milliseconds_count 4.0
proactive_scoring_latency_milliseconds_sum 100.0
weird_label{note="a \"quoted\" value, with a comma\\ and \n newline"} 1.5 1712345678000
this line is not a sample
broken_value{a="b"} not-a-number
python_gc_objects_collected_total{generation="0"} +Inf
"""


def test_prometheus_text_is_read_sample_by_sample_skipping_what_is_not_a_sample():
    samples = parse_prometheus(EXPOSITION)
    names = [s.name for s in samples]
    assert names.count("proactive_events_consumed_total") == 2
    assert "this" not in names and "broken_value" not in names
    weird = next(s for s in samples if s.name == "weird_label")
    assert weird.labels == {"note": 'a "quoted" value, with a comma\\ and \n newline'}
    assert weird.value == 1.5  # the timestamp after the value is not the value
    assert next(s for s in samples if s.name.startswith("python_gc")).value == float("inf")
    assert next(s for s in samples if s.name.endswith("_count")).labels == {}


def test_lag_is_added_up_over_partitions_per_group_and_topic():
    lag = sum_by(
        parse_prometheus(EXPOSITION),
        "proactive_consumer_lag",
        "messaging_consumer_group_name",
        "messaging_destination_name",
    )
    assert lag == {("outreach-scores", "risk.scores.v1"): 7.0}


def test_throughput_gathers_each_services_figures_in_pipeline_order():
    ingest = parse_prometheus(
        'proactive_events_published_total{messaging_destination_name="resident.events.v1"} 1000\n'
        'proactive_ingest_rejected_total{channel="http",reason="unknown_table"} 2\n'
    )
    figures = throughput({"outreach": parse_prometheus(EXPOSITION), "ingest": ingest})
    assert figures.flows == [
        ("ingest", "resident.events.v1", 0, 1000),
        ("outreach", "notify.deliveries.v1", 75, 0),
        ("outreach", "outreach.tasks.v1", 0, 273),
        ("outreach", "risk.scores.v1", 926, 0),
    ]
    assert figures.lag == [("outreach", "outreach-scores", "risk.scores.v1", 7)]
    assert figures.task_changes == [("approved", 70), ("proposed", 80)]
    assert figures.rejected == [("http", "unknown_table", 2)]
    assert figures.scoring_latency_ms == 25.0
    assert not figures.empty


def test_no_metrics_at_all_reads_as_empty_not_as_zeroes():
    figures = throughput({"ingest": [], "scoring": []})
    assert figures.empty
    assert figures.scoring_latency_ms is None


@pytest.mark.parametrize(
    ("healthz", "readyz", "body", "status", "says"),
    [
        (200, 200, {"status": "ready"}, "running", "Alive and ready for work."),
        (
            200,
            503,
            {"detail": {"parts": {"outbox-relay": True, "scores-consumer": False}}},
            "starting",
            "waiting for scores-consumer.",
        ),
        (200, 503, {"status": "starting"}, "starting", "joining the broker"),
        (200, None, None, "starting", "readiness check did not answer"),
        (500, 200, None, "unhealthy", "answered 500"),
        (None, None, None, "not_answering", "No answer within 1.5 seconds."),
    ],
)
def test_health_is_put_in_plain_english(healthz, readyz, body, status, says):
    result = health("scoring", "http://x", healthz, readyz, body, 1.5)
    assert result.status == status
    assert says in result.text
    assert result.colour == {"running": "green", "starting": "yellow"}.get(status, "red")


def span_json(
    name: str,
    span_id: str,
    parent: str | None,
    start_ms: float,
    duration_ms: float,
    service: str = "ingest",
    trace_id: str = "a" * 32,
    origin: datetime = datetime(2026, 11, 1, 9, 0, tzinfo=UTC),
) -> dict[str, object]:
    """A span in the shape `shared.telemetry.read_spans` yields (ReadableSpan.to_json)."""

    def iso(ms: float) -> str:
        return (origin + timedelta(milliseconds=ms)).isoformat().replace("+00:00", "Z")

    return {
        "name": name,
        "context": {"trace_id": f"0x{trace_id}", "span_id": f"0x{span_id}", "trace_state": "[]"},
        "kind": "SpanKind.CONSUMER",
        "parent_id": f"0x{parent}" if parent else None,
        "start_time": iso(start_ms),
        "end_time": iso(start_ms + duration_ms),
        "status": {"status_code": "UNSET"},
        "attributes": {"messaging.system": "kafka", "messaging.kafka.message.offset": 3},
        "events": [],
        "links": [],
        "resource": {"attributes": {"service.name": service}, "schema_url": ""},
    }


def spans_of(*data: dict[str, object]):
    return [s for s in (span_from_json(d) for d in data) if s is not None]


def test_a_waterfall_places_each_bar_by_its_start_and_duration_within_the_trace():
    waterfall = layout(
        spans_of(
            span_json("late child", "03", "01", 150, 50),
            span_json("root", "01", None, 0, 200),
            span_json("early child", "02", "01", 0, 100, service="scoring"),
            span_json("grandchild", "04", "02", 50, 25, service="scoring"),
        )
    )
    assert waterfall is not None
    rows = [(b.span.name, b.depth, b.left_pct, b.width_pct) for b in waterfall.bars]
    assert rows == [
        ("root", 0, 0.0, 100.0),
        ("early child", 1, 0.0, 50.0),
        ("grandchild", 2, 25.0, 12.5),
        ("late child", 1, 75.0, 25.0),
    ]
    assert waterfall.duration_ms == 200
    assert waterfall.services == ("ingest", "scoring")
    assert waterfall.ticks[2] == (50, "100 ms")
    assert waterfall.bars[0].span.kind == "Consumer"
    assert ("messaging.kafka.message.offset", "3") in waterfall.bars[0].span.attributes


def test_an_instant_span_at_the_very_end_still_shows_as_a_sliver_inside_the_track():
    waterfall = layout(
        spans_of(span_json("root", "01", None, 0, 1000), span_json("blip", "02", "01", 1000, 0))
    )
    assert waterfall is not None
    blip = waterfall.bars[1]
    assert blip.width_pct > 0
    assert blip.left_pct + blip.width_pct <= 100


def test_spans_whose_parent_is_missing_start_their_own_tree_and_loops_end():
    waterfall = layout(
        spans_of(
            span_json("orphan", "05", "ff", 10, 5),
            span_json("a", "01", "02", 0, 5),
            span_json("b", "02", "01", 1, 5),  # a loop: each the other's parent
            span_json("root", "03", None, 0, 20),
        )
    )
    assert waterfall is not None
    assert [b.span.name for b in waterfall.bars] == ["root", "orphan"]
    assert waterfall.total_spans == 4


def test_a_huge_trace_is_cut_to_the_limit_and_says_so():
    many = [span_json("root", "0", None, 0, 1000)] + [
        span_json(f"child {i}", f"{i + 1:x}", "0", i, 1) for i in range(600)
    ]
    waterfall = layout(spans_of(*many), limit=100)
    assert waterfall is not None
    assert len(waterfall.bars) == 100 and waterfall.total_spans == 601
    assert waterfall.truncated


def test_detail_spans_can_be_hidden_and_their_children_hang_from_the_nearest_shown_span():
    statement = span_json("INSERT t", "02", "01", 1, 1)
    statement["attributes"] = {"db.system": "sqlite"}
    framework = span_json("POST /v1/events http receive", "03", "01", 2, 1)
    framework["kind"] = "SpanKind.INTERNAL"
    spans = spans_of(
        span_json("POST /v1/events", "01", None, 0, 10),
        statement,
        framework,
        span_json("resident.events.v1 send", "04", "03", 3, 1),
    )
    everything = layout(spans)
    assert everything is not None and everything.hidden == 0
    assert [b.depth for b in everything.bars] == [0, 1, 1, 2]
    pipeline = layout(spans, hide_detail=True)
    assert pipeline is not None
    assert [(b.span.name, b.depth) for b in pipeline.bars] == [
        ("POST /v1/events", 0),
        ("resident.events.v1 send", 1),
    ]
    assert pipeline.hidden == 2 and not pipeline.truncated


def test_the_trace_store_can_keep_to_traces_that_cross_services(tmp_path):
    write_lines(
        tmp_path / "all-1.jsonl",
        [
            span_json("alone", "01", None, 0, 1, trace_id="1" * 32),
            span_json("journey", "02", None, 5, 1, trace_id="2" * 32),
            span_json("onward", "03", "02", 6, 1, trace_id="2" * 32, service="scoring"),
        ],
    )
    store = TraceStore(tmp_path)
    assert [t.root_name for t in store.recent()] == ["journey", "alone"]
    assert [t.root_name for t in store.recent(across_services=True)] == ["journey"]


def test_a_span_without_ids_or_times_is_left_out():
    assert span_from_json({"name": "x", "context": {}}) is None
    assert span_from_json({"name": "x", "context": {"trace_id": "0x1", "span_id": "0x2"}}) is None
    assert layout([]) is None


def test_traces_are_summarised_newest_first_with_their_services_and_size():
    summaries = summarise_traces(
        spans_of(
            span_json("old", "01", None, 0, 10, trace_id="1" * 32),
            span_json("new", "02", None, 5000, 40, trace_id="2" * 32, service="outreach"),
            span_json("new child", "03", "02", 5010, 20, trace_id="2" * 32, service="ingest"),
        )
    )
    assert [(s.trace_id[0], s.root_name, s.span_count) for s in summaries] == [
        ("2", "new", 2),
        ("1", "old", 1),
    ]
    assert summaries[0].services == ("ingest", "outreach")
    assert summaries[0].duration_ms == 40


def write_lines(path: Path, spans: list[dict[str, object]], extra: str = "") -> None:
    path.write_text("".join(json.dumps(s) + "\n" for s in spans) + extra)


def test_the_trace_store_reads_only_the_newest_files_and_the_tail_of_each(tmp_path):
    old = tmp_path / "ingest-1.jsonl"
    write_lines(old, [span_json("in an old file", "01", None, 0, 1, trace_id="1" * 32)])
    os.utime(old, (1, 1))
    big = tmp_path / "scoring-2.jsonl"
    write_lines(
        big,
        [span_json(f"s{i}", f"{i + 16:x}", None, i, 1, trace_id="2" * 32) for i in range(200)],
        extra='{"name": "half-writ',
    )
    store = TraceStore(tmp_path, max_files=1, tail_bytes=5_000)
    spans = store.trace("2" * 32)
    assert 0 < len(spans) < 200  # only the tail, and the cut first line is skipped
    assert spans[-1].name == "s199"
    assert store.trace("1" * 32) == []  # the older file is outside the window


def test_the_trace_store_keeps_what_it_read_for_a_few_seconds(tmp_path):
    now = [0.0]
    store = TraceStore(tmp_path, ttl_s=5, clock=lambda: now[0])
    assert store.recent() == []
    write_lines(tmp_path / "notify-3.jsonl", [span_json("x", "01", None, 0, 1)])
    assert store.recent() == []  # still the cached read
    now[0] = 5.0
    assert [t.root_name for t in store.recent()] == ["x"]


def test_a_missing_trace_folder_is_simply_empty(tmp_path):
    assert TraceStore(tmp_path / "nowhere").recent() == []


def test_trace_links_go_to_the_configured_viewer_or_the_local_waterfall():
    trace_id = "ab" * 16
    assert trace_link(trace_id, None) == f"/ops/traces/{trace_id}"
    assert trace_link(trace_id, "https://jaeger.example/") == (
        f"https://jaeger.example/trace/{trace_id}"
    )
    grafana = "https://grafana.example/explore?traceId={trace_id}"
    assert trace_link(trace_id, grafana) == f"https://grafana.example/explore?traceId={trace_id}"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.421, "0.42 ms"),
        (12.34, "12.3 ms"),
        (250.4, "250 ms"),
        (1520, "1.52 s"),
        (185_000, "3 min 5 s"),
    ],
)
def test_durations_read_the_way_people_say_them(value, text):
    assert milliseconds(value) == text
