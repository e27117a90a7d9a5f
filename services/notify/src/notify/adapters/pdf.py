"""Renders a letter as an A4 PDF laid out for a windowed envelope.

Positions follow GOV.UK Notify's letter specification (as its template-preview service
checks them), so a file made here can later be sent to Notify as a precompiled letter:
the address block sits 24.6 mm from the left and 39.5-66.3 mm from the top of page one,
no wider than 120 mm from the left edge and in at most 7 lines; the council's own details
stay to the right of 125 mm and above 95 mm, where the body starts; the top-left corner is
left clear for Notify's tag. Text is 12 pt, in a plain sans-serif, as clear-print guidance asks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.flowables import TopPadder

from notify.domain.letter import Block, Letter, long_date

PageCallback = Callable[[Canvas, BaseDocTemplate], None]
PAGE_WIDTH, PAGE_HEIGHT = A4
ADDRESS_LEFT = 24.6 * mm
ADDRESS_TOP = 39.5 * mm
ADDRESS_BOTTOM = 66.3 * mm
ADDRESS_RIGHT = 120.0 * mm
# Seven lines fit the 26.8 mm window at 10 pt; an address of five lines or fewer gets room
# to breathe at 11 pt, so a postman (and the resident) reads it easily.
ADDRESS_FONT_SIZE = 10
ADDRESS_LEADING = 10.5
ROOMY_ADDRESS_LINES = 5
ROOMY_ADDRESS_FONT_SIZE = 11
ROOMY_ADDRESS_LEADING = 13.5
SERVICE_DETAILS_LEFT = 125.0 * mm
BODY_TOP_PAGE_ONE = 95.0 * mm
BODY_LEFT = ADDRESS_LEFT
BODY_RIGHT_MARGIN = 20.0 * mm
BODY_BOTTOM_MARGIN = 18.0 * mm
LATER_PAGES_TOP = 22.0 * mm

_FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
)


def _fonts() -> tuple[str, str]:
    """A Unicode sans-serif when the machine has one (names are not all Latin-1), else Helvetica."""
    if "LetterSans" in pdfmetrics.getRegisteredFontNames():
        return "LetterSans", "LetterSans-Bold"
    for regular in _FONT_CANDIDATES:
        bold = regular.with_name("DejaVuSans-Bold.ttf")
        if regular.exists() and bold.exists():
            pdfmetrics.registerFont(TTFont("LetterSans", str(regular)))
            pdfmetrics.registerFont(TTFont("LetterSans-Bold", str(bold)))
            return "LetterSans", "LetterSans-Bold"
    return "Helvetica", "Helvetica-Bold"


class _Styles:
    def __init__(self) -> None:
        self.regular, self.bold = _fonts()
        base = ParagraphStyle("body", fontName=self.regular, fontSize=12, leading=16, spaceAfter=7)
        self.body = base
        self.title = ParagraphStyle(
            "title", parent=base, fontName=self.bold, fontSize=16, leading=20
        )
        self.heading = ParagraphStyle(
            "heading",
            parent=base,
            fontName=self.bold,
            fontSize=13,
            leading=17,
            spaceBefore=5,
            spaceAfter=3,
        )
        self.bullet = ParagraphStyle(
            "bullet", parent=base, leftIndent=14, bulletIndent=2, spaceAfter=3
        )
        self.small = ParagraphStyle("small", parent=base, fontSize=11, leading=14, spaceAfter=4)


class _TickBox(Flowable):
    """An empty square to tick on the reply slip."""

    def __init__(self, size: float = 11) -> None:
        super().__init__()
        self.size = size
        self.width = self.height = size

    def draw(self) -> None:
        self.canv.setLineWidth(1)
        self.canv.rect(0, 0, self.size, self.size)


_BETWEEN_DIGITS = re.compile(r"(?<=\d) (?=\d)")


def _text(text: str) -> str:
    # A phone number or postcode split over two lines is easy to misread: keep each whole.
    return escape(_BETWEEN_DIGITS.sub("\u00a0", text))


def _flowables(blocks: tuple[Block, ...], styles: _Styles, width: float) -> list[Flowable]:
    story: list[Flowable] = []
    for block in blocks:
        if block.kind == "title":
            story.append(Paragraph(_text(block.text), styles.title))
        elif block.kind == "heading":
            story.append(CondPageBreak(40 * mm))  # never strand a heading at a page foot
            story.append(Paragraph(_text(block.text), styles.heading))
        elif block.kind == "paragraph":
            story.append(Paragraph(_text(block.text), styles.body))
        elif block.kind == "bullet":
            story.append(Paragraph(_text(block.text), styles.bullet, bulletText="\u2022"))
        elif block.kind == "tickbox":
            row = Table(
                [[_TickBox(), Paragraph(_text(block.text), styles.small)]],
                colWidths=[8 * mm, width - 8 * mm],
                style=TableStyle(
                    [("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]
                ),
            )
            story.append(row)
        elif block.kind == "box":
            story.append(_clear_print_box(block, styles, width))
            story.append(Spacer(1, 5 * mm))
        elif block.kind == "slip":
            story.append(_reply_slip(block, styles, width))
    return story


def _clear_print_box(block: Block, styles: _Styles, width: float) -> Flowable:
    inner_width = width - 12 * mm
    content: list[Flowable] = [Paragraph(_text(block.text), styles.heading)]
    content.extend(_flowables(block.children, styles, inner_width))
    box = Table([[content]], colWidths=[width])
    box.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 2, colors.black),
                ("LEFTPADDING", (0, 0), (-1, -1), 6 * mm),
                ("RIGHTPADDING", (0, 0), (-1, -1), 6 * mm),
                ("TOPPADDING", (0, 0), (-1, -1), 3 * mm),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2 * mm),
            ]
        )
    )
    return box


def _reply_slip(block: Block, styles: _Styles, width: float) -> Flowable:
    cut_here = ParagraphStyle("cut", parent=styles.small, fontSize=8, leading=10, spaceAfter=6)
    content: list[Flowable] = [
        Paragraph("Cut or tear along the dashed line", cut_here),
        Paragraph(_text(block.text), styles.heading),
        *_flowables(block.children, styles, width),
    ]
    slip = Table([[content]], colWidths=[width])
    slip.setStyle(
        TableStyle(
            [
                ("LINEABOVE", (0, 0), (-1, 0), 1, colors.black, None, (4, 3)),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 2 * mm),
            ]
        )
    )
    return TopPadder(slip)  # the slip sits at the foot of the last page


def _first_page(letter: Letter, styles: _Styles) -> PageCallback:
    council = letter.council

    def draw(canvas: Canvas, _doc: BaseDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(styles.bold, 18)
        canvas.drawString(15 * mm, PAGE_HEIGHT - 16 * mm, council.council_name)
        canvas.setFont(styles.regular, 12)
        canvas.drawString(15 * mm, PAGE_HEIGHT - 23 * mm, council.service_name)

        details = [
            (styles.bold, council.service_name),
            (styles.regular, council.phone),
            (styles.regular, council.web_form),
        ]
        if council.email:
            details.append((styles.regular, council.email))
        details += [
            (styles.regular, ""),
            (styles.regular, f"Date: {long_date(letter.dated)}"),
            (styles.bold, f"Our reference: {letter.reference}"),
        ]
        y = PAGE_HEIGHT - 40 * mm
        for font, line in details:
            canvas.setFont(font, 10)
            canvas.drawString(SERVICE_DETAILS_LEFT, y, line)
            y -= 13

        roomy = len(letter.recipient_lines) <= ROOMY_ADDRESS_LINES
        size = ROOMY_ADDRESS_FONT_SIZE if roomy else ADDRESS_FONT_SIZE
        leading = ROOMY_ADDRESS_LEADING if roomy else ADDRESS_LEADING
        text = canvas.beginText(ADDRESS_LEFT, PAGE_HEIGHT - ADDRESS_TOP - size)
        text.setFont(styles.regular, size, leading)
        for line in letter.recipient_lines:
            text.textLine(_fit(line, styles.regular, ADDRESS_RIGHT - ADDRESS_LEFT, size))
        canvas.drawText(text)
        _footer(canvas, letter, styles)
        canvas.restoreState()

    return draw


def _later_pages(letter: Letter, styles: _Styles) -> PageCallback:
    def draw(canvas: Canvas, _doc: BaseDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(styles.regular, 10)
        canvas.drawRightString(
            PAGE_WIDTH - BODY_RIGHT_MARGIN,
            PAGE_HEIGHT - 12 * mm,
            f"Our reference: {letter.reference}",
        )
        _footer(canvas, letter, styles)
        canvas.restoreState()

    return draw


def _footer(canvas: Canvas, letter: Letter, styles: _Styles) -> None:
    canvas.setFont(styles.regular, 9)
    canvas.drawCentredString(
        PAGE_WIDTH / 2, 9 * mm, f"{letter.council.council_name}  |  Page {canvas.getPageNumber()}"
    )


def _fit(line: str, font: str, width: float, size: float) -> str:
    """Shorten an address line that would run past the envelope window."""
    while line and pdfmetrics.stringWidth(line, font, size) > width:
        line = line[:-1]
    return line


def render_letter_pdf(letter: Letter) -> bytes:
    styles = _Styles()
    body_width = PAGE_WIDTH - BODY_LEFT - BODY_RIGHT_MARGIN
    first = Frame(
        BODY_LEFT,
        BODY_BOTTOM_MARGIN,
        body_width,
        PAGE_HEIGHT - BODY_TOP_PAGE_ONE - BODY_BOTTOM_MARGIN,
        id="first",
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
    )
    later = Frame(
        BODY_LEFT,
        BODY_BOTTOM_MARGIN,
        body_width,
        PAGE_HEIGHT - LATER_PAGES_TOP - BODY_BOTTOM_MARGIN,
        id="later",
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
    )
    output = BytesIO()
    document = BaseDocTemplate(
        output,
        pagesize=A4,
        title=f"Letter {letter.reference}",
        author=letter.council.council_name,
        subject=letter.council.service_name,
        creator="Proactive Support notify",
    )
    document.addPageTemplates(
        [
            PageTemplate(
                "first", [first], onPage=_first_page(letter, styles), autoNextPageTemplate="later"
            ),
            PageTemplate("later", [later], onPage=_later_pages(letter, styles)),
        ]
    )
    document.build(_flowables(letter.blocks, styles, body_width))
    return output.getvalue()
