"""The residents' page for the algorithmic transparency record: the latest record made by
`proactive transparency`, read from a file (PROACTIVE_TRANSPARENCY_RECORD_PATH; in the
repository, docs/transparency/record.html) each time, so a new record shows at once."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from markupsafe import Markup
from pydantic import Field

from outreach.entrypoints.templating import page_context
from shared.settings import CommonSettings

router = APIRouter(include_in_schema=False)
# services/outreach/src/outreach/entrypoints/ → the repository root, where the command
# writes the record. An installed service is given the path instead.
REPOSITORY_RECORD = Path(__file__).resolve().parents[5] / "docs" / "transparency" / "record.html"
# The command writes the record's body between these markers; the page shows only that
# part, inside the service's own layout (the file around it is for publishing elsewhere).
START, END = "<!-- record:start -->", "<!-- record:end -->"


class TransparencySettings(CommonSettings):
    transparency_record_path: Path = Field(
        REPOSITORY_RECORD,
        description="The HTML record `proactive transparency` writes; its JSON sits beside it",
    )


def record_body(path: Path) -> str | None:
    """The record's body, or None when no record has been published at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        return None
    return text[start + len(START) : end]


def _settings(request: Request) -> TransparencySettings:
    found = getattr(request.app.state, "transparency_settings", None)
    if found is None:
        found = request.app.state.transparency_settings = TransparencySettings()
    return found


@router.get("/transparency", response_class=HTMLResponse)
def transparency(request: Request) -> Response:
    path = _settings(request).transparency_record_path
    body = record_body(path)
    return request.app.state.templates.TemplateResponse(
        request,
        "public/transparency.html",
        page_context(
            request,
            title="Algorithmic transparency record",
            # Written by our own command, which escapes every value it takes from files.
            record=Markup(body) if body is not None else None,
            has_json=path.with_suffix(".json").is_file(),
        ),
        status_code=200 if body is not None else 404,
    )


@router.get("/transparency.json")
def transparency_json(request: Request) -> Response:
    path = _settings(request).transparency_record_path.with_suffix(".json")
    if not path.is_file():
        return Response("No transparency record has been published yet.", status_code=404)
    return FileResponse(path, media_type="application/json")
