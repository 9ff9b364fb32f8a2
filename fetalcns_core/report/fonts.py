"""Fonts of the report: embedded TrueType fonts and per-character fallback for non-Latin scripts.

Text is set in DejaVu Sans; runs of characters that DejaVu Sans lacks (Chinese, Japanese) are set in
Droid Sans Fallback Full. Both are embedded (subset) in every report, so a name renders the same on
every computer and never as empty boxes.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

log = logging.getLogger(__name__)

REGULAR = "FetalCNS-Sans"
BOLD = "FetalCNS-Sans-Bold"
CJK = "FetalCNS-CJK"

_FILES = {
    REGULAR: "DejaVuSans.ttf",
    BOLD: "DejaVuSans-Bold.ttf",
    CJK: "DroidSansFallbackFull.ttf",
}


class FontError(RuntimeError):
    """The report's fonts cannot be found or read."""


def resources_dir() -> Path:
    """The `resources/` folder: $FETALCNS_RESOURCES, a PyInstaller bundle, or the checkout's root."""
    candidates: list[Path] = []
    env = os.environ.get("FETALCNS_RESOURCES")
    if env:
        candidates.append(Path(env))
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass:
        candidates.append(Path(meipass) / "resources")
    candidates.append(Path(__file__).resolve().parents[2] / "resources")
    for cand in candidates:
        if (cand / "fonts").is_dir():
            return cand
    raise FontError(
        "the report fonts were not found (looked for resources/fonts in "
        + ", ".join(str(c) for c in candidates)
        + "): reinstall FetalCNS, or set FETALCNS_RESOURCES to the folder that holds fonts/"
    )


@dataclass(frozen=True)
class FontSet:
    """The registered fonts and the characters each one covers."""

    regular: str
    bold: str
    cjk: str
    latin_chars: frozenset[int]
    cjk_chars: frozenset[int]

    def covered(self, char: str) -> bool:
        code = ord(char)
        return code in self.latin_chars or code in self.cjk_chars


@functools.cache
def register_fonts() -> FontSet:
    """Register the report fonts with reportlab once per process and return them."""
    folder = resources_dir() / "fonts"
    faces: dict[str, TTFont] = {}
    for name, filename in _FILES.items():
        path = folder / filename
        try:
            faces[name] = TTFont(name, str(path))
        except Exception as exc:  # reportlab raises TTFError, OSError, struct errors ...
            raise FontError(
                f"cannot load the report font '{path}': {exc}. Reinstall FetalCNS to restore it."
            ) from exc
        pdfmetrics.registerFont(faces[name])
    for bold in (0, 1):
        for italic in (0, 1):
            addMapping(REGULAR, bold, italic, BOLD if bold else REGULAR)
            # the CJK font has no bold face: bold CJK text uses the same face
            addMapping(CJK, bold, italic, CJK)
    latin = frozenset(faces[REGULAR].face.charToGlyph)
    cjk = frozenset(faces[CJK].face.charToGlyph) - latin
    log.debug("report fonts registered from %s", folder)
    return FontSet(REGULAR, BOLD, CJK, latin, cjk)


_WARNED: set[str] = set()


def rich(text: object) -> str:
    """Paragraph markup for plain text: escaped, newlines kept, CJK runs set in the CJK font.

    Characters that no embedded font covers are logged once (they would render as boxes).
    """
    fonts = register_fonts()
    out: list[str] = []
    run: list[str] = []
    run_cjk = False

    def flush() -> None:
        if not run:
            return
        piece = escape("".join(run)).replace("\n", "<br/>")
        out.append(f'<font name="{fonts.cjk}">{piece}</font>' if run_cjk else piece)
        run.clear()

    for char in str(text):
        code = ord(char)
        is_cjk = code not in fonts.latin_chars and code in fonts.cjk_chars
        if code not in fonts.latin_chars and not is_cjk and char not in "\n\t" and char not in _WARNED:
            _WARNED.add(char)
            log.warning("no report font covers the character %r (U+%04X); it may show as a box", char, code)
        if is_cjk != run_cjk:
            flush()
            run_cjk = is_cjk
        run.append(char)
    flush()
    return "".join(out)


def needs_fallback(text: str) -> bool:
    """True when `text` holds characters that the main font lacks."""
    latin = register_fonts().latin_chars
    return any(ord(c) not in latin for c in text if c not in "\n\t")
