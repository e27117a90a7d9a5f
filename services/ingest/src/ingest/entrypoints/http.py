"""Ingest's HTTP API: source systems post changes; notify reads the vault; ops read stats."""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import func
from sqlmodel import Session, col, select

from ingest.adapters.store import (
    Approval,
    ParkedChange,
    Rejection,
    VaultAccess,
    VaultEntry,
    source_for_key,
)
from ingest.domain.vault import decide_vault_access, display_name
from ingest.handlers import accept_changes, check_changes, record_rejections
from shared.inbound import SourceChange, SourceChangeBatch
from shared.outbox import OutboxEntry, current_traceparent

router = APIRouter()
bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _source(request: Request, credentials: Credentials) -> str:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "Send your source's API key as a Bearer token."
        )
    source = source_for_key(request.app.state.engine, credentials.credentials)
    if source is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "That API key is not known or was revoked."
        )
    return source


def _service(request: Request, credentials: Credentials) -> str:
    expected = request.app.state.settings.service_token
    if credentials is None or not secrets.compare_digest(credentials.credentials, expected):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "A valid service token is required.")
    return "service"


SourceName = Annotated[str, Depends(_source)]
ServiceCaller = Annotated[str, Depends(_service)]


@router.post("/v1/events", status_code=status.HTTP_202_ACCEPTED)
async def post_events(
    payload: SourceChangeBatch | SourceChange, source: SourceName, request: Request
) -> dict[str, Any]:
    """Accept one native change, or a batch of up to 1,000 as `{"events": [...]}`.

    All or nothing: if any change is invalid, none is accepted, every problem is listed
    and kept with its reason. Sending the same `source_event_id` again is harmless.
    """
    changes = payload.events if isinstance(payload, SourceChangeBatch) else [payload]
    problems = check_changes(changes)
    engine = request.app.state.engine
    if problems:
        await asyncio.to_thread(
            record_rejections,
            engine,
            source,
            "http",
            [(c.source_event_id, p) for c, p in zip(changes, problems, strict=False)],
        )
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            {
                "message": f"{len(problems)} of {len(changes)} events are not valid; none was accepted.",
                "problems": problems,
            },
        )
    traceparent = current_traceparent()
    outcome = await asyncio.to_thread(
        accept_changes,
        engine,
        changes,
        source=source,
        pseudonym_key=request.app.state.settings.pseudonym_key,
        traceparent=traceparent,
    )
    request.app.state.relay.wake.set()
    return {
        "accepted": outcome.accepted,
        "duplicates": outcome.duplicates,
        "parked": outcome.parked,
    }


@router.get("/internal/v1/vault/{resident_key}")
def read_vault(
    resident_key: str,
    request: Request,
    credentials: Credentials,
    task_id: Annotated[str | None, Query(description="The approved task this is for")] = None,
) -> dict[str, Any]:
    """A resident's name and address, for a letter about a task an officer approved."""
    settings = request.app.state.settings
    token_valid = credentials is not None and secrets.compare_digest(
        credentials.credentials, settings.service_token
    )
    with Session(request.app.state.engine) as session:
        approved = {
            a.task_id
            for a in session.exec(select(Approval).where(Approval.resident_key == resident_key))
        }
        entry = session.get(VaultEntry, resident_key)
        decision = decide_vault_access(
            token_valid=token_valid,
            task_id=task_id,
            approved_task_ids=approved,
            known=entry is not None,
        )
        session.add(
            VaultAccess(
                caller="service" if token_valid else "unauthenticated",
                resident_key=resident_key,
                task_id=task_id,
                purpose=f"letter for task {task_id}" if task_id else "no task given",
                granted=decision.granted,
            )
        )
        session.commit()
        if not decision.granted or entry is None:
            raise HTTPException(decision.status_code, decision.reason)
        lines = [entry.address_line_1, entry.address_line_2, entry.address_line_3, entry.town]
        return {
            "display_name": display_name(entry.given_name, entry.family_name),
            "address_lines": [line for line in lines if line],
            "postcode": entry.postcode or "",
            "preferred_language": entry.preferred_language,
        }


@router.get("/v1/rejections")
def list_rejections(_: ServiceCaller, request: Request, limit: int = 100) -> list[dict[str, Any]]:
    with Session(request.app.state.engine) as session:
        rows = session.exec(select(Rejection).order_by(col(Rejection.id).desc()).limit(limit))
        return [r.model_dump(mode="json") for r in rows]


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
    """Exact counts from the database; the demo polls these to know when ingest is idle."""
    with Session(request.app.state.engine) as session:

        def count(query: Any) -> int:
            return int(session.exec(query).one())

        return {
            "accepted": count(select(func.count()).select_from(OutboxEntry)),
            "published": count(
                select(func.count()).where(col(OutboxEntry.published_at).is_not(None))
            ),
            "rejected": count(select(func.count()).select_from(Rejection)),
            "parked": count(select(func.count()).select_from(ParkedChange)),
            "vault_lookups": count(select(func.count()).select_from(VaultAccess)),
        }
