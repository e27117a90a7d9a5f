"""What the ops view shows, worked out from plain data: Prometheus text turned into the
figures people read, a service's health in plain English, recent traces summarised, and a
trace laid out as a waterfall. No I/O here: the adapters fetch, these functions decide."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PIPELINE = ("ingest", "scoring", "outreach", "notify")

# Metrics


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+-?\d+)?$"
)
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _unescape(value: str) -> str:
    return re.sub(r"\\[\\\"n]", lambda m: _ESCAPES[m.group(0)], value)


def parse_prometheus(text: str) -> list[Sample]:
    """The samples in a Prometheus text exposition; comments and lines that are not
    samples are skipped, so one odd line never hides the rest."""
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        labels = {k: _unescape(v) for k, v in _LABEL.findall(match["labels"] or "")}
        samples.append(Sample(match["name"], labels, value))
    return samples


def sum_by(samples: Iterable[Sample], name: str, *keys: str) -> dict[tuple[str, ...], float]:
    """Add up one metric's samples over every label but `keys` (e.g. lag over partitions)."""
    totals: dict[tuple[str, ...], float] = defaultdict(float)
    for sample in samples:
        if sample.name == name:
            totals[tuple(sample.labels.get(key, "") for key in keys)] += sample.value
    return dict(sorted(totals.items()))


@dataclass
class Throughput:
    """The pipeline's figures since each service started, from every service's /metrics."""

    consumed: list[tuple[str, str, int]] = field(default_factory=list)  # service, topic, n
    published: list[tuple[str, str, int]] = field(default_factory=list)
    lag: list[tuple[str, str, str, int]] = field(default_factory=list)  # service, group, topic
    scores: list[tuple[str, str, int]] = field(default_factory=list)  # model, band, n
    task_changes: list[tuple[str, int]] = field(default_factory=list)  # status, n
    letters: list[tuple[str, str, int]] = field(default_factory=list)  # channel, status, n
    rejected: list[tuple[str, str, int]] = field(default_factory=list)  # channel, reason, n
    dead_lettered: list[tuple[str, str, int]] = field(default_factory=list)  # service, topic
    scoring_latency_ms: float | None = None  # the mean since start

    @property
    def flows(self) -> list[tuple[str, str, int, int]]:
        """(service, topic, read, written), in the pipeline's order."""
        both: dict[tuple[str, str], list[int]] = {}
        for service, topic, n in self.consumed:
            both.setdefault((service, topic), [0, 0])[0] += n
        for service, topic, n in self.published:
            both.setdefault((service, topic), [0, 0])[1] += n
        ordered = sorted(both.items(), key=lambda item: (_pipeline_order(item[0][0]), item[0][1]))
        return [(service, topic, read, written) for (service, topic), (read, written) in ordered]

    @property
    def empty(self) -> bool:
        return not (self.consumed or self.published or self.scores or self.letters)


TOPIC = "messaging_destination_name"
GROUP = "messaging_consumer_group_name"


def throughput(metrics_by_service: Mapping[str, list[Sample]]) -> Throughput:
    figures = Throughput()
    everything: list[Sample] = []
    for service in sorted(metrics_by_service, key=_pipeline_order):
        samples = metrics_by_service[service]
        everything.extend(samples)
        for (topic,), n in sum_by(samples, "proactive_events_consumed_total", TOPIC).items():
            figures.consumed.append((service, topic, round(n)))
        for (topic,), n in sum_by(samples, "proactive_events_published_total", TOPIC).items():
            figures.published.append((service, topic, round(n)))
        for (group, topic), n in sum_by(samples, "proactive_consumer_lag", GROUP, TOPIC).items():
            figures.lag.append((service, group, topic, round(n)))
        for (topic,), n in sum_by(samples, "proactive_events_dead_lettered_total", TOPIC).items():
            figures.dead_lettered.append((service, topic, round(n)))
    figures.scores = _flat(sum_by(everything, "proactive_scores_total", "model", "band"))
    figures.task_changes = [
        (status, round(n))
        for (status,), n in sum_by(everything, "proactive_tasks_changes_total", "status").items()
    ]
    figures.letters = _flat(sum_by(everything, "proactive_letters_total", "channel", "status"))
    figures.rejected = _flat(
        sum_by(everything, "proactive_ingest_rejected_total", "channel", "reason")
    )
    count = sum_by(everything, "proactive_scoring_latency_milliseconds_count").get((), 0.0)
    total = sum_by(everything, "proactive_scoring_latency_milliseconds_sum").get((), 0.0)
    figures.scoring_latency_ms = total / count if count else None
    return figures


def _flat(totals: dict[tuple[str, ...], float]) -> list[tuple[str, str, int]]:
    return [(a, b, round(n)) for (a, b), n in totals.items()]


def _pipeline_order(service: str) -> tuple[int, str]:
    return (PIPELINE.index(service) if service in PIPELINE else len(PIPELINE), service)


# Health


@dataclass(frozen=True)
class Health:
    service: str
    url: str
    status: str  # running | starting | unhealthy | not_answering
    text: str  # one plain-English sentence
    parts_waiting: tuple[str, ...] = ()

    @property
    def colour(self) -> str:
        return {"running": "green", "starting": "yellow"}.get(self.status, "red")

    @property
    def label(self) -> str:
        return {
            "running": "Running",
            "starting": "Starting",
            "unhealthy": "Unhealthy",
            "not_answering": "Not answering",
        }[self.status]


def health(
    service: str,
    url: str,
    healthz: int | None,
    readyz: int | None,
    readyz_body: Any = None,
    timeout_s: float = 1.5,
) -> Health:
    """`healthz`/`readyz` are the HTTP status codes the service answered, or None when it
    did not answer in time."""
    if healthz is None:
        return Health(service, url, "not_answering", f"No answer within {timeout_s:g} seconds.")
    if healthz != 200:
        return Health(service, url, "unhealthy", f"Its health check answered {healthz}.")
    if readyz == 200:
        return Health(service, url, "running", "Alive and ready for work.")
    waiting = _parts_waiting(readyz_body)
    if readyz is None:
        text = "Alive, but its readiness check did not answer."
    elif waiting:
        text = "Alive, but not ready yet: waiting for " + ", ".join(waiting) + "."
    else:
        text = "Alive, but not ready yet (joining the broker or recovering its state)."
    return Health(service, url, "starting", text, waiting)


def _parts_waiting(body: Any) -> tuple[str, ...]:
    """The parts a FastAPI service's 503 from /readyz names as not ready."""
    detail = body.get("detail") if isinstance(body, dict) else None
    parts = detail.get("parts") if isinstance(detail, dict) else None
    if not isinstance(parts, dict):
        return ()
    return tuple(sorted(str(name) for name, ready in parts.items() if not ready))


def counter_label(name: str) -> str:
    """`tasks_created` → `Tasks created`, for a service's /stats counters."""
    return name.replace("_", " ").capitalize()


# Traces


def _id(value: Any) -> str:
    text = str(value or "")
    return text[2:] if text.startswith("0x") else text


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    service: str
    start: datetime
    end: datetime
    status: str
    attributes: tuple[tuple[str, str], ...]

    @property
    def duration_ms(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds() * 1000)

    @property
    def is_detail(self) -> bool:
        """A database statement or the web framework's own send/receive step: true, but
        it buries the pipeline's spans, so the waterfall hides these unless asked."""
        keys = {key for key, _ in self.attributes}
        if keys & {"db.system", "db.system.name"}:
            return True
        return self.kind == "Internal" and self.name.endswith((" http send", " http receive"))


def span_from_json(data: Mapping[str, Any]) -> Span | None:
    """A span as `shared.telemetry.read_spans` yields it, or None if it lacks the basics."""
    context = data.get("context") or {}
    start, end = _time(data.get("start_time")), _time(data.get("end_time"))
    trace_id, span_id = _id(context.get("trace_id")), _id(context.get("span_id"))
    if not (trace_id and span_id and start):
        return None
    resource = (data.get("resource") or {}).get("attributes") or {}
    attributes = data.get("attributes") or {}
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=_id(data.get("parent_id")) or None,
        name=str(data.get("name") or "(unnamed)"),
        kind=str(data.get("kind") or "SpanKind.INTERNAL").removeprefix("SpanKind.").title(),
        service=str(resource.get("service.name") or "unknown"),
        start=start,
        end=max(end or start, start),
        status=str((data.get("status") or {}).get("status_code") or "UNSET"),
        attributes=tuple(sorted((str(k), _shown(v)) for k, v in attributes.items())),
    )


def _shown(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return text if len(text) <= 200 else text[:199] + "…"


@dataclass(frozen=True)
class TraceSummary:
    trace_id: str
    started_at: datetime
    duration_ms: float
    span_count: int
    services: tuple[str, ...]
    root_name: str
    errors: int


def summarise_traces(spans: Iterable[Span], limit: int = 50) -> list[TraceSummary]:
    """The newest `limit` traces among `spans`, newest first."""
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    summaries = []
    for trace_id, members in by_trace.items():
        start = min(s.start for s in members)
        end = max(s.end for s in members)
        ids = {s.span_id for s in members}
        roots = [s for s in members if s.parent_id not in ids]
        root = min(roots or members, key=lambda s: s.start)
        summaries.append(
            TraceSummary(
                trace_id=trace_id,
                started_at=start,
                duration_ms=(end - start).total_seconds() * 1000,
                span_count=len(members),
                services=tuple(sorted({s.service for s in members}, key=_pipeline_order)),
                root_name=root.name,
                errors=sum(1 for s in members if s.status == "ERROR"),
            )
        )
    summaries.sort(key=lambda t: t.started_at, reverse=True)
    return summaries[:limit]


@dataclass(frozen=True)
class Bar:
    span: Span
    depth: int
    offset_ms: float
    left_pct: float
    width_pct: float


@dataclass(frozen=True)
class Waterfall:
    trace_id: str
    started_at: datetime
    duration_ms: float
    bars: list[Bar]
    services: tuple[str, ...]
    total_spans: int
    ticks: list[tuple[float, str]]
    hidden: int = 0  # detail spans left out

    @property
    def truncated(self) -> bool:
        return len(self.bars) + self.hidden < self.total_spans


MIN_WIDTH_PCT = 0.4  # a span too short to see still gets a sliver
MAX_DEPTH = 12


def layout(spans: list[Span], limit: int = 400, *, hide_detail: bool = False) -> Waterfall | None:
    """Each span as a bar: indented under its parent (children by start time), its left
    edge at its start and its width its duration, both as a share of the whole trace.
    With `hide_detail`, detail spans are left out and their children hang from the
    nearest span shown above them."""
    if not spans:
        return None
    start = min(s.start for s in spans)
    end = max(s.end for s in spans)
    total_ms = max((end - start).total_seconds() * 1000, 0.001)
    by_id = {s.span_id: s for s in spans}
    shown = [s for s in spans if not (hide_detail and s.is_detail)]
    shown_ids = {s.span_id for s in shown}

    def shown_parent(span: Span) -> str | None:
        parent, steps = span.parent_id, 0
        while parent in by_id and parent not in shown_ids and steps < len(spans):
            parent, steps = by_id[parent].parent_id, steps + 1
        # A span whose parent is elsewhere (another store, or not written yet) starts a tree.
        return parent if parent in shown_ids else None

    children: dict[str | None, list[Span]] = defaultdict(list)
    for span in shown:
        children[shown_parent(span)].append(span)
    for siblings in children.values():
        siblings.sort(key=lambda s: (s.start, s.name))
    bars: list[Bar] = []
    seen: set[str] = set()
    stack: list[tuple[Span, int]] = [(s, 0) for s in reversed(children[None])]
    while stack and len(bars) < limit:
        span, depth = stack.pop()
        if span.span_id in seen:  # the same id twice in the store, or a loop
            continue
        seen.add(span.span_id)
        offset = (span.start - start).total_seconds() * 1000
        left = min(100.0, offset / total_ms * 100)
        width = max(MIN_WIDTH_PCT, span.duration_ms / total_ms * 100)
        left = min(left, 100.0 - min(width, 100.0))
        bars.append(Bar(span, min(depth, MAX_DEPTH), offset, round(left, 3), round(width, 3)))
        stack.extend((child, depth + 1) for child in reversed(children[span.span_id]))
    return Waterfall(
        trace_id=spans[0].trace_id,
        started_at=start,
        duration_ms=total_ms,
        bars=bars,
        services=tuple(sorted({s.service for s in spans}, key=_pipeline_order)),
        total_spans=len(spans),
        hidden=len(spans) - len(shown),
        ticks=[(pct, milliseconds(total_ms * pct / 100)) for pct in (0, 25, 50, 75, 100)],
    )


def milliseconds(value: float) -> str:
    """A duration the way people read it: 0.42 ms, 12.3 ms, 1.52 s, 3 min 5 s."""
    if value == 0:
        return "0 ms"
    if value < 1:
        return f"{value:.2f} ms"
    if value < 1000:
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    if value < 60_000:
        return f"{value / 1000:.2f} s"
    minutes, seconds = divmod(round(value / 1000), 60)
    return f"{minutes} min {seconds} s"


def trace_link(trace_id: str, viewer_url: str | None) -> str:
    """Where a trace opens: Jaeger or Tempo when one is configured, else our waterfall."""
    if not viewer_url:
        return f"/ops/traces/{trace_id}"
    if "{trace_id}" in viewer_url:
        return viewer_url.replace("{trace_id}", trace_id)
    return f"{viewer_url.rstrip('/')}/trace/{trace_id}"
