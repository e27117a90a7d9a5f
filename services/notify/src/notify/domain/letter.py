"""What the letter says: built from an approved task, the council's details and a template.

The wording lives in `notify/templates/letter.txt.j2` and the council's details in
`notify/templates/council.yaml`, so they can be changed without touching code. The
template writes a very small markup that this module turns into blocks:

    # Title            ## Heading           - bullet            [ ] tick box
    ::: box Title  ... :::                  ::: slip Title ... :::
    blank lines separate paragraphs; lines in between are joined.

The task's reasons decide which offers we describe and which council records we name,
but the letter never shows a model, a probability, a band or a reason's own text: residents
asked to be asked how they are, not told their risk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field

from shared.events import TaskChanged

BlockKind = Literal["title", "heading", "paragraph", "bullet", "tickbox", "box", "slip"]

# Words and figures a resident must never read in this letter: they turn an offer into a
# verdict ("you are at risk") or a number about them, which residents told us scares people off.
_UNKIND = re.compile(
    r"\b(risk\w*|probabilit\w*|likelihood|scor(e|es|ed|ing)|percent\w*|predict\w*|vulnerab\w*"
    r"|frail\w*|homeless\w*|arrears|debts?|model|algorithm\w*)\b"
    r"|\d+(\.\d+)?\s*%",
    re.IGNORECASE,
)


class Hub(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    address_lines: list[str]
    hours: list[str]


class Team(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    phone: str | None = None


class RecordNames(BaseModel):
    """Plain names for the council records behind a reason, by table or by schema."""

    model_config = ConfigDict(frozen=True)

    tables: dict[str, str] = Field(default_factory=dict)
    schemas: dict[str, str] = Field(default_factory=dict)
    default: str = "other records the council holds about your home"


class CouncilDetails(BaseModel):
    """Everything about the council the letter prints: read from council.yaml."""

    model_config = ConfigDict(frozen=True)

    council_name: str
    service_name: str
    signatory: str
    signatory_role: str
    return_address: list[str]
    phone: str
    phone_hours: str
    textphone: str | None = None
    web_form: str
    email: str | None = None
    hub: Hub
    transparency_url: str
    privacy_url: str
    retention: str
    never_used: list[str]
    default_contact_days: int = 14
    default_team: Team
    teams: dict[str, Team] = Field(default_factory=dict)
    language_names: dict[str, str] = Field(default_factory=dict)
    offers: dict[str, list[str]]
    records: RecordNames = Field(default_factory=RecordNames)

    def team(self, code: str) -> Team:
        # An unknown code falls back to our own team rather than printing an internal name.
        return self.teams.get(code, self.default_team)

    def language_name(self, code: str | None) -> str | None:
        """The language to offer the letter in, when the resident's preference is not English."""
        if not code or code.lower().startswith("en"):
            return None
        return self.language_names.get(code.lower().split("-")[0])


@dataclass(frozen=True)
class Contact:
    """A resident's name and address, from ingest's vault: held in memory only.

    `repr=False` keeps the details out of logs and tracebacks by accident.
    """

    display_name: str = field(repr=False)
    address_lines: tuple[str, ...] = field(repr=False)
    postcode: str = field(repr=False)
    preferred_language: str | None = None

    def recipient_lines(self, most: int = 7) -> tuple[str, ...]:
        """Name, address and postcode in at most `most` lines (GOV.UK Notify allows 7)."""
        lines = [line.strip() for line in self.address_lines if line.strip()]
        room = most - 2
        if len(lines) > room:
            lines = [*lines[: room - 1], ", ".join(lines[room - 1 :])]
        return (self.display_name.strip(), *lines, self.postcode.strip().upper())


@dataclass(frozen=True)
class Block:
    kind: BlockKind
    text: str = ""
    children: tuple[Block, ...] = ()


@dataclass(frozen=True)
class Letter:
    reference: str
    dated: date
    council: CouncilDetails
    recipient_lines: tuple[str, ...] = field(repr=False)
    salutation_name: str = field(repr=False)
    blocks: tuple[Block, ...] = field(repr=False)
    # The values the wording was built from, for a GOV.UK Notify letter template's placeholders.
    fields: dict[str, str | list[str]] = field(default_factory=dict, repr=False)

    def body_text(self) -> str:
        """The wording a resident reads as the letter itself (not the address or reply slip)."""
        return _plain_text(block for block in self.blocks if block.kind != "slip")

    def full_text(self) -> str:
        return _plain_text(self.blocks)


def _plain_text(blocks: Iterable[Block]) -> str:
    parts: list[str] = []
    for block in blocks:
        if block.kind in ("box", "slip"):
            parts.append(block.text)
            parts.append(_plain_text(block.children))
        elif block.kind in ("title", "heading"):
            parts.append(block.text.rstrip(".") + ".")  # a heading is a short sentence of its own
        else:
            parts.append(block.text)
    return "\n\n".join(part for part in parts if part)


def long_date(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def join_words(items: list[str]) -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def offers_for(task: TaskChanged, council: CouncilDetails) -> list[str]:
    offers: list[str] = []
    for model in task.models:
        for offer in council.offers.get(model, []):
            if offer not in offers:
                offers.append(offer)
    return offers


def record_names_for(task: TaskChanged, council: CouncilDetails) -> list[str]:
    names: list[str] = []
    for reason in task.reasons:
        schema = reason.source_table.split(".", 1)[0]
        name = (
            council.records.tables.get(reason.source_table)
            or council.records.schemas.get(schema)
            or council.records.default
        )
        if name not in names:
            names.append(name)
    return names or [council.records.default]


def build_letter(
    task: TaskChanged,
    contact: Contact,
    council: CouncilDetails,
    template: jinja2.Template,
    reference: str,
    today: date,
) -> Letter:
    team = council.team(task.team)
    contact_by = task.due_by or today + timedelta(days=council.default_contact_days)
    offers = offers_for(task, council)
    records = record_names_for(task, council)
    other_language = council.language_name(contact.preferred_language)
    wording = template.render(
        name=contact.display_name,
        council=council,
        team=team,
        reference=reference,
        offers=offers,
        records=records,
        contact_by=long_date(contact_by),
        other_language=other_language,
        join_words=join_words,
    )
    return Letter(
        reference=reference,
        dated=today,
        council=council,
        recipient_lines=contact.recipient_lines(),
        salutation_name=contact.display_name,
        blocks=parse_blocks(wording),
        fields={
            "name": contact.display_name,
            "reference": reference,
            "team": team.name,
            "team_phone": team.phone or council.phone,
            "contact_by": long_date(contact_by),
            "offers": join_words(offers),
            "records": records,
            "never_used": list(council.never_used),
            "other_language": other_language or "",
            "phone": council.phone,
            "web_form": council.web_form,
            "hub": ", ".join([council.hub.name, *council.hub.address_lines]),
            "hub_hours": ", and ".join(council.hub.hours),
            "transparency_url": council.transparency_url,
        },
    )


def wording_problems(letter: Letter) -> list[str]:
    """Unkind or numeric wording in the letter, if any slipped in through the template or YAML.

    The resident's own name is left out of the check: a Mr Risk still gets his letter.
    """
    text = letter.full_text().replace(letter.salutation_name, "")
    return sorted({match.group(0).lower() for match in _UNKIND.finditer(text)})


def parse_blocks(wording: str) -> tuple[Block, ...]:
    top: list[Block] = []
    container: list[Block] | None = None
    container_kind: BlockKind = "box"
    container_title = ""
    paragraph: list[str] = []

    def target() -> list[Block]:
        return container if container is not None else top

    def flush() -> None:
        if paragraph:
            target().append(Block("paragraph", " ".join(paragraph)))
            paragraph.clear()

    for raw in wording.splitlines():
        line = raw.strip()
        if line.startswith(":::"):
            flush()
            opening = line[3:].strip()
            if opening:
                kind, _, title = opening.partition(" ")
                if kind not in ("box", "slip"):
                    raise ValueError(f"unknown section '{kind}' in the letter template")
                container, container_kind, container_title = [], kind, title.strip()  # type: ignore[assignment]
            elif container is not None:
                top.append(Block(container_kind, container_title, tuple(container)))
                container = None
        elif not line:
            flush()
        elif line.startswith("## "):
            flush()
            target().append(Block("heading", line[3:].strip()))
        elif line.startswith("# "):
            flush()
            target().append(Block("title", line[2:].strip()))
        elif line.startswith("- "):
            flush()
            target().append(Block("bullet", line[2:].strip()))
        elif line.startswith("[ ] "):
            flush()
            target().append(Block("tickbox", line[4:].strip()))
        else:
            paragraph.append(line)
    flush()
    if container is not None:
        raise ValueError("a ':::' section in the letter template is not closed")
    return tuple(top)
