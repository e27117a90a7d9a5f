"""Outreach's HTTP API: the task list, an officer's approval, health and counts."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from outreach.adapters.store import AuditEntry, DeadLetter, Task, TaskPublic
from outreach.handlers import TaskNotApprovable, TaskNotFound, approve_task
from shared.outbox import OutboxEntry

router = APIRouter()
bearer = HTTPBearer(auto_error=False)


def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    expected = request.app.state.settings.service_token
    if credentials is None or not secrets.compare_digest(credentials.credentials, expected):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "A valid token is required.")
    return "service"


Caller = Annotated[str, Depends(_caller)]


class Approval(BaseModel):
    officer: str = Field(min_length=1, max_length=64, description="Who reviewed the task")


@router.get("/v1/tasks", response_model=list[TaskPublic])
def list_tasks(
    _: Caller,
    request: Request,
    task_status: Annotated[str | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Task]:
    with Session(request.app.state.engine) as session:
        query = select(Task).order_by(col(Task.created_at).desc()).limit(limit)
        if task_status:
            query = query.where(Task.status == task_status)
        return list(session.exec(query).all())


@router.post("/v1/tasks/{task_id}/approve", response_model=TaskPublic)
async def approve(task_id: uuid.UUID, approval: Approval, _: Caller, request: Request) -> Task:
    """Approve a proposed task after review; only approved tasks lead to a letter."""
    try:
        task = await asyncio.to_thread(
            approve_task,
            request.app.state.engine,
            task_id,
            approval.officer,
            request.app.state.policy,
        )
    except TaskNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
    except TaskNotApprovable as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    request.app.state.relay.wake.set()
    return task


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> dict[str, Any]:
    readiness = request.app.state.readiness
    if not readiness.ready:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, {"parts": readiness.parts})
    return {"status": "ready", "parts": readiness.parts}


@router.get("/stats")
def stats(request: Request) -> dict[str, int]:
    """Exact counts from the database; the demo polls these to know when outreach is idle."""
    with Session(request.app.state.engine) as session:

        def count(query: Any) -> int:
            return int(session.exec(query).one())

        counts = {
            "scores_seen": request.app.state.counters["scores_seen"],
            "tasks_created": count(select(func.count()).select_from(Task)),
            "tasks_approved": count(
                select(func.count()).where(col(Task.status).in_(["approved", "letter_sent"]))
            ),
            "letters_sent": count(select(func.count()).where(Task.status == "letter_sent")),
            "audit_entries": count(select(func.count()).select_from(AuditEntry)),
            "dead_letters": count(select(func.count()).select_from(DeadLetter)),
            "outbox_pending": count(
                select(func.count()).where(col(OutboxEntry.published_at).is_(None))
            ),
        }
        return counts
