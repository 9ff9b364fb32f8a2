"""The clinician's decision: agree or override, exclude frames, notes, sign-off, and the audit trail.

The panel only shows the review and reports what the user asks; the window applies it through
`ExamSession`, which audits and autosaves every change.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.exam_panel import class_label
from fetalcns_core.exam import Exam


def short_time(iso: str | None) -> str:
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


class ReviewPanel(QGroupBox):
    agree_clicked = Signal()
    override_chosen = Signal(str)
    exclude_toggled = Signal(bool)
    notes_edited = Signal(str)
    sign_off_clicked = Signal()
    reopen_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Clinician decision", parent)
        self.setObjectName("clinicianPanel")
        self.reviewer = QLineEdit(placeholderText="Your name (for the audit trail and sign-off)")
        self.decision = QLabel("No decision yet", objectName="clinicianDecision")
        self.decision.setWordWrap(True)
        self.agree_button = QPushButton("Agree with AI")
        self.agree_button.setToolTip("Take the AI suggestion as your decision (A)")
        self.agree_button.clicked.connect(self.agree_clicked)
        self.override_class = QComboBox()
        self.override_class.setToolTip("The class you decide on, if it differs from the suggestion")
        self.override_button = QPushButton("Set class")
        self.override_button.clicked.connect(
            lambda: self.override_chosen.emit(self.override_class.currentData())
        )
        self.exclude_button = QPushButton("Exclude frame (X)")
        self.exclude_button.setCheckable(True)
        self.exclude_button.setToolTip("Leave the current frame out of the exam suggestion (X)")
        self.exclude_button.clicked.connect(self.exclude_toggled)
        self.notes = QPlainTextEdit(placeholderText="Review notes")
        self.notes.setMaximumHeight(80)
        self._notes_timer = QTimer(self, singleShot=True, interval=800)
        self._notes_timer.timeout.connect(self.flush_notes)
        self.notes.textChanged.connect(self._notes_timer.start)
        self._shown_notes = ""
        self.sign_button = QPushButton("Sign off", objectName="signOff")
        self.sign_button.clicked.connect(self.sign_off_clicked)
        self.reopen_button = QPushButton("Reopen review")
        self.reopen_button.clicked.connect(self.reopen_clicked)
        self.status = QLabel(objectName="signStatus")
        self.status.setWordWrap(True)
        self.history = QListWidget(objectName="auditList")
        self.history.setMaximumHeight(120)
        self.history.setWordWrap(True)
        self.history.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.history.setToolTip("Every change to the review, with who and when (saved in the exam file)")

        grid = QGridLayout()
        grid.addWidget(QLabel("Reviewer"), 0, 0)
        grid.addWidget(self.reviewer, 0, 1, 1, 2)
        grid.addWidget(self.agree_button, 1, 0)
        grid.addWidget(self.override_class, 1, 1)
        grid.addWidget(self.override_button, 1, 2)
        grid.setColumnStretch(1, 1)
        sign_row = QHBoxLayout()
        sign_row.addWidget(self.exclude_button)
        sign_row.addStretch(1)
        sign_row.addWidget(self.reopen_button)
        sign_row.addWidget(self.sign_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.decision)
        layout.addLayout(grid)
        layout.addWidget(self.notes)
        layout.addLayout(sign_row)
        layout.addWidget(self.status)
        history = QLabel("History")
        history.setObjectName("fieldName")
        layout.addWidget(history)
        layout.addWidget(self.history)
        self.show_review(None, None)

    def reviewer_name(self) -> str:
        return self.reviewer.text().strip()

    def flush_notes(self) -> None:
        """Report edited notes now (also called on a timer while typing)."""
        self._notes_timer.stop()
        text = self.notes.toPlainText()
        if text != self._shown_notes:
            self._shown_notes = text
            self.notes_edited.emit(text)

    def show_review(self, exam: Exam | None, frame_key: str | None) -> None:
        has_exam = exam is not None and bool(exam.frames)
        review = exam.review if exam else None
        locked = bool(review and review.signed)
        editable = has_exam and not locked
        if exam is not None and exam.bundle:
            current = self.override_class.currentData()
            self.override_class.blockSignals(True)
            self.override_class.clear()
            for cls in exam.bundle.classes:
                self.override_class.addItem(class_label(exam, cls), cls)
            if review and review.decided_class:
                current = review.decided_class
            if current is not None and self.override_class.findData(current) >= 0:
                self.override_class.setCurrentIndex(self.override_class.findData(current))
            self.override_class.blockSignals(False)
        self.agree_button.setEnabled(editable and exam.diagnosis is not None)
        self.override_class.setEnabled(editable)
        self.override_button.setEnabled(editable)
        frame_ok = editable and frame_key is not None and not frame_key.startswith("failed:")
        self.exclude_button.setEnabled(frame_ok)
        excluded = bool(review and frame_key and frame_key in review.excluded)
        self.exclude_button.setChecked(excluded)
        self.exclude_button.setText("Restore frame (X)" if excluded else "Exclude frame (X)")
        self.notes.setReadOnly(not editable)
        typing = self.notes.hasFocus() or self._notes_timer.isActive()
        if review is not None and self.notes.toPlainText() != review.notes and not typing:
            self.notes.blockSignals(True)
            self.notes.setPlainText(review.notes)
            self.notes.blockSignals(False)
            self._shown_notes = review.notes
        self.sign_button.setEnabled(editable and review is not None and review.decision is not None)
        self.reopen_button.setVisible(locked)
        self.sign_button.setVisible(not locked)
        self._show_decision(exam)
        self._show_status(exam)
        self.history.clear()
        for entry in reversed(review.audit if review else []):
            self.history.addItem(f"{short_time(entry.when)}  {entry.who}: {entry.what}")

    def _show_decision(self, exam: Exam | None) -> None:
        review = exam.review if exam else None
        if review is None or review.decision is None:
            self.decision.setText("No decision yet")
            self.decision.setProperty("state", "none")
        else:
            how = "agrees with the AI" if review.decision == "agree" else "overrides the AI"
            self.decision.setText(f"Decision: {class_label(exam, review.decided_class)}  ({how})")
            self.decision.setProperty("state", "set")
        self.decision.style().unpolish(self.decision)
        self.decision.style().polish(self.decision)

    def _show_status(self, exam: Exam | None) -> None:
        review = exam.review if exam else None
        if review is not None and review.signed:
            self.status.setText(
                f"Signed off by {review.signed_by} on {short_time(review.signed_at)} — locked. "
                "Reopen to change it (the reopening is recorded)."
            )
            self.status.setProperty("state", "signed")
        else:
            self.status.setText("Not signed off" if exam is not None and exam.frames else "")
            self.status.setProperty("state", "open")
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
