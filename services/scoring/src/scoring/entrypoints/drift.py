"""The worker's drift check: once a day (and on request) the population stability index of
every feature and model score over the residents this worker holds, at `/drift`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from faust.web import Request, Response, View

from scoring.handlers import ScoringService
from scoring.monitoring import drift_report

log = logging.getLogger(__name__)
DAY_S = 86_400.0


def register_drift(app: faust.App, service: ScoringService, every_s: float = DAY_S) -> None:
    latest: dict[str, Any] = {}

    async def measure() -> dict[str, Any]:
        # Reading the table is allowed outside stream iteration; only writes are not.
        states = [value for _, value in list(service.table.items())]
        report = await asyncio.to_thread(drift_report, states, service.models)
        latest.clear()
        latest.update(report)
        for alarm in report["alarms"]:
            log.warning(
                "drift alarm: %(model)s %(measure)s PSI %(psi).3f over %(residents)d residents",
                alarm,
            )
        return report

    @app.timer(interval=every_s, on_leader=False)
    async def daily_drift_check() -> None:
        await measure()

    @app.page("/drift")
    async def drift(view: View, request: Request) -> Response:
        """The latest drift report (`?refresh=1` measures now). Only shares and indices:
        no resident is named or counted individually."""
        if not latest or request.query.get("refresh"):
            await measure()
        return view.json(latest)
