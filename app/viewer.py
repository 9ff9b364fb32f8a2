"""The frame viewer: zoom and pan, original or cropped view, the crop box, and the Grad-CAM overlay.

The viewer only displays images. Overlays and original frames are made by fetalcns_core in a worker:
the viewer asks for them with `overlay_wanted(key, class_index, alpha)` and `original_wanted(key)`, and
shows what comes back through `set_overlay` / `set_original` if it still matches what is on screen.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QWheelEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.qtutil import AI_COLOUR, pixmap_from_rgb
from fetalcns_core.exam import Box


class ImageView(QGraphicsView):
    """A dark canvas: wheel zooms about the cursor, dragging pans; keeps the image fitted until zoomed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageView")
        self.scene_ = QGraphicsScene(self)
        self.setScene(self.scene_)
        self.setBackgroundBrush(QBrush(QColor("#000000")))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.base = QGraphicsPixmapItem()
        self.base.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.overlay = QGraphicsPixmapItem()
        self.overlay.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.box = QGraphicsRectItem()
        pen = QPen(QColor("#ffd400"))
        pen.setCosmetic(True)
        pen.setWidth(2)
        pen.setStyle(Qt.PenStyle.DashLine)
        self.box.setPen(pen)
        for item in (self.base, self.overlay, self.box):
            self.scene_.addItem(item)
        self.fitted = True

    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        self.fitted = True
        rect = self.base.boundingRect()
        if not rect.isEmpty():
            self.scene_.setSceneRect(rect)
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)

    def zoom_by(self, factor: float) -> None:
        new = self.zoom * factor
        if 0.05 <= new <= 40:
            self.fitted = False
            self.scale(factor, factor)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        self.zoom_by(1.25 if event.angleDelta().y() > 0 else 0.8)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.fitted:
            self.fit()


class FrameViewer(QWidget):
    overlay_wanted = Signal(str, int, float)
    original_wanted = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key: str | None = None
        self._crop: np.ndarray | None = None
        self._original: np.ndarray | None = None
        self._box: Box | None = None
        self._has_cams = False
        self._top = 0
        self._overlay_for: tuple[str, int, float] | None = None
        self._requested: tuple[str, int, float] | None = None
        self.view = ImageView(self)
        self.view.setMinimumSize(320, 240)
        self.message = QLabel(self.view)
        self.message.setObjectName("viewerMessage")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.caption = QLabel(self.view)
        self.caption.setObjectName("viewerCaption")

        self.cropped_button = QToolButton(text="Cropped", checkable=True, checked=True)
        self.original_button = QToolButton(text="Original", checkable=True)
        self.cropped_button.setToolTip("Show the frame cut to the ultrasound image, as the model saw it (C)")
        self.original_button.setToolTip("Show the whole frame as it is in the file, with the crop box (C)")
        group = QButtonGroup(self)
        group.addButton(self.cropped_button)
        group.addButton(self.original_button)
        group.buttonToggled.connect(lambda _button, checked: checked and self._refresh())
        self.box_check = QCheckBox("Crop box", checked=True)
        self.box_check.toggled.connect(lambda *_: self._refresh())
        self.overlay_check = QCheckBox("CAM overlay (O)", checked=True)
        self.overlay_check.setToolTip("Grad-CAM: where the model looked for the chosen class (O)")
        self.overlay_check.toggled.connect(lambda *_: self._refresh())
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(5, 95)
        self.opacity.setValue(35)
        self.opacity.setFixedWidth(90)
        self.opacity.setToolTip("Overlay opacity")
        self._opacity_timer = QTimer(self, singleShot=True, interval=80)
        self._opacity_timer.timeout.connect(self._refresh)
        self.opacity.valueChanged.connect(lambda *_: self._opacity_timer.start())
        self.cam_class = QComboBox()
        self.cam_class.setToolTip("Which class's activation map is shown (default: the frame's top class)")
        self.cam_class.setMinimumContentsLength(12)
        self.cam_class.currentIndexChanged.connect(lambda *_: self._refresh())
        legend = QLabel("low → high")
        legend.setToolTip("Colour scale of the activation map: low to high attention")
        legend.setObjectName("camLegend")

        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 4)
        for w in (self.cropped_button, self.original_button, self.box_check, self.overlay_check):
            bar.addWidget(w)
        bar.addWidget(QLabel("Opacity"))
        bar.addWidget(self.opacity)
        bar.addWidget(QLabel("Class"))
        bar.addWidget(self.cam_class)
        bar.addWidget(legend)
        bar.addStretch(1)
        fit = QToolButton(text="Fit", toolTip="Fit to window (0). Zoom: mouse wheel or + / −; pan: drag")
        fit.clicked.connect(self.view.fit)
        bar.addWidget(fit)
        toolbar = QWidget(objectName="viewerToolbar")
        toolbar.setLayout(bar)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(toolbar)
        layout.addWidget(self.view, 1)
        self.clear("Open images, a video, DICOM files or a folder (Ctrl+O), or drop them here.")

    # ------------------------------------------------------------------ state
    @property
    def mode(self) -> str:
        return "original" if self.original_button.isChecked() else "cropped"

    def set_mode(self, mode: str) -> None:
        (self.original_button if mode == "original" else self.cropped_button).setChecked(True)

    def toggle_mode(self) -> None:
        self.set_mode("cropped" if self.mode == "original" else "original")

    @property
    def alpha(self) -> float:
        return self.opacity.value() / 100.0

    def cam_index(self) -> int:
        """The class whose CAM is shown: the combo's choice, or the frame's top class on 'auto'."""
        data = self.cam_class.currentData()
        return self._top if data is None or data < 0 else int(data)

    def set_classes(self, names: list[str]) -> None:
        self.cam_class.blockSignals(True)
        self.cam_class.clear()
        self.cam_class.addItem("Top class (auto)", -1)
        for k, name in enumerate(names):
            self.cam_class.addItem(name, k)
        self.cam_class.blockSignals(False)

    def clear(self, message: str = "") -> None:
        self.key, self._crop, self._original, self._box, self._overlay_for = None, None, None, None, None
        self._requested = None
        self._has_cams = False
        self._show_message(message)
        self.view.base.setPixmap(pixmap_from_rgb(np.zeros((1, 1, 3), np.uint8)))
        self.view.overlay.hide()
        self.view.box.hide()
        self.caption.hide()

    def set_frame(
        self, key: str, crop: np.ndarray | None, box: Box | None, top: int, has_cams: bool, message: str = ""
    ) -> None:
        """Show a new frame (its cropped image); overlay and original follow by request."""
        same = key == self.key
        self.key, self._crop, self._box, self._top, self._has_cams = key, crop, box, top, has_cams
        if not same or not has_cams:
            self._requested = None
        if not same:
            self._original = None
            self._overlay_for = None
            self.view.overlay.setPixmap(pixmap_from_rgb(np.zeros((1, 1, 3), np.uint8)))
            self.view.fitted = True
        self._show_message(message)
        self._refresh()

    def set_original(self, key: str, image: np.ndarray) -> None:
        if key == self.key:
            self._original = image
            self._refresh()

    def set_overlay(self, key: str, class_index: int, alpha: float, image: np.ndarray) -> None:
        if key != self.key:
            return
        self._overlay_for = (key, class_index, alpha)
        self.view.overlay.setPixmap(pixmap_from_rgb(image))
        self._refresh()

    def overlay_shown(self) -> bool:
        return self.view.overlay.isVisible() and self._overlay_for is not None

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))
        self.message.resize(self.view.width(), 80)
        self.message.move(0, max(0, self.view.height() // 2 - 40))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._show_message("" if self.message.isHidden() else self.message.text())

    # ------------------------------------------------------------------ drawing
    def _refresh(self) -> None:
        if self.key is None:
            return
        original = self.mode == "original"
        if original and self._original is None:
            self.original_wanted.emit(self.key)
        image = self._original if original and self._original is not None else self._crop
        base_is_original = image is self._original and self._original is not None
        if image is None:
            self.view.base.setPixmap(pixmap_from_rgb(np.zeros((8, 8, 3), np.uint8)))
        else:
            self.view.base.setPixmap(pixmap_from_rgb(image))
        offset = (self._box.x0, self._box.y0) if base_is_original and self._box else (0, 0)
        want = self.overlay_check.isChecked() and self._has_cams and self._crop is not None
        wanted = (self.key, self.cam_index(), self.alpha)
        if want and self._overlay_for != wanted and self._requested != wanted:
            self._requested = wanted
            self.overlay_wanted.emit(*wanted)
        fresh = self._overlay_for is not None and self._overlay_for[:2] == wanted[:2]
        self.view.overlay.setPos(*offset)
        self.view.overlay.setVisible(want and fresh)
        if base_is_original and self._box is not None and self.box_check.isChecked():
            self.view.box.setRect(QRectF(self._box.x0, self._box.y0, self._box.width, self._box.height))
            self.view.box.show()
        else:
            self.view.box.hide()
        self._update_caption(want and fresh)
        if self.view.fitted:
            self.view.fit()

    def _update_caption(self, overlay: bool) -> None:
        parts = [
            "Original frame" if self.mode == "original" and self._original is not None else "Cropped frame"
        ]
        if overlay:
            parts.append(
                f"Grad-CAM: {self.cam_class.itemText(self.cam_class.findData(self.cam_index()))}"
                " — where the AI looked, not a lesion outline"
            )
        elif self.overlay_check.isChecked() and not self._has_cams:
            parts.append("no activation map for this frame")
        self.caption.setText("   ·   ".join(parts))
        self.caption.setStyleSheet(f"color: {AI_COLOUR.name() if overlay else '#c9d1dc'};")
        self.caption.adjustSize()
        self.caption.move(8, 6)
        self.caption.show()
