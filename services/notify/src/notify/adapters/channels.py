"""How a letter leaves the platform. Today: a PDF file for the council's print room.

A channel takes a finished letter and returns the delivery status to record. GOV.UK
Notify would be a second implementation: render the same PDF and POST it as a
precompiled letter (`/v2/notifications/letter` with `reference` and base64 `content`),
returning Notify's status; the PDF already follows Notify's layout rules.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Literal, Protocol

from opentelemetry import trace

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
