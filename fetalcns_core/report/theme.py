"""Colours and paragraph styles of the report.

The AI's suggestion is blue, the clinician's decision green (signed) or red (not signed), warnings
red: the two voices never share a colour.
"""

from __future__ import annotations

import functools

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import TableStyle

from fetalcns_core.report.fonts import register_fonts

INK = colors.HexColor("#1a1a1a")
MUTED = colors.HexColor("#5f6368")
RULE = colors.HexColor("#9aa0a6")
TRACK = colors.HexColor("#eef1f5")
ZEBRA = colors.HexColor("#f4f6f8")
HEAD_BG = colors.HexColor("#dde3ea")
MISSING_BG = colors.HexColor("#e8e8e8")

AI_DARK = colors.HexColor("#1f4e79")
AI_BAR = colors.HexColor("#8fb3d9")
AI_BG = colors.HexColor("#eaf1f8")
KEY_ROW = colors.HexColor("#d3e3f3")

SIGNED_DARK = colors.HexColor("#1b5e20")
SIGNED_BG = colors.HexColor("#e8f5e9")

ALERT = colors.HexColor("#b00020")
ALERT_BG = colors.HexColor("#fdecea")
ALERT_TEXT_ON_DARK = colors.white


@functools.cache
def styles() -> dict[str, ParagraphStyle]:
    """The paragraph styles, by name."""
    fonts = register_fonts()
    base = ParagraphStyle("base", fontName=fonts.regular, fontSize=9, leading=11.5, textColor=INK)

    def make(name: str, **kw: object) -> ParagraphStyle:
        return ParagraphStyle(name, parent=base, **kw)

    bold = {"fontName": fonts.bold}
    return {
        "body": base,
        "small": make("small", fontSize=7.5, leading=9.5),
        "muted": make("muted", fontSize=7.5, leading=9.5, textColor=MUTED),
        "intro": make("intro", fontSize=7.5, leading=9.5, textColor=MUTED, spaceAfter=2, keepWithNext=1),
        "title": make("title", fontSize=15, leading=19, spaceAfter=2, **bold),
        "h1": make(
            "h1",
            fontSize=11.5,
            leading=14,
            spaceBefore=9,
            spaceAfter=4,
            textColor=AI_DARK,
            keepWithNext=1,
            **bold,
        ),
        "h2": make("h2", fontSize=9.5, leading=12, spaceBefore=5, spaceAfter=2, keepWithNext=1, **bold),
        "intended": make("intended", fontSize=8.5, leading=11),
        "ai_label": make("ai_label", fontSize=8, leading=10, textColor=AI_DARK, **bold),
        "ai_big": make("ai_big", fontSize=17, leading=21, textColor=AI_DARK, **bold),
        "dec_label": make("dec_label", fontSize=8, leading=10, textColor=SIGNED_DARK, **bold),
        "dec_big": make("dec_big", fontSize=15, leading=19, textColor=SIGNED_DARK, **bold),
        "alert_label": make("alert_label", fontSize=8, leading=10, textColor=ALERT, **bold),
        "alert_big": make("alert_big", fontSize=15, leading=19, textColor=ALERT, **bold),
        "banner": make(
            "banner", fontSize=17, leading=21, alignment=TA_CENTER, textColor=ALERT_TEXT_ON_DARK, **bold
        ),
        "banner_small": make(
            "banner_small", fontSize=9, leading=11.5, alignment=TA_CENTER, textColor=ALERT_TEXT_ON_DARK
        ),
        "cell": make("cell", fontSize=7.5, leading=9),
        "cell_bold": make("cell_bold", fontSize=7.5, leading=9, **bold),
        "cell_right": make("cell_right", fontSize=7.5, leading=9, alignment=TA_RIGHT),
        "cell_bold_right": make("cell_bold_right", fontSize=7.5, leading=9, alignment=TA_RIGHT, **bold),
        "cell_muted": make("cell_muted", fontSize=7.5, leading=9, textColor=MUTED),
        "hash": make("hash", fontSize=6.6, leading=8.5),
        "header": make("header", fontSize=7.5, leading=9.5),
        "header_bold": make("header_bold", fontSize=9.5, leading=11.5, **bold),
        "header_alert": make("header_alert", fontSize=8, leading=10, textColor=ALERT, **bold),
        "footer": make("footer", fontSize=7, leading=8.5, textColor=MUTED),
    }


def missing_style() -> ParagraphStyle:
    return ParagraphStyle("missing", parent=styles()["cell_muted"], alignment=TA_CENTER)


def table_style(commands: list[tuple]) -> TableStyle:
    """A table style whose plain-text cells use the embedded font (reportlab's default is Helvetica)."""
    return TableStyle([("FONTNAME", (0, 0), (-1, -1), register_fonts().regular), *commands])
