"""The ops view, for the `ops` and `admin` roles: each service's health, the pipeline's
throughput and lag, refused and dead-lettered events (with a replay for refused changes),
and recent traces with a waterfall. Nothing here is about a resident."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from outreach import handlers
from outreach.adapters.peers import Answer, Peers, ServiceReport
from outreach.adapters.queries import recent_dead_letters
from outreach.adapters.traces import TraceStore
from outreach.domain.ops import (
    PIPELINE,
    Health,
    counter_label,
    layout,
    milliseconds,
    parse_prometheus,
    throughput,
    trace_link,
)
from outreach.entrypoints import http
from outreach.entrypoints.fairness import current_alarms
from outreach.entrypoints.security import Caller, CsrfChecked, page_user
from outreach.entrypoints.templating import page_context
from shared.metrics import prometheus_text

router = APIRouter(prefix="/ops", include_in_schema=False)
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
RECENT_TRACES = 50
REPLAY_NOTICES = {
    "replayed": (
        "success",
        "Refused change {id} was replayed. The audit log records what ingest did.",
    ),
    "already": (None, "Refused change {id} had been replayed already, so nothing was done."),
    "refused": (
        None,
        "Ingest still refuses change {id}. Fix the cause (for example the source mapping) "
        "and replay it again; ingest's answer is in the audit log.",
    ),
    "missing": (None, "Ingest has no refused change {id}."),
    "unreachable": (
        None,
        "Ingest did not answer, so refused change {id} was not replayed. "
        "Try again when ingest shows as running.",
    ),
}


def _render(request: Request, template: str, **values: Any) -> Response:
    return request.app.state.templates.TemplateResponse(
        request, template, page_context(request, section="ops", **values)
    )


async def _own_report(request: Request) -> ServiceReport:
    """Outreach answers for itself in-process: it is the one serving this page."""
    readiness = request.app.state.readiness
    waiting = tuple(sorted(part for part, ready in readiness.parts.items() if not ready))
    if readiness.ready:
        health = Health("outreach", "this service", "running", "Alive and ready for work.")
    else:
        text = "Alive, but not ready yet" + (
            ": waiting for " + ", ".join(waiting) + "." if waiting else "."
        )
        health = Health("outreach", "this service", "starting", text, waiting)
    stats = await asyncio.to_thread(http.stats, request)
    # Off the event loop: rendering every series can take a while in a busy process, and
    # the peers' health checks run on this loop meanwhile with a 1.5 s connect timeout.
    body, _ = await asyncio.to_thread(prometheus_text)
    return ServiceReport(health, stats, parse_prometheus(body.decode()))


def _rejections(answer: Answer) -> list[dict[str, Any]] | None:
    if answer.status != 200 or not isinstance(answer.body, list):
        return None
    rows = []
    for item in answer.body:
        if not isinstance(item, dict) or not isinstance(item.get("id"), int):
            continue
        rows.append(
            {
                **item,
                "received_at": _datetime(item.get("received_at")),
                "replayed_at": _datetime(item.get("replayed_at")),
                "reason": str(item.get("reason") or "")[:400],
            }
        )
    return rows


def _drift_alarms(answer: Answer) -> list[str] | None:
    """One line per drift alarm from scoring's report; None when scoring did not answer."""
    if answer.status != 200 or not isinstance(answer.body, dict):
        return None
    return [
        f"{alarm.get('model')}: {alarm.get('measure')} has drifted from the training data "
        f"(PSI {float(alarm.get('psi', 0)):.2f})"
        for alarm in answer.body.get("alarms", [])
    ]


def _datetime(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


@router.get("", response_class=HTMLResponse)
async def ops_page(
    request: Request,
    _: Caller = page_user("ops:view"),
    replay: int | None = None,
    outcome: str | None = None,
) -> Response:
    peers: Peers = request.app.state.peers
    (reports, refused), own = await asyncio.gather(peers.overview(), _own_report(request))
    reports = {name: (own if name == "outreach" else reports[name]) for name in PIPELINE}
    dead_letters, dead_letter_count = await asyncio.to_thread(
        recent_dead_letters, request.app.state.engine
    )
    fairness, drift = await asyncio.gather(
        asyncio.to_thread(current_alarms, request.app.state.engine, request.app.state.policy),
        peers.drift(),
    )
    notice = REPLAY_NOTICES.get(outcome or "")
    return _render(
        request,
        "ops.html",
        title="Pipeline operations",
        reports=reports,
        figures=throughput({name: report.metrics for name, report in reports.items()}),
        rejections=_rejections(refused),
        dead_letters=dead_letters,
        dead_letter_count=dead_letter_count,
        fairness_alarms=fairness["texts"],
        drift_alarms=_drift_alarms(drift),
        notice={"type": notice[0], "text": notice[1].format(id=replay)} if notice else None,
        counter_label=counter_label,
        milliseconds=milliseconds,
    )


@router.post("/rejections/{rejection_id}/replay", dependencies=[CsrfChecked])
async def replay_rejection(
    rejection_id: int, request: Request, user: Caller = page_user("ops:replay")
) -> Response:
    result = await request.app.state.peers.replay(rejection_id)
    await asyncio.to_thread(
        handlers.record_ops_action,
        request.app.state.engine,
        "rejection_replayed" if result.outcome == "replayed" else "rejection_replay_failed",
        f"refused change {rejection_id} at ingest: {result.outcome} ({result.detail})",
        user.name,
    )
    return RedirectResponse(
        f"/ops?replay={rejection_id}&outcome={result.outcome}#refused",
        status.HTTP_303_SEE_OTHER,
    )


@router.get("/traces", response_class=HTMLResponse)
async def traces_page(
    request: Request, _: Caller = page_user("ops:view"), every: bool = False
) -> Response:
    store: TraceStore = request.app.state.traces
    recent = await asyncio.to_thread(lambda: store.recent(RECENT_TRACES, across_services=not every))
    viewer = request.app.state.settings.trace_viewer_url
    return _render(
        request,
        "ops_traces.html",
        title="Recent traces",
        traces=recent,
        every=every,
        window=store.window_description,
        viewer=viewer,
        link=lambda trace_id: trace_link(trace_id, viewer),
        milliseconds=milliseconds,
    )


@router.get("/traces/{trace_id}", response_class=HTMLResponse)
async def trace_page(
    trace_id: str, request: Request, _: Caller = page_user("ops:view"), detail: bool = False
) -> Response:
    trace_id = trace_id.lower().removeprefix("0x")
    if not TRACE_ID.match(trace_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "A trace ID is 32 hexadecimal characters.")
    store: TraceStore = request.app.state.traces
    waterfall = layout(await asyncio.to_thread(store.trace, trace_id), hide_detail=not detail)
    if waterfall is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"Trace {trace_id} is not among the recent spans read ({store.window_description}).",
        )
    viewer = request.app.state.settings.trace_viewer_url
    return _render(
        request,
        "ops_trace.html",
        title=f"Trace {trace_id[:8]}",
        waterfall=waterfall,
        detail=detail,
        viewer_link=trace_link(trace_id, viewer) if viewer else None,
        milliseconds=milliseconds,
    )
