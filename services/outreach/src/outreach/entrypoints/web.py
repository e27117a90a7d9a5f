"""The officer service: server-rendered pages in the GOV.UK Design System. Every form
carries a CSRF token; every page needs a signed-in officer whose role allows it."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from outreach import handlers
from outreach.adapters.queries import TaskFilter, list_tasks, task_detail, team_summary
from outreach.adapters.users import authenticate
from outreach.domain.lifecycle import LABELS, OUTCOMES, TransitionNotAllowed
from outreach.domain.roles import allowed
from outreach.entrypoints.login_limits import LoginLimits, TooManyAttempts
from outreach.entrypoints.security import (
    Caller,
    CsrfChecked,
    client_address,
    current_session,
    end_session,
    page_user,
    public_base_url,
    start_session,
)
from outreach.entrypoints.templating import MODEL_NAMES, page_context

router = APIRouter(prefix="/officer", include_in_schema=False)
PAGE_SIZE = 25
RESIDENT_KEY = re.compile(r"^r_[0-9a-f]{32}$")
DONE = {
    "approved": "Task approved. The letter is being prepared.",
    "rejected": "Task rejected. The reason is in the timeline.",
    "contacted": "Contact recorded.",
    "outcome": "Outcome recorded.",
    "closed": "Task closed.",
    "note": "Note added.",
    "assigned": "Task assigned.",
}


def _render(request: Request, template: str, status_code: int = 200, **values: Any) -> Response:
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request, template, page_context(request, **values), status_code=status_code
    )


def safe_next(target: str | None) -> str:
    """Only send people on to one of our own officer or ops pages after signing in."""
    if target and (target.startswith(("/officer/", "/ops/")) or target == "/ops"):
        return target
    return "/officer/tasks"


def landing(target: str, role: str) -> str:
    """Ops staff see no tasks: the default page for them is the ops view."""
    if target == "/officer/tasks" and not allowed(role, "tasks:list"):
        return "/ops" if allowed(role, "ops:view") else target
    return target


def _login_page(request: Request, status_code: int = 200, **values: Any) -> Response:
    settings = request.app.state.settings
    values.setdefault("next", "/officer/tasks")
    values.setdefault("username", "")
    return _render(
        request,
        "login.html",
        status_code=status_code,
        title="Sign in",
        password_login=settings.password_login,
        oidc_sign_in=settings.oidc_sign_in,
        **values,
    )


def too_many_attempts(request: Request, wait: TooManyAttempts, **values: Any) -> Response:
    """429, saying when to try again (in words and in Retry-After)."""
    error = {"text": wait.message}
    if request.app.state.settings.password_login:
        error["href"] = "#username"
    response = _login_page(
        request, status_code=status.HTTP_429_TOO_MANY_REQUESTS, errors=[error], **values
    )
    response.headers["Retry-After"] = str(wait.retry_after_s)
    return response


EXPIRED = {
    "idle": "You were signed out because you had not used the service for {idle}. "
    "Sign in again to carry on.",
    "lifetime": "You were signed out because you signed in more than {hours} ago. "
    "Sign in again to carry on.",
}


def _expired_message(request: Request, reason: str | None) -> str | None:
    settings = request.app.state.settings
    if reason not in EXPIRED:
        return None
    idle, hours = settings.outreach_idle_minutes, settings.outreach_session_hours
    return EXPIRED[reason].format(
        idle="1 minute" if idle == 1 else f"{idle} minutes",
        hours="1 hour" if hours == 1 else f"{hours} hours",
    )


@router.get("", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/officer/tasks", status.HTTP_303_SEE_OTHER)


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request, next: str = "/officer/tasks", expired: str | None = None
) -> Response:
    return _login_page(request, next=safe_next(next), notice=_expired_message(request, expired))


@router.post("/login", dependencies=[CsrfChecked])
async def login(request: Request) -> Response:
    form = await request.form()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    limits: LoginLimits = request.app.state.login_limits
    address = client_address(request)
    if request.app.state.settings.password_login and username:
        wait = limits.password_refused(username, address)
        if wait:
            return too_many_attempts(request, wait, next=target, username=username)
    user = None
    if request.app.state.settings.password_login and username and password:
        user = await asyncio.to_thread(authenticate, request.app.state.engine, username, password)
    if user is None:
        if request.app.state.settings.password_login and username:
            limits.password_failed(username, address)
        return _login_page(
            request,
            status_code=status.HTTP_401_UNAUTHORIZED,
            next=target,
            username=username,
            errors=[{"text": "Enter a correct user name and password", "href": "#username"}],
        )
    limits.password_succeeded(username)
    response = RedirectResponse(landing(target, user.role), status.HTTP_303_SEE_OTHER)
    start_session(request, response, Caller(user.username, user.role, user.team), "password")
    return response


@router.post("/logout", dependencies=[CsrfChecked])
async def logout(request: Request) -> Response:
    """End the session here; after an OIDC sign-in, also at the identity provider."""
    session = current_session(request)
    provider = request.app.state.identity_provider
    target = None
    if session is not None and session.via == "oidc" and provider is not None:
        target = await provider.sign_out_url(public_base_url(request))
    response = RedirectResponse(target or "/officer/signed-out", status.HTTP_303_SEE_OTHER)
    end_session(response)
    return response


@router.get("/signed-out", response_class=HTMLResponse)
def signed_out(request: Request) -> Response:
    return _login_page(request, notice="You have signed out.")


@router.get("/tasks", response_class=HTMLResponse)
def tasks_page(
    request: Request,
    user: Caller = page_user("tasks:list"),
) -> Response:
    query = request.query_params
    due_before = _parse_date(query.get("due_before"))
    filters = TaskFilter(
        status=query.get("status") or None,
        team=query.get("team") or None,
        model=query.get("model") or None,
        due_before=due_before,
    )
    page_number = max(1, int(query.get("page", "1")) if query.get("page", "1").isdigit() else 1)
    page = list_tasks(request.app.state.engine, filters, (page_number - 1) * PAGE_SIZE, PAGE_SIZE)
    policy = request.app.state.policy
    teams = sorted({rule.team for rule in policy.rules})
    return _render(
        request,
        "tasks.html",
        title="Outreach tasks",
        page=page,
        filters=filters,
        status_choices=_choices(LABELS, filters.status),
        team_choices=_choices({t: t for t in teams}, filters.team),
        model_choices=_choices(MODEL_NAMES, filters.model),
        pagination=_pagination(request, page_number, page.total),
    )


def _parse_date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _choices(options: dict[str, str], selected: str | None) -> list[dict[str, Any]]:
    return [{"value": k, "text": v, "selected": k == selected} for k, v in options.items()]


def _pagination(request: Request, page: int, total: int) -> dict[str, Any] | None:
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    if pages <= 1:
        return None

    def link(number: int) -> str:
        params = {k: v for k, v in request.query_params.items() if k != "page" and v}
        return "/officer/tasks?" + urlencode({**params, "page": number})

    return {
        "previous": {"href": link(page - 1)} if page > 1 else None,
        "next": {"href": link(page + 1)} if page < pages else None,
        "items": [
            {"number": n, "href": link(n), "current": n == page} for n in range(1, pages + 1)
        ][:20],
    }


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(
    task_id: uuid.UUID,
    request: Request,
    user: Caller = page_user("tasks:view"),
    show_score: bool = False,
    done: str | None = None,
) -> Response:
    # Coming back from one of the task's own forms is the same visit, not a new opening.
    return await _task_page(
        request, task_id, user, show_score, DONE.get(done or ""), record=done not in DONE
    )


async def _task_page(
    request: Request,
    task_id: uuid.UUID,
    user: Caller,
    show_score: bool = False,
    flash: str | None = None,
    field_errors: dict[str, str] | None = None,
    record: bool = True,
) -> Response:
    engine = request.app.state.engine
    try:
        # A form sent back with a mistake is the same visit, not a new opening.
        if record and not field_errors:
            await asyncio.to_thread(handlers.record_view, engine, task_id, user.name)
    except handlers.TaskNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "There is no such task.") from error
    detail = task_detail(engine, task_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "There is no such task.")
    field_errors = field_errors or {}
    return _render(
        request,
        "task.html",
        status_code=status.HTTP_400_BAD_REQUEST if field_errors else 200,
        title=f"Task {str(task_id)[:8]}",
        detail=detail,
        probability=detail.task.priority if show_score else None,
        flash=flash,
        field_errors=field_errors,
        errors=[{"text": text, "href": f"#{key}"} for key, text in field_errors.items()],
    )


async def _act(
    request: Request,
    task_id: uuid.UUID,
    user: Caller,
    done: str,
    action: Callable[..., Any],
    *args: Any,
) -> Response:
    try:
        await asyncio.to_thread(action, request.app.state.engine, task_id, *args)
    except handlers.TaskNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "There is no such task.") from error
    except (handlers.TaskNotApprovable, TransitionNotAllowed) as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    request.app.state.relay.wake.set()
    return RedirectResponse(f"/officer/tasks/{task_id}?done={done}", status.HTTP_303_SEE_OTHER)


async def _field(request: Request, name: str) -> str:
    return str((await request.form()).get(name, "")).strip()


@router.post("/tasks/{task_id}/approve", dependencies=[CsrfChecked])
async def approve(
    task_id: uuid.UUID, request: Request, user: Caller = page_user("tasks:approve")
) -> Response:
    return await _act(
        request,
        task_id,
        user,
        "approved",
        lambda engine, tid: handlers.approve_task(engine, tid, user.name, request.app.state.policy),
    )


@router.post("/tasks/{task_id}/reject", dependencies=[CsrfChecked])
async def reject(
    task_id: uuid.UUID, request: Request, user: Caller = page_user("tasks:reject")
) -> Response:
    reason = await _field(request, "reason")
    if not reason:
        return await _task_page(
            request, task_id, user, field_errors={"reason": "Enter why we should not contact"}
        )
    return await _act(
        request,
        task_id,
        user,
        "rejected",
        handlers.reject_task,
        user.name,
        reason[:500],
        request.app.state.policy,
    )


@router.post("/tasks/{task_id}/contact", dependencies=[CsrfChecked])
async def contact(
    task_id: uuid.UUID, request: Request, user: Caller = page_user("tasks:contact")
) -> Response:
    note = await _field(request, "note")
    return await _act(
        request, task_id, user, "contacted", handlers.record_contact, user.name, note[:2000]
    )


@router.post("/tasks/{task_id}/outcome", dependencies=[CsrfChecked])
async def outcome(
    task_id: uuid.UUID, request: Request, user: Caller = page_user("tasks:outcome")
) -> Response:
    chosen = await _field(request, "outcome")
    if chosen not in OUTCOMES:
        return await _task_page(
            request, task_id, user, field_errors={"outcome": "Select what happened"}
        )
    note = await _field(request, "note")
    return await _act(
        request, task_id, user, "outcome", handlers.record_outcome, chosen, user.name, note[:2000]
    )


@router.post("/tasks/{task_id}/close", dependencies=[CsrfChecked])
async def close(
    task_id: uuid.UUID, request: Request, user: Caller = page_user("tasks:close")
) -> Response:
    reason = await _field(request, "reason")
    if not reason:
        return await _task_page(
            request, task_id, user, field_errors={"close": "Enter why you are closing the task"}
        )
    return await _act(
        request, task_id, user, "closed", handlers.close_task, user.name, reason[:500]
    )


@router.post("/tasks/{task_id}/notes", dependencies=[CsrfChecked])
async def note(
    task_id: uuid.UUID, request: Request, user: Caller = page_user("tasks:note")
) -> Response:
    text = await _field(request, "text")
    if not text:
        return await _task_page(request, task_id, user, field_errors={"note": "Enter a note"})
    return await _act(request, task_id, user, "note", handlers.add_note, user.name, text[:2000])


@router.post("/tasks/{task_id}/assign", dependencies=[CsrfChecked])
async def assign(
    task_id: uuid.UUID, request: Request, user: Caller = page_user("tasks:assign")
) -> Response:
    officer = await _field(request, "officer")
    if not officer:
        return await _task_page(
            request, task_id, user, field_errors={"assign-officer": "Enter a user name"}
        )
    return await _act(
        request, task_id, user, "assigned", handlers.assign_task, officer[:64], user.name
    )


@router.get("/team", response_class=HTMLResponse)
def team_page(request: Request, user: Caller = page_user("team:summary")) -> Response:
    figures = team_summary(request.app.state.engine, request.app.state.policy, datetime.now(UTC))
    return _render(request, "team.html", title="Teams", teams=figures)


@router.get("/residents/export", response_class=HTMLResponse)
async def export_page(
    request: Request,
    resident_key: str | None = None,
    user: Caller = page_user("residents:export"),
) -> Response:
    if not resident_key:
        return _render(request, "export.html", title="Subject access")
    resident_key = resident_key.strip()
    if not RESIDENT_KEY.match(resident_key):
        return _render(
            request,
            "export.html",
            status_code=status.HTTP_400_BAD_REQUEST,
            title="Subject access",
            resident_key=resident_key,
            errors=[{"text": "Enter a resident key that starts with r_", "href": "#resident_key"}],
        )
    export = await _export(request, resident_key, user)
    return _render(
        request, "export.html", title="Subject access", resident_key=resident_key, export=export
    )


@router.get("/residents/{resident_key}/export.json")
async def export_json(
    resident_key: str, request: Request, user: Caller = page_user("residents:export")
) -> Response:
    if not RESIDENT_KEY.match(resident_key):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "There is no such resident key.")
    export = await _export(request, resident_key, user)
    return JSONResponse(
        export,
        headers={"Content-Disposition": f'attachment; filename="{resident_key}.json"'},
    )


async def _export(request: Request, resident_key: str, user: Caller) -> dict[str, Any]:
    engine = request.app.state.engine
    await asyncio.to_thread(handlers.record_export, engine, resident_key, user.name)
    return await asyncio.to_thread(handlers.subject_access, engine, resident_key)
