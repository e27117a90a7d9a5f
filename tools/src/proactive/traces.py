"""Reading the embedded stack's local trace store: does each task's trace run through
all four services?"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from shared.telemetry import read_spans

PIPELINE = frozenset({"ingest", "scoring", "outreach", "notify"})


def services_by_trace(traces_dir: Path) -> tuple[dict[str, set[str]], dict[str, str]]:
    """Which services each trace touched, and the trace each created task belongs to."""
    services: dict[str, set[str]] = defaultdict(set)
    task_traces: dict[str, str] = {}
    for span in read_spans(traces_dir):
        trace_id = span["context"]["trace_id"]
        services[trace_id].add(span["resource"]["attributes"].get("service.name", "?"))
        task_id = span.get("attributes", {}).get("proactive.task_id")
        if task_id and span["name"] == "task create":
            task_traces[task_id] = trace_id
    return services, task_traces


def share_of_complete_traces(traces_dir: Path) -> float:
    """The share of created tasks whose one trace holds spans from all four services."""
    services, task_traces = services_by_trace(traces_dir)
    if not task_traces:
        return 0.0
    complete = sum(1 for trace_id in task_traces.values() if services[trace_id] >= PIPELINE)
    return complete / len(task_traces)
