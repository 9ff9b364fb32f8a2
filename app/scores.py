"""Per-class probabilities of the current frame as bars: fold mean as the bar, fold range as a whisker.

Drawn with QPainter (PySide6-Essentials has no QtCharts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.qtutil import AI_COLOUR, MUTED


@dataclass
class ClassScore:
    name: str
    mean: float
    low: float
    high: float
    top: bool = False


def class_scores(
    names: list[str], probs: list[float], fold_probs: list[list[float]] | None
) -> list[ClassScore]:
    mean = np.asarray(probs, dtype=float)
    if fold_probs:
        folds = np.asarray(fold_probs, dtype=float)
        low, high = folds.min(axis=0), folds.max(axis=0)
    else:
        low, high = mean, mean
    top = int(mean.argmax()) if mean.size else -1
    return [
        ClassScore(n, float(mean[k]), float(low[k]), float(high[k]), k == top) for k, n in enumerate(names)
    ]


class ScoresPanel(QWidget):
    """Shows one frame's class scores, or a short message when there are none."""

    ROW = 30

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("scoresPanel")
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.scores: list[ClassScore] = []
        self.message = "No frame selected"
        self.n_folds = 0
        self.setToolTip("Bar: mean probability over the folds. Whisker: lowest to highest fold.")

    def set_scores(
        self,
        names: list[str],
        probs: list[float] | None,
        fold_probs: list[list[float]] | None,
        message: str = "",
    ) -> None:
        if probs is None:
            self.scores = []
            self.message = message or "This frame has no scores"
        else:
            self.scores = class_scores(names, probs, fold_probs)
            self.message = message
        self.n_folds = len(fold_probs) if fold_probs else 0
        self.setMinimumHeight(self.sizeHint().height())
        self.updateGeometry()
        self.update()

    def clear(self, message: str = "No frame selected") -> None:
        self.set_scores([], None, None, message)

    def sizeHint(self) -> QSize:  # noqa: N802
        rows = max(1, len(self.scores))
        return QSize(300, 28 + rows * self.ROW + (22 if self.message and self.scores else 0))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#161a21"))
        font = QFont(self.font())
        p.setFont(font)
        fm = p.fontMetrics()
        width = self.width()
        if not self.scores:
            p.setPen(MUTED)
            p.drawText(
                self.rect().adjusted(8, 0, -8, 0),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.message,
            )
            p.end()
            return
        p.setPen(MUTED)
        head = (
            f"This frame · mean of {self.n_folds} folds, whisker = fold range"
            if self.n_folds
            else "This frame"
        )
        p.drawText(8, 4 + fm.ascent(), head)
        label_w = min(170, max(fm.horizontalAdvance(s.name) for s in self.scores) + 12)
        value_w = fm.horizontalAdvance("100%") + 10
        bar_x = 8 + label_w
        bar_w = max(40, width - bar_x - value_w - 8)
        for row, s in enumerate(self.scores):
            y = 24 + row * self.ROW
            bold = QFont(font)
            bold.setBold(s.top)
            p.setFont(bold)
            p.setPen(QColor("#ffffff") if s.top else QColor("#c9d1dc"))
            p.drawText(
                QRectF(8, y, label_w - 6, self.ROW),
                Qt.AlignmentFlag.AlignVCenter,
                fm.elidedText(s.name, Qt.TextElideMode.ElideRight, label_w - 6),
            )
            track = QRectF(bar_x, y + 8, bar_w, self.ROW - 16)
            p.fillRect(track, QColor("#262d38"))
            colour = QColor(AI_COLOUR) if s.top else QColor("#5b6b84")
            p.fillRect(QRectF(bar_x, y + 8, bar_w * s.mean, self.ROW - 16), colour)
            if s.high > s.low:
                pen = QPen(QColor("#ffffff"))
                pen.setWidthF(1.5)
                p.setPen(pen)
                cy = y + self.ROW / 2
                x0, x1 = bar_x + bar_w * s.low, bar_x + bar_w * s.high
                p.drawLine(int(x0), int(cy), int(x1), int(cy))
                p.drawLine(int(x0), int(cy - 5), int(x0), int(cy + 5))
                p.drawLine(int(x1), int(cy - 5), int(x1), int(cy + 5))
            p.setPen(QColor("#ffffff") if s.top else QColor("#c9d1dc"))
            p.drawText(
                QRectF(bar_x + bar_w + 4, y, value_w, self.ROW),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                f"{100 * s.mean:.0f}%",
            )
        if self.message:
            p.setFont(font)
            p.setPen(MUTED)
            p.drawText(8, 24 + len(self.scores) * self.ROW + fm.ascent(), self.message)
        p.end()
