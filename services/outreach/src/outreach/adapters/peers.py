"""The other services as the ops view sees them over HTTP: their health, readiness,
counters and metrics, and ingest's refused changes and their replay. Every call is short
and in parallel; a service that does not answer is reported as such, never raised."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from outreach.domain.ops import Health, Sample, health, parse_prometheus


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no answer in time (or no connection)
    body: Any = None


@dataclass
class ServiceReport:
    health: Health
    stats: dict[str, Any] | None = None
    metrics: list[Sample] = field(default_factory=list)
    metrics_answer: int | None = 200  # what /metrics answered (None: nothing in time)


@dataclass(frozen=True)
class ReplayResult:
    outcome: str  # replayed | refused | already | missing | unreachable
    detail: str


class Peers:
    def __init__(self, urls: dict[str, str], service_token: str, timeout_s: float) -> None:
        self.urls = urls
        self.headers = {"Authorization": f"Bearer {service_token}"}
        self.timeout_s = timeout_s

    async def _get(self, client: httpx.AsyncClient, url: str, *, auth: bool = False) -> Answer:
        try:
            response = await client.get(url, headers=self.headers if auth else None)
        except httpx.HTTPError:
            return Answer(None)
        kind = response.headers.get("content-type", "")
        try:
            body: Any = response.json() if "json" in kind else response.text
        except ValueError:
            body = response.text
        return Answer(response.status_code, body)

    async def report(self, service: str, client: httpx.AsyncClient) -> ServiceReport:
        base = self.urls[service]
        healthz, readyz, stats, metrics = await asyncio.gather(
            *(
                self._get(client, f"{base}{path}")
                for path in ("/healthz", "/readyz", "/stats", "/metrics")
            )
        )
        return ServiceReport(
            health=health(
                service, base, healthz.status, readyz.status, readyz.body, self.timeout_s
            ),
            stats=stats.body if stats.status == 200 and isinstance(stats.body, dict) else None,
            metrics=parse_prometheus(metrics.body)
            if metrics.status == 200 and isinstance(metrics.body, str)
            else [],
            metrics_answer=metrics.status,
        )

    async def overview(self, rejections: int = 25) -> tuple[dict[str, ServiceReport], Answer]:
        """Each service's report, and ingest's newest refused changes."""
        # Polling is not part of the pipeline: keep it out of the traces ops staff read.
        with suppress_http_instrumentation():
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                reports, refused = await asyncio.gather(
                    asyncio.gather(*(self.report(service, client) for service in self.urls)),
                    self._get(
                        client,
                        f"{self.urls['ingest']}/v1/rejections?limit={rejections}",
                        auth=True,
                    ),
                )
        return dict(zip(self.urls, reports, strict=True)), refused

    async def drift(self) -> Answer:
        """Scoring's latest drift report (measured daily by the worker)."""
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            return await self._get(client, f"{self.urls['scoring']}/drift")

    async def replay(self, rejection_id: int) -> ReplayResult:
        """Ask ingest to try a refused change again (traced: it starts the change's journey)."""
        url = f"{self.urls['ingest']}/v1/rejections/{rejection_id}/replay"
        try:
            async with httpx.AsyncClient(timeout=max(self.timeout_s, 5.0)) as client:
                response = await client.post(url, headers=self.headers)
        except httpx.HTTPError as error:
            return ReplayResult("unreachable", f"ingest did not answer ({type(error).__name__})")
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and isinstance(body, dict):
            counts = ", ".join(f"{k} {v}" for k, v in body.items() if k != "replayed")
            return ReplayResult("replayed", counts)
        if response.status_code == 409:
            return ReplayResult("already", "it was replayed already")
        if response.status_code == 404:
            return ReplayResult("missing", "ingest has no such refused change")
        detail = body.get("detail") if isinstance(body, dict) else None
        return ReplayResult("refused", f"ingest answered {response.status_code}: {detail}"[:500])
