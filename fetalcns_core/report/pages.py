"""Page furniture: the header and footer of every page, and "page x of y" (a two-pass canvas)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph

from fetalcns_core.report import theme
from fetalcns_core.report.fonts import register_fonts, rich

PAGE_SIZE = A4
MARGIN_X = 15 * mm
MARGIN_TOP = 27 * mm
MARGIN_BOTTOM = 17 * mm
_HEADER_TOP = 9 * mm  # from the top edge to the first header line's top


class NumberedCanvas(Canvas):
    """A canvas that holds every page until the end, then writes "Page x of y" on each.

    The page number goes top right, on the header's first line.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802 (reportlab's name)
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self._draw_page_number(number, total)
            super().showPage()
        super().save()

    def _draw_page_number(self, number: int, total: int) -> None:
        fonts = register_fonts()
        width, height = self._pagesize
        self.saveState()
        self.setFont(fonts.bold, 9.5)
        self.setFillColor(theme.INK)
        self.drawRightString(width - MARGIN_X, height - _HEADER_TOP - 9, f"Page {number} of {total}")
        self.restoreState()


@dataclass
class PageDecor:
    """What every page carries: who and what the report is about, its warnings, the intended use.

    `title` is the header's first line (the institution), `identity` the patient and exam,
    `report_time` what the report is and when it was made, `alerts` red marks (not signed, untrained
    model), `footer` the intended-use line.
    """

    title: str
    identity: str
    report_time: str
    alerts: list[str]
    footer: str
    product: str

    def _lines(self, usable: float) -> list[tuple[Paragraph, float]]:
        """The header's paragraphs, wrapped, with their heights."""
        st = theme.styles()
        lines = [
            (rich(self.title), st["header_bold"], usable - 30 * mm),  # room for "Page x of y"
            (rich(self.identity), st["header"], usable),
            (rich(self.report_time), st["header"], usable),
        ]
        if self.alerts:
            lines.append(("  ·  ".join(rich(a) for a in self.alerts), st["header_alert"], usable))
        out = []
        for text, style, w in lines:
            para = Paragraph(text, style)
            out.append((para, para.wrap(w, PAGE_SIZE[1])[1]))
        return out

    def top_margin(self, page_width: float) -> float:
        """The page's top margin: the header's height (long names wrap) and a gap below its rule."""
        header = sum(h for _, h in self._lines(page_width - 2 * MARGIN_X))
        return max(MARGIN_TOP, _HEADER_TOP + header + 6 * mm)

    def __call__(self, canvas: Canvas, doc: Any) -> None:
        st = theme.styles()
        width, height = canvas._pagesize
        usable = width - 2 * MARGIN_X
        canvas.saveState()
        y = height - _HEADER_TOP
        for para, ph in self._lines(usable):
            y -= ph
            para.drawOn(canvas, MARGIN_X, y)
        canvas.setStrokeColor(theme.RULE)
        canvas.setLineWidth(0.6)
        rule_y = height - doc.topMargin + 3 * mm
        canvas.line(MARGIN_X, rule_y, width - MARGIN_X, rule_y)

        foot = Paragraph(rich(self.footer), st["footer"])
        _, fh = foot.wrap(usable - 28 * mm, 12 * mm)
        canvas.line(MARGIN_X, MARGIN_BOTTOM - 3 * mm, width - MARGIN_X, MARGIN_BOTTOM - 3 * mm)
        foot.drawOn(canvas, MARGIN_X, MARGIN_BOTTOM - 4 * mm - fh)
        canvas.setFont(register_fonts().regular, 7)
        canvas.setFillColor(theme.MUTED)
        canvas.drawRightString(width - MARGIN_X, MARGIN_BOTTOM - 4 * mm - 8, self.product)
        canvas.restoreState()
