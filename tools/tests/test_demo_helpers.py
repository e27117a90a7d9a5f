import json

import pytest

from proactive.simulate import pipeline_settled
from proactive.stack import Ports
from proactive.traces import share_of_complete_traces

pytestmark = pytest.mark.unit


def span(trace_id: str, service: str, name: str = "work", task_id: str | None = None) -> dict:
    return {
        "name": name,
        "context": {"trace_id": trace_id, "span_id": "0x1"},
        "attributes": {"proactive.task_id": task_id} if task_id else {},
        "resource": {"attributes": {"service.name": service}},
    }


def test_a_task_counts_as_traced_only_when_its_trace_reaches_all_four_services(tmp_path):
    spans = [
        span("t1", "ingest"),
        span("t1", "scoring"),
        span("t1", "outreach", "task create", "a"),
        span("t1", "notify"),
        span("t2", "ingest"),
        span("t2", "scoring"),
        span("t2", "outreach", "task create", "b"),
    ]
    (tmp_path / "all.jsonl").write_text("\n".join(json.dumps(s) for s in spans) + "\n{half a li")
    assert share_of_complete_traces(tmp_path) == 0.5


def test_no_tasks_means_no_complete_traces(tmp_path):
    assert share_of_complete_traces(tmp_path) == 0.0


STATS = {
    "ingest": {"accepted": 10, "published": 10},
    "scoring": {"events_consumed": 10, "scores_emitted": 4},
    "outreach": {"scores_seen": 4, "outbox_pending": 0, "tasks_approved": 2},
    "notify": {"letters_rendered": 2, "deliveries_failed": 0},
}


def test_the_pipeline_is_settled_when_each_stage_has_caught_up():
    assert pipeline_settled(STATS)


@pytest.mark.parametrize(
    ("service", "field", "value"),
    [
        ("ingest", "published", 9),
        ("scoring", "events_consumed", 9),
        ("outreach", "scores_seen", 3),
        ("outreach", "outbox_pending", 1),
        ("notify", "letters_rendered", 1),
    ],
)
def test_the_pipeline_is_not_settled_while_any_stage_lags(service, field, value):
    lagging = {name: dict(counts) for name, counts in STATS.items()}
    lagging[service][field] = value
    assert not pipeline_settled(lagging)


def test_ports_follow_the_environment(monkeypatch):
    monkeypatch.setenv("PROACTIVE_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    monkeypatch.setenv("PROACTIVE_OUTREACH_PORT", "18003")
    ports = Ports.from_env()
    assert ports.broker == 19092
    assert ports.outreach == 18003
    assert ports.ingest == 8001
    assert ports.url("outreach") == "http://127.0.0.1:18003"
