"""notify's HTTP routes: health, readiness, counters, and the letters for staff tools."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from notify.adapters.channels import PdfLetterChannel
from notify.adapters.database import LETTER_RENDERED, LetterStore, LetterSummary
from shared.references import is_reference
from shared.service import error_responses

router = APIRouter()
_bearer = HTTPBearer(auto_error=False)


def get_store(request: Request) -> LetterStore:
    store: LetterStore = request.app.state.store
    return store


def require_service_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected: str = request.app.state.settings.service_token
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "This needs the service token: send 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not secrets.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "That service token is not the one notify was given.",
            headers={"WWW-Authenticate": "Bearer"},
        )


StoreDep = Annotated[LetterStore, Depends(get_store)]
ServiceToken = Depends(require_service_token)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    parts = request.app.state.readiness.parts
    ready = request.app.state.readiness.ready
    return JSONResponse(
        {"status": "ready" if ready else "starting", "parts": parts},
        status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
    )


@router.get("/stats")
def stats(store: StoreDep) -> dict[str, int]:
    return store.stats()


@router.get("/v1/letters", dependencies=[ServiceToken], responses=error_responses(401, 422))
def list_letters(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[LetterSummary]:
    return store.list_letters(limit=limit, offset=offset)


@router.get(
    "/v1/letters/{reference}.pdf",
    dependencies=[ServiceToken],
    response_class=FileResponse,
    responses={
        200: {"description": "The letter as a PDF", "content": {"application/pdf": {}}},
        **error_responses(401, 404, 422),
    },
)
def letter_pdf(reference: str, request: Request, store: StoreDep) -> FileResponse:
    if not is_reference(reference):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"'{reference}' is not a letter reference (they look like PS-ABCD2345).",
        )
    letter = store.letter_by_reference(reference)
    if letter is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No letter has the reference {reference}.")
    channel: PdfLetterChannel = request.app.state.pdf_channel
    path = channel.path_for(reference)
    if letter.status != LETTER_RENDERED or not path.exists():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"Letter {reference} has no PDF (its status is '{letter.status}').",
        )
    return FileResponse(path, media_type="application/pdf", filename=f"{reference}.pdf")
