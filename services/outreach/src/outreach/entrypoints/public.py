"""Residents' pages, with no sign-in: how we use their information, and opting out with
the reference on their letter and their postcode (checked by ingest's vault, since
outreach never holds postcodes)."""

from __future__ import annotations

import asyncio
import logging
import re

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from outreach import handlers
from outreach.adapters.vault import VaultUnavailable
from outreach.entrypoints.security import CsrfChecked
from outreach.entrypoints.templating import page_context
from shared.references import is_reference

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)
POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$")
# The same words whether the reference is unknown or the postcode does not match, so the
# form tells a stranger nothing about whose letter a reference was on.
NO_MATCH = "We could not match this reference and postcode. Check both are as on your letter."


def _render(request: Request, template: str, status_code: int = 200, **values: object) -> Response:
    return request.app.state.templates.TemplateResponse(
        request, template, page_context(request, **values), status_code=status_code
    )


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/how-we-use-your-information", status.HTTP_303_SEE_OTHER)


@router.get("/how-we-use-your-information", response_class=HTMLResponse)
def how_we_use_your_information(request: Request) -> Response:
    settings = request.app.state.settings
    return _render(
        request,
        "public/how.html",
        title="How we use your information",
        retention=request.app.state.policy.retention,
        transparency_url=settings.transparency_record_url,
    )


@router.get("/opt-out", response_class=HTMLResponse)
def opt_out_page(request: Request) -> Response:
    return _render(
        request, "public/optout.html", title="Ask us not to contact you", field_errors={}
    )


@router.post("/opt-out", dependencies=[CsrfChecked])
async def opt_out(request: Request) -> Response:
    form = await request.form()
    reference = re.sub(r"\s+", "", str(form.get("reference", ""))).upper()
    squashed = re.sub(r"\s+", "", str(form.get("postcode", ""))).upper()
    # The usual written form, outward and inward parts apart: "RM10 7BS".
    postcode = f"{squashed[:-3]} {squashed[-3:]}" if len(squashed) > 3 else squashed
    errors: dict[str, str] = {}
    if not is_reference(reference):
        errors["reference"] = "Enter the reference from your letter, like PS-ABCD2345"
    if not POSTCODE.match(postcode):
        errors["postcode"] = "Enter a real postcode, like RM10 7BS"

    def again(code: int, **extra: object) -> Response:
        return _render(
            request,
            "public/optout.html",
            status_code=code,
            title="Ask us not to contact you",
            reference=reference,
            postcode=postcode,
            field_errors=errors,
            errors=[{"text": t, "href": f"#{k}"} for k, t in errors.items()],
            **extra,
        )

    if errors:
        return again(status.HTTP_400_BAD_REQUEST)
    engine = request.app.state.engine
    task = await asyncio.to_thread(handlers.find_task_by_reference, engine, reference)
    try:
        matches = task is not None and await request.app.state.postcodes.matches(
            task.resident_key, postcode
        )
    except VaultUnavailable as error:
        log.warning("opt-out could not be checked: %s", error)
        return again(status.HTTP_503_SERVICE_UNAVAILABLE, unavailable=True)
    if not matches or task is None:
        errors["reference"] = NO_MATCH
        return again(status.HTTP_400_BAD_REQUEST)
    await asyncio.to_thread(handlers.opt_out, engine, task.resident_key, "opt-out form")
    request.app.state.relay.wake.set()
    return _render(
        request,
        "public/optout_done.html",
        title="We will not contact you again",
        reference=reference,
    )
