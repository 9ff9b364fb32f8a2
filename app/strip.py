"""The frame strip: one row per frame with a thumbnail, its top class and an abnormal-score colour.

Unusable, out-of-scope and excluded frames say why; files that could not be read appear as failed rows.
Up/Down move through it when it has focus; the window adds J/K everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QStyledItemDelegate,
    QWidget,
)

from app.qtutil import MUTED, WARN_COLOUR, pixmap_from_rgb, score_colour
from app.session import frame_label
from fetalcns_core.exam import BundleInfo, FrameRecord, SourceFile

THUMB = 72
ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1
FAILED_PREFIX = "failed:"


@dataclass
class StripEntry:
    key: str
    title: str
    line1: str
    line2: str = ""
    status: str = "ok"  # ok | unusable | excluded | failed
    abnormal: float | None = None
    thumb: QPixmap | None = None


def frame_summary(record: FrameRecord, bundle: BundleInfo | None) -> tuple[str, float | None]:
    """(top class with its probability, abnormal score) of a scored frame, for display."""
    if record.probs is None or bundle is None or not bundle.classes:
        return "", None
    probs = np.asarray(record.probs, dtype=float)
    k = int(probs.argmax())
    names = bundle.class_names or bundle.classes
    abnormal = None
    if bundle.normal_class in bundle.classes:
        abnormal = 1.0 - float(probs[bundle.classes.index(bundle.normal_class)])
    return f"{names[k]} {100 * probs[k]:.0f}%", abnormal


def entry_for(
    record: FrameRecord, bundle: BundleInfo | None, thumb: np.ndarray | None, excluded: str | None
) -> StripEntry:
    top, abnormal = frame_summary(record, bundle)
    entry = StripEntry(record.key, frame_label(record), top, abnormal=abnormal)
    if not record.usable or record.out_of_scope:
        entry.status = "unusable"
        entry.line1 = "unusable"
        entry.line2 = record.unusable_reason or "no usable ultrasound image"
        entry.abnormal = None
    elif record.probs is None:
        entry.status = "unusable"
        entry.line1 = "not scored"
    if excluded is not None:
        entry.status = "excluded"
        entry.line2 = excluded if excluded.lower().startswith("excluded") else f"excluded: {excluded}"
    if thumb is not None:
        entry.thumb = pixmap_from_rgb(thumb).scaled(
            THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
    return entry


class StripDelegate(QStyledItemDelegate):
    def sizeHint(self, option, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        return QSize(240, THUMB + 10)

    def paint(self, painter: QPainter, option, index: QModelIndex | QPersistentModelIndex) -> None:
        entry: StripEntry = index.data(ENTRY_ROLE)
        if entry is None:
            return super().paint(painter, option, index)
        painter.save()
        rect: QRect = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.fillRect(rect, QColor("#2b3445") if selected else QColor("#1b2029"))
        painter.fillRect(QRect(rect.left(), rect.top() + 2, 6, rect.height() - 4), self._bar(entry))
        thumb_rect = QRect(rect.left() + 12, rect.top() + 5, THUMB, THUMB)
        painter.fillRect(thumb_rect, QColor("#000000"))
        if entry.thumb is not None:
            pm = entry.thumb
            painter.drawPixmap(
                thumb_rect.left() + (THUMB - pm.width()) // 2,
                thumb_rect.top() + (THUMB - pm.height()) // 2,
                pm,
            )
        else:
            painter.setPen(MUTED)
            painter.drawText(thumb_rect, Qt.AlignmentFlag.AlignCenter, "no image")
        if entry.status in ("excluded", "failed"):
            painter.setPen(WARN_COLOUR)
            painter.drawLine(thumb_rect.topLeft(), thumb_rect.bottomRight())
        text = QRect(thumb_rect.right() + 8, rect.top() + 4, rect.width() - THUMB - 26, rect.height() - 8)
        font = QFont(option.font)
        painter.setFont(font)
        painter.setPen(QColor("#c9d1dc"))
        fm = painter.fontMetrics()
        line_h = fm.height() + 2
        painter.drawText(
            text.left(),
            text.top() + fm.ascent(),
            fm.elidedText(entry.title, Qt.TextElideMode.ElideMiddle, text.width()),
        )
        bold = QFont(font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(WARN_COLOUR if entry.status in ("failed", "unusable") else QColor("#ffffff"))
        painter.drawText(
            text.left(),
            text.top() + line_h + fm.ascent(),
            fm.elidedText(entry.line1, Qt.TextElideMode.ElideRight, text.width()),
        )
        if entry.line2:
            painter.setFont(font)
            painter.setPen(MUTED if entry.status == "ok" else WARN_COLOUR)
            painter.drawText(
                text.left(),
                text.top() + 2 * line_h + fm.ascent(),
                fm.elidedText(entry.line2, Qt.TextElideMode.ElideRight, text.width()),
            )
        painter.restore()

    @staticmethod
    def _bar(entry: StripEntry) -> QColor:
        if entry.status == "ok":
            return score_colour(entry.abnormal)
        return QColor("#555d6b")


class FrameStrip(QListWidget):
    """Emits `current_changed(key)`; failed files have keys starting with 'failed:'."""

    current_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("frameStrip")
        self.setItemDelegate(StripDelegate(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setUniformItemSizes(True)
        self.setMinimumWidth(250)
        self.setToolTip(
            "Frames of the exam (Up/Down or J/K to move). Bar colour: green normal-looking → red."
        )
        self.currentItemChanged.connect(self._emit_current)
        self._items: dict[str, QListWidgetItem] = {}

    def clear_frames(self) -> None:
        self.clear()
        self._items.clear()

    def set_entry(self, entry: StripEntry) -> None:
        """Add the entry, or update the row that already has its key (thumbnail kept if none given)."""
        item = self._items.get(entry.key)
        if item is None:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, entry.key)
            self.addItem(item)
            self._items[entry.key] = item
        else:
            old: StripEntry | None = item.data(ENTRY_ROLE)
            if entry.thumb is None and old is not None:
                entry.thumb = old.thumb
        item.setData(ENTRY_ROLE, entry)
        item.setToolTip(f"{entry.title}\n{entry.line1}\n{entry.line2}".strip())

    def add_failed_source(self, source: SourceFile) -> None:
        self.set_entry(
            StripEntry(
                FAILED_PREFIX + source.path,
                source.name,
                "failed: cannot read",
                source.error or "",
                status="failed",
            )
        )

    def entry(self, key: str) -> StripEntry | None:
        item = self._items.get(key)
        return None if item is None else item.data(ENTRY_ROLE)

    def frame_keys(self) -> list[str]:
        return [self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count())]

    def current_key(self) -> str | None:
        item = self.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def select_key(self, key: str) -> None:
        item = self._items.get(key)
        if item is not None:
            self.setCurrentItem(item)

    def step(self, delta: int) -> None:
        if self.count() == 0:
            return
        row = self.currentRow()
        row = 0 if row < 0 else max(0, min(self.count() - 1, row + delta))
        self.setCurrentRow(row)

    def _emit_current(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if current is not None:
            self.current_changed.emit(current.data(Qt.ItemDataRole.UserRole))
