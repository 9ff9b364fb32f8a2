"""About / intended use: shown on first start and from Help > About."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from fetalcns_core import INTENDED_USE, __version__

SHORT_NOTICE = "Review aid for qualified clinicians · research use · not a diagnosis"

SHORTCUTS = (
    ("Ctrl+O", "open images, video or DICOM files"),
    ("Ctrl+Shift+F", "open a folder as one exam"),
    ("Ctrl+Shift+O", "open a saved exam"),
    ("J / K, Up / Down", "next / previous frame"),
    ("O", "Grad-CAM overlay on / off"),
    ("C", "cropped / original view"),
    ("+ / − / 0", "zoom in / out / fit"),
    ("X", "exclude or restore the current frame"),
    ("A", "agree with the AI suggestion"),
    ("Esc", "cancel the running analysis"),
    ("Ctrl+E", "export the PDF report"),
)


def about_html(log_file: Path | None = None) -> str:
    keys = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in SHORTCUTS)
    log_line = f"<p><small>Log file: {log_file}</small></p>" if log_file else ""
    return (
        f"<h2>FetalCNS {__version__}</h2>"
        f"<p style='font-size:14px'><b>Intended use.</b> {INTENDED_USE} It is not a medical device.</p>"
        "<p>It shows an AI model's per-frame class probabilities, Grad-CAM maps of where the model looked, "
        "and an exam-level suggestion. The clinician's decision is recorded separately and signed.</p>"
        f"<h3>Keyboard</h3><table cellspacing='4'>{keys}</table>"
        "<p><small>Method: Qi et al., multi-center study on deep learning-assisted detection and "
        "classification of fetal CNS anomalies using ultrasound. Licence: Apache-2.0. Model bundles carry "
        "their own data licence and attribution in their model card.</small></p>"
        f"{log_line}"
    )


class AboutDialog(QDialog):
    def __init__(
        self, log_file: Path | None = None, first_start: bool = False, parent: QWidget | None = None
    ):
        super().__init__(parent)
        self.setWindowTitle("About FetalCNS — intended use")
        self.setMinimumWidth(560)
        text = QLabel(about_html(log_file))
        text.setWordWrap(True)
        text.setObjectName("aboutText")
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        self.understood = QCheckBox("I understand: a review aid for qualified clinicians, not a diagnosis")
        self.understood.setVisible(first_start)
        layout.addWidget(self.understood)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        buttons.accepted.connect(self.accept)
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        if first_start:
            ok.setEnabled(False)
            self.understood.toggled.connect(ok.setEnabled)
        layout.addWidget(buttons)
