"""The JSON API (documented at /docs): the same operations as the officer pages, for the
same roles, with a bearer token from /v1/token; the service token acts as a machine caller
that may list tasks and, in dev only, approve them as the simulated officer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, Field

from outreach import handlers
from outreach.adapters.queries import TaskFilter, list_tasks, task_detail, team_summary
from outreach.adapters.store import AuditEntry, TaskNote, TaskPublic
from outreach.adapters.users import authenticate
from outreach.domain.lifecycle import TransitionNotAllowed
from outreach.entrypoints.security import Caller, api_caller, client_address
from shared.service import error_responses

# Every route here needs a token (but /token, which gives one), and a role allowed to call it.
router = APIRouter(prefix="/v1", tags=["officer API"], responses=error_responses(401, 403))
# A body that is not JSON; a task that does not exist; for moves, one whose status does not
# allow this move.
ABOUT_A_TASK = error_responses(400, 404)
MOVES_A_TASK = error_responses(400, 404, 409)
# Some text that is not only spaces.
SOME_TEXT = r"\S"
T = TypeVar("T")
RESIDENT_KEY = r"^r_[0-9a-f]{32}$"


async def _run(request: Request, action: Callable[..., T], *args: Any) -> T:
    """Run a handler off the event loop, turning its refusals into HTTP answers."""
    try:
        result = await asyncio.to_thread(action, request.app.state.engine, *args)
    except handlers.TaskNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
    except (handlers.TaskNotApprovable, TransitionNotAllowed) as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    except ValueError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(error)) from error
    request.app.state.relay.wake.set()
    return result


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    role: str


@router.post(
    "/token",
    response_model=Token,
    responses={
        **error_responses(400, 404),
        429: {"description": "Too many failed sign-ins: wait, then try again"},
    },
)
async def token(
    request: Request,
    username: Annotated[str, Form(min_length=1, max_length=200)],
    password: Annotated[str, Form(min_length=1, max_length=1000)],
) -> Token:
    """Exchange a development user's name and password for a bearer token (dev only;
    production signs in through the council's identity provider)."""
    if not request.app.state.settings.password_login:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Password sign-in is off here.")
    # The same limits on guessing as the sign-in page.
    limits = request.app.state.login_limits
    wait = limits.password_refused(username, client_address(request))
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            wait.message,
            headers={"Retry-After": str(wait.retry_after_s)},
        )
    user = await asyncio.to_thread(authenticate, request.app.state.engine, username, password)
    if user is None:
        limits.password_failed(username, client_address(request))
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Wrong name or password.")
    limits.password_succeeded(username)
    caller = Caller(name=user.username, role=user.role, team=user.team)
    return Token(access_token=request.app.state.signer.api_token(caller), role=user.role)


@router.get("/tasks", response_model=list[TaskPublic])
def tasks(
    request: Request,
    response: Response,
    _: Caller = api_caller("tasks:list"),
    task_status: Annotated[str | None, Query(alias="status")] = None,
    team: str | None = None,
    model: str | None = None,
    due_before: date | None = None,
    assigned_to: str | None = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Any]:
    """The task queue, filtered; paginated by `offset` and `limit`. The total is in the
    `X-Total-Count` header, and the next page's address in `Link`."""
    page = list_tasks(
        request.app.state.engine,
        TaskFilter(task_status, team, model, due_before, assigned_to),
        offset,
        limit,
    )
    response.headers["X-Total-Count"] = str(page.total)
    if offset + limit < page.total:
        following = request.url.include_query_params(offset=offset + limit, limit=limit)
        response.headers["Link"] = f'<{following}>; rel="next"'
    return list(page.tasks)


class TaskView(BaseModel):
    task: TaskPublic
    notes: list[TaskNote]
    timeline: list[AuditEntry]
    probability: float | None = Field(
        None, description="The highest model probability; only when asked for (show_score)"
    )


@router.get("/tasks/{task_id}", response_model=TaskView, responses=ABOUT_A_TASK)
async def task(
    task_id: uuid.UUID,
    request: Request,
    caller: Caller = api_caller("tasks:view"),
    show_score: bool = False,
) -> TaskView:
    """One task with its notes and timeline. Opening it is recorded in the audit log."""
    await _run(request, handlers.record_view, task_id, caller.name)
    detail = task_detail(request.app.state.engine, task_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No task {task_id}.")
    return TaskView(
        task=TaskPublic.model_validate(detail.task, from_attributes=True),
        notes=detail.notes,
        timeline=detail.timeline,
        probability=detail.task.priority if show_score else None,
    )


class Approval(BaseModel):
    officer: str | None = Field(
        None, max_length=64, description="Ignored for officers (their own name is recorded)"
    )


@router.post("/tasks/{task_id}/approve", response_model=TaskPublic, responses=MOVES_A_TASK)
async def approve(
    task_id: uuid.UUID,
    request: Request,
    approval: Approval | None = None,
    caller: Caller = api_caller("tasks:approve"),
) -> Any:
    """Approve a proposed task after review; only approved tasks lead to a letter."""
    actor = caller.name
    if caller.role == "service":
        if not request.app.state.settings.is_dev:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "Only people approve tasks outside development."
            )
        actor = handlers.SIMULATED_OFFICER
    return await _run(request, handlers.approve_task, task_id, actor, request.app.state.policy)


class WithReason(BaseModel):
    reason: str = Field(min_length=1, max_length=500, pattern=SOME_TEXT)


@router.post("/tasks/{task_id}/reject", response_model=TaskPublic, responses=MOVES_A_TASK)
async def reject(
    task_id: uuid.UUID,
    body: WithReason,
    request: Request,
    caller: Caller = api_caller("tasks:reject"),
) -> Any:
    return await _run(
        request, handlers.reject_task, task_id, caller.name, body.reason, request.app.state.policy
    )


class Assignment(BaseModel):
    officer: str = Field(min_length=1, max_length=64)


@router.post("/tasks/{task_id}/assign", response_model=TaskPublic, responses=ABOUT_A_TASK)
async def assign(
    task_id: uuid.UUID,
    body: Assignment,
    request: Request,
    caller: Caller = api_caller("tasks:assign"),
) -> Any:
    return await _run(request, handlers.assign_task, task_id, body.officer, caller.name)


class Note(BaseModel):
    text: str = Field("", max_length=2000)


class NewNote(BaseModel):
    text: str = Field(min_length=1, max_length=2000, pattern=SOME_TEXT)


@router.post("/tasks/{task_id}/contact", response_model=TaskPublic, responses=MOVES_A_TASK)
async def contact(
    task_id: uuid.UUID,
    body: Note,
    request: Request,
    caller: Caller = api_caller("tasks:contact"),
) -> Any:
    """Record that the officer spoke to the resident."""
    return await _run(request, handlers.record_contact, task_id, caller.name, body.text)


class Outcome(BaseModel):
    outcome: Literal["support_offered", "declined", "no_response"]
    note: str = Field("", max_length=2000)


@router.post("/tasks/{task_id}/outcome", response_model=TaskPublic, responses=MOVES_A_TASK)
async def outcome(
    task_id: uuid.UUID,
    body: Outcome,
    request: Request,
    caller: Caller = api_caller("tasks:outcome"),
) -> Any:
    return await _run(
        request, handlers.record_outcome, task_id, body.outcome, caller.name, body.note
    )


@router.post("/tasks/{task_id}/close", response_model=TaskPublic, responses=MOVES_A_TASK)
async def close(
    task_id: uuid.UUID,
    body: WithReason,
    request: Request,
    caller: Caller = api_caller("tasks:close"),
) -> Any:
    return await _run(request, handlers.close_task, task_id, caller.name, body.reason)


@router.post("/tasks/{task_id}/notes", response_model=TaskPublic, responses=ABOUT_A_TASK)
async def note(
    task_id: uuid.UUID,
    body: NewNote,
    request: Request,
    caller: Caller = api_caller("tasks:note"),
) -> Any:
    return await _run(request, handlers.add_note, task_id, caller.name, body.text)


@router.get("/teams")
def teams(request: Request, _: Caller = api_caller("team:summary")) -> list[dict[str, Any]]:
    """Each team's capacity this week, its queue, throughput and outcome rates."""
    return [
        figures.as_dict()
        for figures in team_summary(
            request.app.state.engine, request.app.state.policy, datetime.now(UTC)
        )
    ]


@router.get("/residents/{resident_key}/export")
async def export(
    request: Request,
    resident_key: Annotated[str, Path(pattern=RESIDENT_KEY)],
    caller: Caller = api_caller("residents:export"),
) -> dict[str, Any]:
    """A subject-access export: every task, reason, letter reference, note, flag and audit
    entry outreach holds about the resident. Producing it is itself audited."""
    await _run(request, handlers.record_export, resident_key, caller.name)
    return await _run(request, handlers.subject_access, resident_key)


class Flag(BaseModel):
    flag: str = Field(min_length=1, max_length=64, pattern=r"^[a-z_]+$")
    source: str = Field(min_length=1, max_length=64)


@router.post(
    "/residents/{resident_key}/flags",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400),
)
async def flag(
    resident_key: Annotated[str, Path(pattern=RESIDENT_KEY)],
    body: Flag,
    request: Request,
    caller: Caller = api_caller("residents:flag"),
) -> dict[str, bool]:
    """Set a flag on a resident by hand (e.g. `deceased`, `open_case` that the source
    systems do not know yet); an excluding flag closes the resident's open tasks. It is
    kept apart from the flags the source systems send (resident.flags.v1): they never
    clear it, and clearing it leaves theirs as they are."""
    new = await _run(request, handlers.set_flag, resident_key, body.flag, body.source, caller.name)
    return {"new": new}


@router.delete(
    "/residents/{resident_key}/flags/{flag}",
    responses={409: {"description": "An opt-out, which only the resident can change"}},
)
async def clear_flag(
    resident_key: Annotated[str, Path(pattern=RESIDENT_KEY)],
    flag: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z_]+$")],
    request: Request,
    caller: Caller = api_caller("residents:flag"),
) -> dict[str, bool]:
    """Clear a flag set by hand; `cleared` says whether there was one. What the source
    systems say is theirs to clear, and an opt-out is the resident's."""
    try:
        cleared = await asyncio.to_thread(
            handlers.clear_flag, request.app.state.engine, resident_key, flag, caller.name
        )
    except handlers.FlagNotClearable as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    return {"cleared": cleared}


@router.post("/retention/run")
async def retention(request: Request, _: Caller = api_caller("retention:run")) -> dict[str, int]:
    """Run the housekeeping job now: release held tasks and purge what is past retention."""
    released = await _run(request, handlers.release_held, request.app.state.policy)
    purged = await _run(request, handlers.purge, request.app.state.policy)
    return {"released": released, **purged}
