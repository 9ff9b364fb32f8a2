"""Small conversions between numpy images, colours and Qt types (display only)."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QImage, QPixmap

# display palette, shared by the widgets and the style sheet
AI_COLOUR = QColor("#4aa3ff")  # the AI's suggestion: blue
CLINICIAN_COLOUR = QColor("#f0b429")  # the clinician's decision: amber
SIGNED_COLOUR = QColor("#3ecf8e")
WARN_COLOUR = QColor("#ff5c5c")
MUTED = QColor("#8a94a6")


def qimage_from_rgb(image: np.ndarray) -> QImage:
    """A deep copy of an H×W×3 uint8 RGB (or H×W grey) array as a QImage."""
    array = np.ascontiguousarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {array.dtype}")
    if array.ndim == 2:
        h, w = array.shape
        return QImage(array.data, w, h, array.strides[0], QImage.Format.Format_Grayscale8).copy()
    h, w, c = array.shape
    if c != 3:
        raise ValueError(f"expected 3 channels, got {c}")
    return QImage(array.data, w, h, array.strides[0], QImage.Format.Format_RGB888).copy()


def pixmap_from_rgb(image: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(qimage_from_rgb(image))


def score_colour(abnormal: float | None) -> QColor:
    """Green (normal-looking) → amber → red (abnormal-looking); grey when there is no score."""
    if abnormal is None:
        return QColor(MUTED)
    a = float(min(1.0, max(0.0, abnormal)))
    if a < 0.5:
        t = a / 0.5
        r, g, b = 62 + (240 - 62) * t, 207 + (180 - 207) * t, 142 + (41 - 142) * t
    else:
        t = (a - 0.5) / 0.5
        r, g, b = 240 + (255 - 240) * t, 180 + (92 - 180) * t, 41 + (92 - 41) * t
    return QColor(int(r), int(g), int(b))


def percent(p: float | None) -> str:
    return "—" if p is None else f"{100.0 * p:.0f}%"
