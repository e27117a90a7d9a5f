"""The letter as a PDF: real, one or two A4 pages, the address where the envelope window is."""

from __future__ import annotations

import io
from datetime import date

import pypdf
import pytest

from notify.adapters.pdf import render_letter_pdf
from notify.domain.letter import Contact, build_letter
from shared.references import reference_for

pytestmark = pytest.mark.unit
MM = 72 / 25.4


@pytest.fixture
def pdf_and_letter(kit, council, template, contact):
    task = kit.make_task(models=["falls", "homelessness", "frailty"])
    letter = build_letter(
        task, contact, council, template, reference_for(task.task_id), date(2025, 3, 3)
    )
    return render_letter_pdf(letter), letter


def test_the_letter_is_a_real_pdf_with_the_name_and_reference(kit, pdf_and_letter):
    pdf, letter = pdf_and_letter
    assert pdf.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert 1 <= len(reader.pages) <= 2
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert kit.NAME in text
    assert kit.POSTCODE in text
    assert letter.reference in text
    assert "How are things going for you at the moment?" in text
    assert "Reply slip" in text


def test_every_page_is_a4(pdf_and_letter):
    reader = pypdf.PdfReader(io.BytesIO(pdf_and_letter[0]))
    for page in reader.pages:
        assert round(float(page.mediabox.width) / MM) == 210
        assert round(float(page.mediabox.height) / MM) == 297


def test_the_address_sits_inside_the_envelope_window_on_page_one(kit, pdf_and_letter):
    reader = pypdf.PdfReader(io.BytesIO(pdf_and_letter[0]))
    page = reader.pages[0]
    height = float(page.mediabox.height)
    found: dict[str, tuple[float, float]] = {}

    def visit(text, cm, tm, _font, _size):
        line = text.strip()
        if line in {kit.NAME, kit.POSTCODE, *kit.ADDRESS}:
            x = tm[4] * cm[0] + cm[4]
            y = tm[5] * cm[3] + cm[5]
            found[line] = (x / MM, (height - y) / MM)  # mm from left, mm from top (baseline)

    page.extract_text(visitor_text=visit)
    assert set(found) == {kit.NAME, kit.POSTCODE, *kit.ADDRESS}
    for left, from_top in found.values():
        assert left == pytest.approx(24.6, abs=0.2)
        assert 39.5 < from_top < 66.3
    assert found[kit.NAME][1] < found[kit.POSTCODE][1]


def test_the_pdf_metadata_holds_no_personal_data(kit, pdf_and_letter):
    pdf, letter = pdf_and_letter
    metadata = pypdf.PdfReader(io.BytesIO(pdf)).metadata
    assert metadata is not None
    values = " ".join(str(value) for value in metadata.values())
    assert letter.reference in values
    assert kit.NAME not in values and kit.POSTCODE not in values


def test_names_outside_latin_1_are_printed(council, template, kit):
    task = kit.make_task()
    contact = Contact("Pani Łucja Wiśniewska", ("Flat 1", "Ripple Road"), "IG11 7ZZ", "pl")
    letter = build_letter(task, contact, council, template, "PS-AAAAAAAA", date(2025, 3, 3))
    text = pypdf.PdfReader(io.BytesIO(render_letter_pdf(letter))).pages[0].extract_text()
    assert "Łucja Wiśniewska" in text
