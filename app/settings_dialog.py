"""Settings: compute device, model bundle (bundled or a folder, with its classes, id and model card),
and how video frames are sampled."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from fetalcns_core.bundle import MODEL_CARD, Bundle, BundleError, default_bundle_dir, load_bundle

DEVICES = (("auto", "Automatic (GPU if available)"), ("cpu", "CPU"), ("cuda", "GPU (CUDA)"))


@dataclass
class SettingsChoice:
    device: str = "auto"
    bundle_dir: str = ""  # '' = the bundled model
    every: int = 80
    fps: float | None = None


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def describe_bundle(bundle: Bundle) -> str:
    names = ", ".join(bundle.class_names)
    status = (
        ""
        if bundle.trained
        else "<p style='color:#ff5c5c'><b>UNTRAINED TEST MODEL — results are meaningless</b></p>"
    )
    return (
        f"{status}<b>{bundle.bundle_id}</b><br>{bundle.architecture}, {len(bundle.folds)} folds, "
        f"normal class: {bundle.normal_class}<br>Classes: {names}<br><small>manifest sha256 "
        f"{bundle.sha256[:16]}…</small>"
    )


class SettingsDialog(QDialog):
    def __init__(
        self, choice: SettingsChoice, device_in_use: str | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.resize(640, 600)
        self.device = QComboBox()
        for value, text in DEVICES:
            self.device.addItem(text, value)
        self.device.setCurrentIndex(max(0, self.device.findData(choice.device)))
        gpu = "available" if cuda_available() else "not available on this computer"
        in_use = QLabel(f"In use now: <b>{device_in_use or 'no model loaded'}</b> · CUDA GPU {gpu}")
        in_use.setObjectName("deviceInUse")
        device_box = QGroupBox("Compute device")
        form = QFormLayout(device_box)
        form.addRow("Run the model on", self.device)
        form.addRow(in_use)

        self.bundled = QRadioButton("Bundled model")
        self.folder = QRadioButton("Model bundle folder")
        group = QButtonGroup(self)
        group.addButton(self.bundled)
        group.addButton(self.folder)
        default = default_bundle_dir()
        self.bundled_path = QLabel(str(default) if default else "none installed with this copy of FetalCNS")
        self.bundled.setEnabled(default is not None)
        self.path = QLineEdit(choice.bundle_dir, placeholderText="a folder that holds manifest.json")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.info = QLabel(objectName="bundleInfo")
        self.info.setWordWrap(True)
        self.card = QTextBrowser()
        self.card.setOpenExternalLinks(False)
        self.card.document().setDefaultStyleSheet("h1 { font-size: 16px; } h2 { font-size: 14px; }")
        bundle_box = QGroupBox("Model bundle")
        bl = QVBoxLayout(bundle_box)
        row = QHBoxLayout()
        row.addWidget(self.bundled)
        row.addWidget(self.bundled_path, 1)
        bl.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self.folder)
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        bl.addLayout(row)
        bl.addWidget(self.info)
        bl.addWidget(self.card, 1)
        (self.folder if choice.bundle_dir or default is None else self.bundled).setChecked(True)
        group.buttonToggled.connect(lambda *_: self._show_bundle())
        self.path.editingFinished.connect(self._show_bundle)

        self.every_radio = QRadioButton("Every N-th video frame")
        self.fps_radio = QRadioButton("Frames per second")
        self.every = QSpinBox(minimum=1, maximum=10000, value=choice.every)
        self.every.setToolTip("The study sampled every 80th frame")
        self.fps = QDoubleSpinBox(minimum=0.1, maximum=60.0, decimals=1, value=choice.fps or 1.0)
        (self.fps_radio if choice.fps else self.every_radio).setChecked(True)
        sampling = QGroupBox("Video sampling")
        sl = QFormLayout(sampling)
        sl.addRow(self.every_radio, self.every)
        sl.addRow(self.fps_radio, self.fps)
        sl.addRow(QLabel("Applies to the next analysis."))

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(device_box)
        layout.addWidget(bundle_box, 1)
        layout.addWidget(sampling)
        layout.addWidget(buttons)
        self._show_bundle()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model bundle folder", self.path.text())
        if folder:
            self.path.setText(folder)
            self.folder.setChecked(True)
            self._show_bundle()

    def selected_bundle_dir(self) -> Path | None:
        if self.folder.isChecked():
            return Path(self.path.text()) if self.path.text().strip() else None
        return default_bundle_dir()

    def _show_bundle(self) -> None:
        folder = self.selected_bundle_dir()
        if folder is None:
            self.info.setText("No model bundle chosen. Choose a folder that holds manifest.json.")
            self.card.clear()
            return
        try:
            bundle = load_bundle(folder)
        except BundleError as exc:
            self.info.setText(f"<span style='color:#ff5c5c'>{exc}</span>")
            self.card.clear()
            return
        self.info.setText(describe_bundle(bundle))
        card = bundle.path / MODEL_CARD
        try:
            self.card.setMarkdown(card.read_text(encoding="utf-8"))
        except OSError:
            self.card.setPlainText("This bundle has no model card (MODEL_CARD.md).")

    def choice(self) -> SettingsChoice:
        return SettingsChoice(
            device=self.device.currentData(),
            bundle_dir=self.path.text().strip() if self.folder.isChecked() else "",
            every=self.every.value(),
            fps=self.fps.value() if self.fps_radio.isChecked() else None,
        )
