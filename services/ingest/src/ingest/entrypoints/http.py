"""Ingest's HTTP API: source systems post changes (native or Debezium); notify reads the
vault; outreach checks a postcode for an opt-out; operators inspect and replay rejections."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from ingest.adapters.store import (
    Approval,
    ParkedChange,
    Rejection,
    VaultAccess,
    VaultEntry,
    hash_key,
    key_holder,
)
from ingest.domain.debezium import envelopes_in
from ingest.domain.vault import decide_vault_access, display_name
from ingest.handlers import (
    CheckedChange,
    Outcome,
    Rejected,
    accept_changes,
    changes_from_cdc,
    check_changes,
    checked_changes,
    record_rejections,
)
from shared.inbound import SourceChange, SourceChangeBatch
from shared.outbox import OutboxEntry, current_traceparent
from shared.service import error_responses

router = APIRouter()
bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
SAMPLES = Path(__file__).resolve().parent / "examples"


def _source(request: Request, credentials: Credentials) -> str:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "Send your source's API key as a Bearer token."
        )
    holder = key_holder(request.app.state.engine, credentials.credentials)
    if holder is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "That API key is not known.")
    if holder.revoked:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "That API key was revoked; ask for a new one."
        )
    limiter = request.app.state.rate_limit
    key_hash = hash_key(credentials.credentials)
    if not limiter.allow(key_hash):
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "Too many requests for this API key; slow down and send larger batches.",
            headers={"Retry-After": str(limiter.retry_after_s(key_hash))},
        )
    return holder.source


def _service(request: Request, credentials: Credentials) -> str:
    expected = request.app.state.settings.service_token
    if credentials is None or not secrets.compare_digest(credentials.credentials, expected):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "A valid service token is required.")
    return "service"


SourceName = Annotated[str, Depends(_source)]
ServiceCaller = Annotated[str, Depends(_service)]

NATIVE_EXAMPLE = {
    "events": [
        {
            "source_event_id": "housing-2026-000123",
            "table": "housing.rent_accounts",
            "op": "upsert",
            "occurred_at": "2026-11-01T09:30:00Z",
            "record": {
                "tenancy_ref": "T0004411",
                "balance_pence": 84250,
                "weeks_in_arrears": 6.5,
                "last_payment_date": "2026-09-20",
                "nosp_served": True,
                "eviction_date": None,
            },
        }
    ]
}


async def _accept(
    request: Request, changes: list[SourceChange] | list[CheckedChange], source: str
) -> Outcome:
    """Accept checked changes in the request's trace, then wake the outbox relay."""
    outcome = await asyncio.to_thread(
        accept_changes,
        request.app.state.engine,
        changes,
        source=source,
        pseudonym_key=request.app.state.settings.pseudonym_key,
        traceparent=current_traceparent(),
        mapping=request.app.state.mapping,
    )
    request.app.state.relay.wake.set()
    return outcome


@router.post(
    "/v1/events",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(400, 401, 403, 413, 422, 429),
)
async def post_events(
    payload: Annotated[
        SourceChangeBatch | SourceChange,
        Body(openapi_examples={"batch": {"value": NATIVE_EXAMPLE}}),
    ],
    source: SourceName,
    request: Request,
) -> dict[str, int]:
    """Accept one native change, or a batch of up to 1,000 as `{"events": [...]}`.

    All or nothing: if any change is invalid, none is accepted, every problem is named,
    and each refusal is kept with its reason. Sending the same `source_event_id` again
    is harmless.
    """
    changes = payload.events if isinstance(payload, SourceChangeBatch) else [payload]
    mapping = request.app.state.mapping
    checked, problems = checked_changes(changes, mapping)
    engine = request.app.state.engine
    if problems:
        refused = [
            Rejected(
                "http", problem, changes[i].source_event_id, changes[i].model_dump(mode="json")
            )
            for i, problem in problems.items()
        ]
        await asyncio.to_thread(record_rejections, engine, source, refused)
        request.app.state.relay.wake.set()
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            {
                "message": f"{len(problems)} of {len(changes)} events are not valid; none was accepted.",
                "problems": list(problems.values()),
            },
        )
    outcome = await _accept(request, checked, source)
    return {
        "accepted": outcome.accepted,
        "duplicates": outcome.duplicates,
        "parked": outcome.parked,
    }


def _cdc_example() -> dict[str, Any]:
    path = SAMPLES / "rent_account_update.json"
    return json.loads(path.read_text()) if path.exists() else {}


@router.post(
    "/v1/cdc",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(400, 401, 403, 413, 429),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "description": "A Debezium change event (with or without the "
                        "schema/payload wrapper), or an array of them; null is a tombstone.",
                        "oneOf": [{"type": "object"}, {"type": "array"}, {"type": "null"}],
                    },
                    "examples": {"update": {"value": _cdc_example()}},
                }
            },
        }
    },
)
async def post_cdc(source: SourceName, request: Request) -> dict[str, int]:
    """Debezium Server's HTTP sink. Each record is taken or refused on its own: a refused
    record is kept with its reason (and can be replayed), so the sink is never stuck
    retrying one bad change. Redelivery is harmless (idempotent on table, key, log
    position and op)."""
    raw = await request.body()
    if not raw.strip():
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "Send a Debezium record, an array of them, or null."
        )
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"The body is not JSON: {error}"
        ) from error
    if body is not None and not isinstance(body, dict | list):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "Send a Debezium record (an object), an array of them, or null; not "
            f"{type(body).__name__}.",
        )
    mapping = request.app.state.mapping
    changes, rejected, tombstones = changes_from_cdc(envelopes_in(body), mapping, "cdc-http")
    engine = request.app.state.engine
    await asyncio.to_thread(record_rejections, engine, source, rejected)
    outcome = await _accept(request, changes, source)
    return {**outcome.as_dict(), "rejected": len(rejected), "ignored": tombstones}


@router.get("/v1/schema")
def schemas(request: Request) -> dict[str, Any]:
    """JSON Schemas of a native event, a batch, and the row of each mapped table."""
    mapping = request.app.state.mapping
    return {
        "event": SourceChange.model_json_schema(),
        "batch": SourceChangeBatch.model_json_schema(),
        "tables": {name: t.row_model.model_json_schema() for name, t in mapping.tables.items()},
    }


@router.get("/internal/v1/vault/{resident_key}", responses=error_responses(401, 403, 404, 422))
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


class PostcodeCheck(BaseModel):
    resident_key: str = Field(pattern=r"^r_[0-9a-f]{32}$")
    postcode: str = Field(min_length=2, max_length=16)


def _normalised_postcode(postcode: str) -> str:
    return re.sub(r"\s+", "", postcode).upper()


@router.post("/internal/v1/vault/verify-postcode", responses=error_responses(400, 401, 413, 422))
def verify_postcode(check: PostcodeCheck, _: ServiceCaller, request: Request) -> dict[str, bool]:
    """Does this postcode belong to this resident? Yes or no, and nothing else: outreach
    uses it to check an opt-out made with a letter reference and a postcode."""
    with Session(request.app.state.engine) as session:
        entry = session.get(VaultEntry, check.resident_key)
        match = bool(
            entry
            and entry.postcode
            and _normalised_postcode(entry.postcode) == _normalised_postcode(check.postcode)
        )
        session.add(
            VaultAccess(
                caller="service",
                resident_key=check.resident_key,
                task_id=None,
                purpose="postcode check for an opt-out",
                granted=match,
            )
        )
        session.commit()
    return {"match": match}


@router.get("/v1/rejections", responses=error_responses(401, 422))
def list_rejections(
    _: ServiceCaller, request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """Refused changes, newest first, with their reasons (what was sent is not shown here)."""
    with Session(request.app.state.engine) as session:
        rows = session.exec(select(Rejection).order_by(col(Rejection.id).desc()).limit(limit))
        return [r.model_dump(mode="json", exclude={"payload"}) for r in rows]


@router.post("/v1/rejections/{rejection_id}/replay", responses=error_responses(401, 404, 409, 422))
async def replay_rejection(rejection_id: int, _: ServiceCaller, request: Request) -> dict[str, Any]:
    """Try a refused change again (say, after the mapping was corrected)."""
    engine = request.app.state.engine
    mapping = request.app.state.mapping
    with Session(engine) as session:
        rejection = session.get(Rejection, rejection_id)
        if rejection is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"No rejection {rejection_id}.")
        if rejection.replayed_at is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, "That change was replayed already.")
        payload = json.loads(rejection.payload or "null")
        source, channel = rejection.source, rejection.channel
    problems: list[str]
    if channel == "http":
        try:
            changes = [SourceChange.model_validate(payload)]
        except ValueError as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
        problems = list(check_changes(changes, mapping).values())
    else:
        changes, still_rejected, _tombstones = changes_from_cdc([payload], mapping, channel)
        problems = [r.reason for r in still_rejected]
    if problems:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, {"problems": problems})
    outcome = await _accept(request, changes, source)
    with Session(engine) as session:
        rejection = session.get(Rejection, rejection_id)
        if rejection is not None:
            rejection.replayed_at = datetime.now(UTC)
            session.add(rejection)
            session.commit()
    return {"replayed": rejection_id, **outcome.as_dict()}


@router.get("/stats")
def stats(request: Request) -> dict[str, int]:
    """Exact counts from the database; the demo polls these to know when ingest is idle."""
    with Session(request.app.state.engine) as session:

        def count(query: Any) -> int:
            return int(session.exec(query).one())

        resident_events = OutboxEntry.topic == "resident.events.v1"
        return {
            "accepted": count(select(func.count()).where(resident_events)),
            "published": count(
                select(func.count()).where(
                    resident_events, col(OutboxEntry.published_at).is_not(None)
                )
            ),
            "outbox_pending": count(
                select(func.count()).where(col(OutboxEntry.published_at).is_(None))
            ),
            "rejected": count(select(func.count()).select_from(Rejection)),
            "parked": count(select(func.count()).select_from(ParkedChange)),
            "vault_lookups": count(select(func.count()).select_from(VaultAccess)),
        }
