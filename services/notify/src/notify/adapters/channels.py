"""How a letter leaves the platform: a PDF file for the council's print room, or GOV.UK Notify.

The PDF channel writes the file and is done. The Notify channel either posts the same PDF
as a precompiled letter (it already follows Notify's layout rules) or fills in a Notify
letter template; the handler keeps the once-only record around it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Literal, Protocol

from opentelemetry import trace

from notify.adapters.govuk_notify import Answer, GovukNotify
from notify.adapters.pdf import render_letter_pdf
from notify.domain.letter import Letter
from shared.references import is_reference

tracer = trace.get_tracer("notify.channels")
ChannelName = Literal["pdf", "govuk_notify"]


class LetterChannel(Protocol):
    name: ChannelName

    async def send(self, letter: Letter) -> str:
        """Deliver the letter; returns the status to record and publish."""
        ...


class PdfLetterChannel:
    name: ChannelName = "pdf"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, reference: str) -> Path:
        if not is_reference(reference):
            raise ValueError("not one of our letter references")
        return self.folder / f"{reference}.pdf"

    async def send(self, letter: Letter) -> str:
        with tracer.start_as_current_span("render letter pdf") as span:
            pdf = await asyncio.to_thread(render_letter_pdf, letter)
            span.set_attribute("notify.letter.bytes", len(pdf))
            await asyncio.to_thread(self._write, letter.reference, pdf)
        return "rendered"

    def _write(self, reference: str, pdf: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.path_for(reference)
        partial = final.with_suffix(".pdf.partial")
        with partial.open("wb") as out:
            out.write(pdf)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(final)  # a reader never sees half a letter


class NotifyLetterChannel:
    """Sends a letter through GOV.UK Notify, as our PDF or through a Notify letter template."""

    name: ChannelName = "govuk_notify"

    def __init__(
        self,
        api: GovukNotify,
        *,
        mode: Literal["precompiled", "template"] = "precompiled",
        postage: str = "second",
        template_id: str | None = None,
    ) -> None:
        if mode == "template" and not template_id:
            raise ValueError("a templated Notify letter needs the template's id")
        self.api = api
        self.mode = mode
        self.postage = postage
        self.template_id = template_id

    async def send(self, letter: Letter) -> str:
        raise NotImplementedError("Notify letters go through submit(), with a delivery record")

    async def submit(self, letter: Letter, notify_reference: str, *, maybe_sent: bool) -> Answer:
        """Hand the letter to Notify; returns Notify's answer (it has the notification `id`)."""
        if self.mode == "template":
            return await self.api.send_template_letter(
                notify_reference,
                self.template_id or "",
                personalisation(letter),
                maybe_sent=maybe_sent,
            )
        with tracer.start_as_current_span("render letter pdf") as span:
            pdf = await asyncio.to_thread(render_letter_pdf, letter)
            span.set_attribute("notify.letter.bytes", len(pdf))
        return await self.api.send_precompiled_letter(
            notify_reference, pdf, self.postage, maybe_sent=maybe_sent
        )


def personalisation(letter: Letter) -> dict[str, Any]:
    """A Notify letter template's placeholders: the address in lines 1-7, then the wording's fields."""
    address = {
        f"address_line_{number}": line
        for number, line in enumerate(letter.recipient_lines, start=1)
    }
    return {**address, **letter.fields}
