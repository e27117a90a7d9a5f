"""Jinja with the GOV.UK Frontend macros (govuk-frontend-jinja) and outreach's templates."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    PrefixLoader,
    select_autoescape,
)
from markupsafe import Markup

from outreach.domain.lifecycle import LABELS
from outreach.entrypoints.security import csrf_token

PACKAGE = Path(__file__).resolve().parent.parent
STATIC = PACKAGE / "static"
GOVUK_ASSETS = STATIC / "govuk"

MODEL_NAMES = {
    "falls": "Falls prevention",
    "homelessness": "Homelessness prevention",
    "frailty": "Frailty",
}
# Where a reason's data came from, by the schema of its source table.
SOURCE_SYSTEMS = {
    "housing": "Council housing records",
    "benefits": "Housing Benefit and Council Tax Support",
    "revenues": "Council Tax records",
    "social_care": "Adult social care records",
    "health": "Partner health services",
    "people": "The council's record of residents",
}
STATUS_COLOURS = {
    "held_for_capacity": "grey",
    "proposed": "blue",
    "approved": "turquoise",
    "letter_sent": "purple",
    "contacted": "yellow",
    "support_offered": "green",
    "declined": "orange",
    "no_response": "pink",
    "rejected": "red",
    "closed": "grey",
}


def source_system(source_table: str) -> str:
    schema = source_table.split(".")[0]
    return SOURCE_SYSTEMS.get(schema, schema.replace("_", " ").capitalize())


def when(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%-d %B %Y, %H:%M")
    return value.strftime("%-d %B %Y")


def code(text: object) -> Markup:
    """A topic, group or address set in monospace, escaped, ready for a table's "html"."""
    return Markup('<span class="app-code">{}</span>').format(text)


def make_templates() -> Jinja2Templates:
    env = Environment(
        loader=ChoiceLoader(
            [
                FileSystemLoader(PACKAGE / "templates"),
                PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
            ]
        ),
        autoescape=select_autoescape(["html"]),
    )
    env.filters.update(
        status_label=lambda s: LABELS.get(s, s),
        status_colour=lambda s: STATUS_COLOURS.get(s, "grey"),
        model_name=lambda m: MODEL_NAMES.get(m, m),
        source_system=source_system,
        when=when,
        code=code,
    )
    env.globals["model_names"] = MODEL_NAMES
    env.globals["status_labels"] = LABELS
    return Jinja2Templates(env=env)


def page_context(request: Request, **values: Any) -> dict[str, Any]:
    """What every page needs: its request, a CSRF token for forms, the CSP nonce, and
    whether the GOV.UK Frontend files are installed (the pages work unstyled without)."""
    from outreach.entrypoints.security import session_caller

    return {
        "request": request,
        "csrf_token": csrf_token(request),
        "cspNonce": getattr(request.state, "csp_nonce", None),
        "govuk_assets": (GOVUK_ASSETS / "govuk-frontend.min.css").exists(),
        "user": session_caller(request),
        "council_name": request.app.state.settings.council_name,
        **values,
    }
