"""Drawn parts of the report: the probability bars and the frame images (from numpy arrays)."""

from __future__ import annotations

import io
import logging

import numpy as np
from PIL import Image
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import Flowable, Paragraph, Table

from fetalcns_core.report import theme
from fetalcns_core.report.fonts import rich
from fetalcns_core.report.text import pct

log = logging.getLogger(__name__)

MISSING_IMAGE = "image not available (source file missing or changed)"
# images are embedded at about 200 dpi of their printed size: sharp on paper, small in the file
_DPI = 200
JPEG_QUALITY = 90


class ProbabilityBar(Flowable):
    """A horizontal bar: the filled share is the probability, on a light track of the full width."""

    def __init__(self, value: float | None, width: float, height: float, highlight: bool) -> None:
        super().__init__()
        self.value = 0.0 if value is None else min(1.0, max(0.0, value))
        self.width = width
        self.height = height
        self.highlight = highlight

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        c = self.canv
        c.setStrokeColor(theme.RULE)
        c.setFillColor(theme.TRACK)
        c.rect(0, 0, self.width, self.height, stroke=0, fill=1)
        c.setFillColor(theme.AI_DARK if self.highlight else theme.AI_BAR)
        c.rect(0, 0, self.width * self.value, self.height, stroke=0, fill=1)
        c.setLineWidth(0.4)
        c.rect(0, 0, self.width, self.height, stroke=1, fill=0)


def probability_chart(
    rows: list[tuple[str, float | None, bool]], width: float, styles: dict[str, ParagraphStyle]
) -> Table:
    """A bar chart as a table: class name, bar, probability; `rows` are (label, value, highlight)."""
    label_w, value_w = 0.42 * width, 17 * mm
    bar_w = width - label_w - value_w - 4
    data = []
    for label, value, highlight in rows:
        style = styles["cell_bold"] if highlight else styles["cell"]
        data.append(
            [
                Paragraph(rich(label), style),
                ProbabilityBar(value, bar_w, 7, highlight),
                Paragraph(pct(value), styles["cell_bold_right"] if highlight else styles["cell_right"]),
            ]
        )
    table = Table(data, colWidths=[label_w, bar_w + 4, value_w], hAlign="LEFT")
    table.setStyle(
        theme.table_style(
            [
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LEFTPADDING", (0, 0), (-1, -1), 1),
                ("RIGHTPADDING", (0, 0), (-1, -1), 2),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return table


def as_rgb(image: object) -> np.ndarray | None:
    """An H x W x 3 uint8 array from what the caller gave (grey images are expanded); None if unusable."""
    if not isinstance(image, np.ndarray) or image.size == 0:
        return None
    array = image
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        return None
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number):
            return None
        array = np.clip(np.nan_to_num(array.astype(np.float64)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


class FrameImage(Flowable):
    """An RGB frame fitted (aspect kept) and centred in a box, or a grey box saying why it is missing."""

    def __init__(self, image: np.ndarray | None, width: float, height: float, missing: str = MISSING_IMAGE):
        super().__init__()
        self.width = width
        self.height = height
        self.missing = missing
        self.reader: ImageReader | None = None
        self.draw_w = self.draw_h = 0.0
        rgb = as_rgb(image)
        if rgb is None:
            return
        h, w = rgb.shape[:2]
        scale = min(width / w, height / h)
        self.draw_w, self.draw_h = w * scale, h * scale
        max_px = (int(self.draw_w / 72 * _DPI) + 1, int(self.draw_h / 72 * _DPI) + 1)
        pil = Image.fromarray(rgb, mode="RGB")
        if w > max_px[0] or h > max_px[1]:
            pil = pil.resize(max_px, Image.Resampling.LANCZOS)
        # JPEG at high quality without chroma subsampling: about a tenth of the size of lossless
        # pixels, with no visible change at print size; the PDF carries the JPEG stream as is
        encoded = io.BytesIO()
        pil.save(encoded, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
        encoded.seek(0)
        self.reader = ImageReader(encoded)

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        c = self.canv
        if self.reader is not None:
            c.setFillColor(colors.black)
            c.rect(0, 0, self.width, self.height, stroke=0, fill=1)
            x = (self.width - self.draw_w) / 2
            y = (self.height - self.draw_h) / 2
            c.drawImage(self.reader, x, y, self.draw_w, self.draw_h)
            return
        c.setFillColor(theme.MISSING_BG)
        c.setStrokeColor(theme.RULE)
        c.rect(0, 0, self.width, self.height, stroke=1, fill=1)
        para = Paragraph(rich(self.missing), theme.missing_style())
        _, ph = para.wrap(self.width - 8, self.height)
        para.drawOn(c, 4, (self.height - ph) / 2)
