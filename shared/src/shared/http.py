"""What every FastAPI service serves the same way: its probes and its metrics."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import Response

from shared.metrics import prometheus_text
from shared.service import error_responses


def add_metrics_route(app: FastAPI) -> None:
    """`GET /metrics` in Prometheus' text format."""

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        body, content_type = prometheus_text()
        return Response(body, media_type=content_type)


def probe_routes(app: FastAPI) -> None:
    """`GET /healthz` (the process answers) and `GET /readyz` (every part in
    `app.state.readiness` is ready; 503 naming the parts otherwise)."""

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses=error_responses(503))
    def readyz(request: Request) -> dict[str, Any]:
        readiness = request.app.state.readiness
        if not readiness.ready:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, {"parts": readiness.parts})
        return {"status": "ready", "parts": readiness.parts}
