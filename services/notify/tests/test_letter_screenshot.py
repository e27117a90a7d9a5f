"""A picture of a rendered letter (PDF page 1 -> PNG with pdfium), kept as a test artefact
and in the README, so a person can judge the letter as a resident would see it."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import pypdfium2
import pytest

from notify.adapters.pdf import render_letter_pdf
from notify.domain.letter import build_letter
from shared.references import reference_for

pytestmark = pytest.mark.unit
ARTEFACTS = Path(__file__).parent / "artefacts"
README_IMAGES = Path(__file__).parents[3] / "docs" / "images"
DPI = 110


def test_page_one_of_a_letter_is_saved_as_a_png_with_the_address_in_the_window(
    kit, council, template, contact
):
    task = kit.make_task(
        task_id=uuid.UUID("0b7c6f0e-8d3a-4a8e-9d57-0e2f1c3b4a5d"),  # the same picture every run
        models=["falls"],
        tables=["health.ambulance_callouts", "people.residents"],
    )
    letter = build_letter(
        task, contact, council, template, reference_for(task.task_id), date(2025, 3, 3)
    )
    document = pypdfium2.PdfDocument(render_letter_pdf(letter))
    try:
        image = document[0].render(scale=DPI / 72).to_pil().convert("L")
    finally:
        document.close()

    width, height = image.size
    assert abs(height / width - 297 / 210) < 0.01  # A4, upright

    def ink(left_mm: float, top_mm: float, right_mm: float, bottom_mm: float) -> int:
        px = DPI / 25.4
        box = (int(left_mm * px), int(top_mm * px), int(right_mm * px), int(bottom_mm * px))
        return sum(1 for value in image.crop(box).getdata() if value < 128)

    assert ink(24, 39.5, 100, 66.3) > 500  # the address is printed in the envelope window
    assert ink(0, 0, 15, 40) == 0  # Notify's corner for its own tag stays clear

    for folder in (ARTEFACTS, README_IMAGES):
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / "letter-page-1.png", optimize=True)
    assert (ARTEFACTS / "letter-page-1.png").stat().st_size > 10_000
