"""The worker's web pages: liveness, readiness and exact counters for the demo and ops."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import faust
from aiokafka.partitioner import DefaultPartitioner
from faust.web import Request, Response, View

from scoring.handlers import ScoringService
from shared.metrics import prometheus_text
from shared.topics import RESIDENT_EVENTS


def is_ready(app: faust.App) -> bool:
    """Partitions assigned, the table recovered from its changelog, not rebalancing."""
    try:
        recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return recovered and not app.rebalancing and bool(app.consumer.assignment())


def assigned_partitions(app: faust.App) -> list[int]:
    """The partitions of resident.events.v1 this worker owns now."""
    try:
        assignment = app.consumer.assignment()
    except Exception:  # not started, or mid-rebalance
        return []
    return sorted(tp.partition for tp in assignment if tp.topic == RESIDENT_EVENTS.name)


def partition_of(resident_key: str) -> int:
    """Where ingest's producer puts a resident's events (Kafka's default partitioner)."""
    everyone = list(range(RESIDENT_EVENTS.partitions))
    return int(_PARTITIONER(resident_key.encode(), everyone, everyone))


_PARTITIONER = DefaultPartitioner()


def register_pages(app: faust.App, service: ScoringService, service_token: str) -> None:
    def trusted(request: Request) -> bool:
        given = request.headers.get("Authorization", "")
        return secrets.compare_digest(given, f"Bearer {service_token}")

    @app.page("/healthz")
    async def healthz(view: View, request: Request) -> Response:
        return view.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(view: View, request: Request) -> Response:
        ready = is_ready(app)
        body: dict[str, Any] = {"status": "ready" if ready else "starting"}
        return view.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    async def prometheus_metrics(view: View, request: Request) -> Response:
        body, content_type = prometheus_text()
        # aiohttp takes the charset separately from the media type.
        return view.bytes(body, content_type=content_type.split(";")[0])

    @app.page("/rescore")
    class Rescore(View):
        """POST: score every resident this worker holds again (`proactive rescore`)."""

        async def post(self, request: Request) -> Response:
            if not trusted(request):
                return self.json({"detail": "A valid service token is required."}, status=401)
            run_id = uuid.uuid4()
            queued = await service.rescore_all(run_id)
            return self.json({"run": str(run_id), "residents": queued, **service.counters()})

    @app.page("/residents/{resident_key}")
    async def resident_state(view: View, request: Request, resident_key: str) -> Response:
        """A resident's folded state (pseudonymous), for support and for tests."""
        if not trusted(request):
            return view.json({"detail": "A valid service token is required."}, status=401)
        partition = partition_of(resident_key)
        if partition not in assigned_partitions(app):
            # A store may still hold rows of a partition that moved to another worker.
            return view.json(
                {"detail": f"Partition {partition} is held by another worker."}, status=404
            )
        state = service.state_of(resident_key)
        if state is None:
            return view.json({"detail": "No state for that resident on this worker."}, status=404)
        return view.json(state)

    @app.page("/stats")
    async def stats(view: View, request: Request) -> Response:
        return view.json({**service.counters(), "partitions": assigned_partitions(app)})
