"""The AI's suggestion for the whole exam, labelled as such and styled apart from the clinician's decision."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QProgressBar, QVBoxLayout, QWidget

from app.qtutil import score_colour
from fetalcns_core.exam import Exam


def class_label(exam: Exam, cls: str | None) -> str:
    """A class's display name from the exam's bundle info."""
    if cls is None:
        return "—"
    bundle = exam.bundle
    if bundle and cls in bundle.classes and bundle.class_names:
        return bundle.class_names[bundle.classes.index(cls)]
    return cls


class ExamPanel(QGroupBox):
    """Top class and probability, normal-vs-abnormal score, fold agreement and frame support."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("AI suggestion — not a diagnosis", parent)
        self.setObjectName("aiPanel")
        self.top = QLabel(objectName="aiTopClass")
        self.top.setWordWrap(True)
        self.prob = QLabel(objectName="aiTopProb")
        self.abnormal = QProgressBar(objectName="abnormalBar")
        self.abnormal.setRange(0, 100)
        self.abnormal.setFormat("abnormal %p%")
        self.abnormal.setToolTip("Normal-vs-abnormal score: 1 − P(normal), mean over the used frames")
        self.agreement = QLabel()
        self.support = QLabel()
        self.frames = QLabel()
        self.majority = QLabel()
        self.warning = QLabel(objectName="aiWarning")
        self.warning.setWordWrap(True)
        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        rows = (
            ("Folds agree", self.agreement),
            ("Frames supporting", self.support),
            ("Frame vote", self.majority),
            ("Frames", self.frames),
        )
        for r, (name, widget) in enumerate(rows):
            label = QLabel(name)
            label.setObjectName("fieldName")
            grid.addWidget(label, r, 0)
            grid.addWidget(widget, r, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.top)
        layout.addWidget(self.prob)
        layout.addWidget(self.abnormal)
        layout.addLayout(grid)
        layout.addWidget(self.warning)
        self.show_exam(None)

    def show_exam(self, exam: Exam | None, running: bool = False) -> None:
        diagnosis = exam.diagnosis if exam else None
        for w in (self.agreement, self.support, self.frames, self.majority):
            w.setText("—")
        self.warning.hide()
        if diagnosis is None:
            self.top.setText("Analysing…" if running else "No suggestion")
            self.prob.setText(
                "" if running or exam is None or not exam.frames else "no frame could be scored"
            )
            self.abnormal.setValue(0)
            self.abnormal.setFormat("no score")
            self.abnormal.setEnabled(False)
            if exam is not None and exam.incomplete:
                self._warn(f"Incomplete: {exam.incomplete}")
            return
        self.abnormal.setEnabled(True)
        self.abnormal.setFormat("abnormal %p%")
        self.top.setText(class_label(exam, diagnosis.top_class))
        self.prob.setText(
            f"probability {100 * diagnosis.top_prob:.0f}% (mean of {diagnosis.n_frames_used} frames)"
        )
        score = int(round(100 * diagnosis.abnormal_score))
        self.abnormal.setValue(score)
        self.abnormal.setStyleSheet(
            f"QProgressBar::chunk {{ background: {score_colour(diagnosis.abnormal_score).name()}; }}"
        )
        n_folds = next((len(f.fold_probs) for f in exam.frames if f.fold_probs), 0)
        agree = round(diagnosis.fold_agreement * n_folds) if n_folds else None
        self.agreement.setText(
            f"{agree} of {n_folds} ({100 * diagnosis.fold_agreement:.0f}%)"
            if agree is not None
            else f"{100 * diagnosis.fold_agreement:.0f}%"
        )
        self.support.setText(f"{diagnosis.n_frames_support} of {diagnosis.n_frames_used} used frames")
        self.majority.setText(class_label(exam, diagnosis.majority_class))
        self.frames.setText(
            f"{diagnosis.n_frames_used} used · {diagnosis.n_frames_unusable} unusable · "
            f"{diagnosis.n_frames_excluded} excluded"
        )
        notes = []
        if exam.incomplete:
            notes.append(f"Incomplete: {exam.incomplete}")
        if diagnosis.majority_class != diagnosis.top_class:
            notes.append("The frames' vote differs from the mean: look at the frames.")
        if diagnosis.fold_agreement < 1.0:
            notes.append("The folds disagree: treat this suggestion with extra care.")
        if any(f.out_of_scope for f in exam.frames):
            notes.append("Some frames look unlike the training images (out of scope).")
        if notes:
            self._warn("\n".join(notes))

    def _warn(self, text: str) -> None:
        self.warning.setText(text)
        self.warning.setAlignment(Qt.AlignmentFlag.AlignLeft)
        self.warning.show()
