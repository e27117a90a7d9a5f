"""The platform's metrics, one place: OpenTelemetry instruments, exposed for Prometheus at
each service's `/metrics`, written to the local store in dev, and sent over OTLP in
production when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

Every service uses the same names and labels, so one dashboard reads them all. Labels
never hold a resident key or anything personal.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

_provider: MeterProvider | None = None
# Consumer lag by (group, topic, partition), refreshed by each consumer as it polls.
_lag: dict[tuple[str, str, int], int] = {}


def setup_metrics(service_name: str, data_dir: Path | None, *, to_file: bool = True) -> None:
    """Install the meter provider for this process (once)."""
    global _provider
    if _provider is not None:
        return
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    readers: list[MetricReader] = [PrometheusMetricReader()]
    if to_file and data_dir is not None:
        folder = data_dir / "metrics"
        folder.mkdir(parents=True, exist_ok=True)
        sink = open(folder / f"{service_name}-{os.getpid()}.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        exporter = ConsoleMetricExporter(
            out=sink, formatter=lambda data: data.to_json(indent=None) + os.linesep
        )
        readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=15_000))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    _provider = MeterProvider(
        resource=Resource.create({"service.name": service_name}), metric_readers=readers
    )
    metrics.set_meter_provider(_provider)


def flush_metrics() -> None:
    if _provider is not None:
        _provider.force_flush()


def prometheus_text() -> tuple[bytes, str]:
    """The `/metrics` body and its content type, in Prometheus' text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def record_lag(group: str, topic: str, partition: int, lag: int) -> None:
    _lag[(group, topic, partition)] = max(0, lag)


def _observe_lag(_: CallbackOptions) -> Iterable[Observation]:
    for (group, topic, partition), lag in list(_lag.items()):
        yield Observation(
            lag,
            {
                "messaging.consumer.group.name": group,
                "messaging.destination.name": topic,
                "messaging.destination.partition.id": str(partition),
            },
        )


_meter = metrics.get_meter("proactive")

events_in = _meter.create_counter(
    "proactive.events.consumed", unit="{event}", description="Records consumed, by topic"
)
events_out = _meter.create_counter(
    "proactive.events.published", unit="{event}", description="Records published, by topic"
)
dead_lettered = _meter.create_counter(
    "proactive.events.dead_lettered", unit="{event}", description="Unreadable records set aside"
)
rejected = _meter.create_counter(
    "proactive.ingest.rejected", unit="{event}", description="Inbound changes refused, by reason"
)
scoring_latency = _meter.create_histogram(
    "proactive.scoring.latency",
    unit="ms",
    description="From a resident event's publication by ingest to its score",
)
scores = _meter.create_counter(
    "proactive.scores", unit="{score}", description="Scores emitted, by model and band"
)
task_changes = _meter.create_counter(
    "proactive.tasks.changes", unit="{change}", description="Task lifecycle changes, by status"
)
letters = _meter.create_counter(
    "proactive.letters", unit="{letter}", description="Deliveries, by channel and status"
)
consumer_lag = _meter.create_observable_gauge(
    "proactive.consumer.lag",
    callbacks=[_observe_lag],
    unit="{record}",
    description="High watermark minus position, per group and partition. On the embedded "
    "broker the watermark is under-reported, so this reads low there.",
)


def reason_kind(reason: str) -> str:
    """A short, bounded label for a rejection reason (labels must not grow without end)."""
    text = reason.lower()
    for kind in ("unknown table", "unknown op", "not json", "not valid", "delete needs", "schema"):
        if kind in text:
            return kind.replace(" ", "_")
    return "other"
