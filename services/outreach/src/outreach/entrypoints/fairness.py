"""The fairness monitor for team leads and admins (a page and the JSON API), its alarms for
the ops view, and the model versions behind tasks. Only counts and rates: no resident."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Engine

from outreach.adapters.monitoring import fairness_cells, model_versions_in_use
from outreach.domain.fairness import MEASURE_LABELS, MEASURES, alarm_summary, fairness_report
from outreach.domain.policy import Policy
from outreach.entrypoints.security import Caller, api_caller, page_user
from outreach.entrypoints.templating import page_context
from shared.service import error_responses

router = APIRouter()
DIMENSION_LABELS = {
    "age_band": "Age band",
    "ward": "Ward",
    "sex": "Sex",
    "ethnicity": "Ethnic group",
}


def current_report(engine: Engine, policy: Policy) -> dict[str, Any]:
    """The fairness figures now, with the policy version and the model versions in use."""
    residents, tasks = fairness_cells(engine)
    report = fairness_report(residents, tasks, policy.fairness)
    report["policy_version"] = policy.version
    report["model_versions"] = model_versions_in_use(engine)
    return report


def current_alarms(engine: Engine, policy: Policy) -> dict[str, Any]:
    """What the ops view shows: the number of fairness alarms, a line each, the details."""
    alarms = current_report(engine, policy)["alarms"]
    return {**alarm_summary(alarms), "details": alarms}


def _report(request: Request) -> dict[str, Any]:
    return current_report(request.app.state.engine, request.app.state.policy)


@router.get("/officer/fairness", response_class=HTMLResponse, include_in_schema=False)
async def fairness_page(request: Request, user: Caller = page_user("fairness:view")) -> Response:
    report = await asyncio.to_thread(_report, request)
    return request.app.state.templates.TemplateResponse(
        request,
        "fairness.html",
        page_context(
            request,
            title="Fairness",
            report=report,
            measures=MEASURES,
            measure_labels=MEASURE_LABELS,
            dimension_labels=DIMENSION_LABELS,
        ),
    )


@router.get("/v1/fairness", tags=["fairness"], responses=error_responses(401, 403))
async def fairness(request: Request, _: Caller = api_caller("fairness:view")) -> dict[str, Any]:
    """Selection, approval, contact and support-offered rates by age band and ward, each
    with its ratio to the borough-wide rate, and the alarms the policy's thresholds raise."""
    return await asyncio.to_thread(_report, request)


@router.get("/v1/fairness/alarms", tags=["fairness"], responses=error_responses(401, 403))
async def fairness_alarms(
    request: Request, _: Caller = api_caller("fairness:alarms")
) -> dict[str, Any]:
    """Only the alarms, for the ops view: how many, one line each, and the details."""
    return await asyncio.to_thread(
        current_alarms, request.app.state.engine, request.app.state.policy
    )
