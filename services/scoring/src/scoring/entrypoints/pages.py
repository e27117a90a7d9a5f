"""The worker's web pages: liveness, readiness and exact counters for the demo and ops."""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from scoring.handlers import ScoringService
from shared.metrics import prometheus_text


def is_ready(app: faust.App) -> bool:
    """Partitions assigned, the table recovered from its changelog, not rebalancing."""
    try:
        recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return recovered and not app.rebalancing and bool(app.consumer.assignment())


def register_pages(app: faust.App, service: ScoringService) -> None:
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
        return view.bytes(body, content_type=content_type)

    @app.page("/stats")
    async def stats(view: View, request: Request) -> Response:
        return view.json(service.counters())
