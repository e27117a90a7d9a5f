"""The whole pipeline as a newcomer runs it: four service processes and a Tansu broker,
driven by `proactive demo` through ingest's HTTP API; then what ops staff rely on — one
trace through every service and both Kafka edges of every hop, no personal data in any
span or log, and metrics in the local store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from proactive.borough import demo_stream
from shared.telemetry import read_spans

pytestmark = pytest.mark.e2e
EVENTS = 600
SEED = 7
# Each hop between services: the topic, who sends on it, who processes it.
HOPS = [
    ("resident.events.v1", "ingest", "scoring"),
    ("risk.scores.v1", "scoring", "outreach"),
    ("outreach.tasks.v1", "outreach", "notify"),
    ("notify.deliveries.v1", "notify", "outreach"),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict[str, Any]:
    data_dir = tmp_path_factory.mktemp("demo")
    completed = subprocess.run(
        [sys.executable, "-m", "proactive.cli", "demo", "--events", str(EVENTS), "--json",
         "--seed", str(SEED), "--keep-topics"],
        env={**os.environ, "PROACTIVE_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    summary["spans"] = list(read_spans(Path(summary["data_dir"]) / "traces"))
    return summary


def test_a_demo_run_ends_in_tasks_letters_and_one_trace_across_all_four_services(demo):
    assert demo["events_sent"] == EVENTS
    assert demo["events_accepted"] + demo["events_rejected"] == EVENTS
    assert demo["scores_emitted"] > 0
    assert demo["tasks_created"] > 0
    assert demo["letters_rendered"] > 0
    assert demo["letters_rendered"] == demo["tasks_approved"]
    assert demo["traces_complete"] >= 0.95
    letters = list((Path(demo["data_dir"]) / "notify" / "letters").glob("*.pdf"))
    assert len(letters) == demo["letters_rendered"]
    assert letters[0].read_bytes().startswith(b"%PDF")


def test_a_task_trace_holds_both_kafka_edges_of_every_hop(demo):
    by_trace: dict[str, set[tuple[str, str]]] = defaultdict(set)
    task_traces = set()
    for span in demo["spans"]:
        trace_id = span["context"]["trace_id"]
        service = span["resource"]["attributes"]["service.name"]
        by_trace[trace_id].add((service, span["name"]))
        if span["name"] == "task create":
            task_traces.add(trace_id)
    assert task_traces
    for trace_id in task_traces:
        seen = by_trace[trace_id]
        for topic, sender, processor in HOPS:
            assert (sender, f"{topic} send") in seen, f"{trace_id}: no send on {topic}"
            assert (processor, f"{topic} process") in seen, f"{trace_id}: no process of {topic}"


def test_consumer_spans_follow_the_messaging_conventions(demo):
    process = [s for s in demo["spans"] if s["name"] == "risk.scores.v1 process"]
    assert process
    attributes = process[0]["attributes"]
    assert attributes["messaging.system"] == "kafka"
    assert attributes["messaging.destination.name"] == "risk.scores.v1"
    assert attributes["messaging.consumer.group.name"] == "outreach-scores"
    assert "messaging.destination.partition.id" in attributes


def _leaks(personal: set[str], text: str) -> list[str]:
    """Personal values found in `text` as whole words (a person reference inside a longer
    council reference, such as a care package id, is not that person's reference)."""
    return [
        value
        for value in personal
        if value in text and re.search(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", text)
    ]


def _personal_values() -> set[str]:
    values = set()
    for change in demo_stream(EVENTS, SEED):
        if change.table != "people.residents":
            continue
        record = change.record
        for column in ("given_name", "family_name", "postcode", "date_of_birth", "address_line_1",
                       "person_ref"):  # fmt: skip
            value = record.get(column)
            if isinstance(value, str) and len(value) >= 4:
                values.add(value)
    return values


def test_no_span_and_no_log_line_holds_a_name_postcode_or_date_of_birth(demo):
    personal = _personal_values()
    assert len(personal) > 50  # the check must have something to look for
    for span in demo["spans"]:
        text = json.dumps([span["name"], span.get("attributes"), span.get("events")])
        assert not _leaks(personal, text), f"span {span['name']} holds personal data"
    for log in (Path(demo["data_dir"]) / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert not _leaks(personal, text), f"{log.name} holds personal data"


def test_no_record_on_any_topic_holds_a_name_postcode_or_date_of_birth(demo):
    personal = _personal_values()
    records = (Path(demo["data_dir"]) / "topics.jsonl").read_text().splitlines()
    topics = {json.loads(line)["topic"] for line in records}
    assert {
        "resident.events.v1",
        "risk.scores.v1",
        "outreach.tasks.v1",
        "notify.deliveries.v1",
    } <= topics
    for line in records:
        assert not _leaks(personal, line), (
            f"a record on {json.loads(line)['topic']} holds personal data"
        )


def test_metrics_reach_the_local_store(demo):
    names = set()
    for path in (Path(demo["data_dir"]) / "metrics").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            for resource in json.loads(line).get("resource_metrics", []):
                for scope in resource["scope_metrics"]:
                    names.update(metric["name"] for metric in scope["metrics"])
    for expected in ("proactive.events.consumed", "proactive.events.published", "proactive.scores",
                     "proactive.scoring.latency", "proactive.tasks.changes", "proactive.letters"):  # fmt: skip
        assert expected in names
