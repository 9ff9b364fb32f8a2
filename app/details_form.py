"""The exam details form: ids, gestational age, biometry as in the study's Table II, notes.

Biometry is entered in millimetres and, optionally, as the deviation from the reference in SD (the way
Table II reports it, e.g. "BPD(-1.4SD)"). Every field is optional.
"""

from __future__ import annotations

import copy

from PySide6.QtCore import QDate, QTimer, Signal
from PySide6.QtWidgets import (
    QDateEdit,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from fetalcns_core.exam import ExamDetails

BIOMETRY = (
    ("BPD", "Biparietal diameter"),
    ("HC", "Head circumference"),
    ("AC", "Abdominal circumference"),
    ("FL", "Femur length"),
    ("CRL", "Crown-rump length"),
    ("TCD", "Cerebellar diameter"),
)
SD_UNSET = -10.0
NO_DATE = QDate(2000, 1, 1)


class DetailsForm(QGroupBox):
    """Emits `edited(ExamDetails)` a moment after the user changes a field."""

    edited = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Exam details", parent)
        self.setObjectName("detailsForm")
        self._base = ExamDetails()
        self._loading = False
        self._timer = QTimer(self, singleShot=True, interval=500)
        self._timer.timeout.connect(self.flush)
        self.exam_id = QLineEdit(placeholderText="optional")
        self.patient_id = QLineEdit(placeholderText="optional")
        self.exam_date = QDateEdit(calendarPopup=True, displayFormat="yyyy-MM-dd")
        self.exam_date.setMinimumDate(NO_DATE)
        self.exam_date.setSpecialValueText("—")
        self.ga_weeks = QSpinBox(minimum=0, maximum=45, specialValueText="—", suffix=" w")
        self.ga_days = QSpinBox(minimum=0, maximum=6, suffix=" d")
        self.mm: dict[str, QDoubleSpinBox] = {}
        self.sd: dict[str, QDoubleSpinBox] = {}
        self.notes = QPlainTextEdit(placeholderText="Free notes on the exam")
        self.notes.setMaximumHeight(60)

        form = QFormLayout()
        form.addRow("Exam id", self.exam_id)
        form.addRow("Patient id", self.patient_id)
        form.addRow("Exam date", self.exam_date)
        ga = QHBoxLayout()
        ga.addWidget(self.ga_weeks)
        ga.addWidget(self.ga_days)
        ga.addStretch(1)
        form.addRow("Gestational age", ga)
        grid = QGridLayout()
        grid.addWidget(QLabel("Biometry"), 0, 0)
        grid.addWidget(QLabel("mm"), 0, 1)
        grid.addWidget(QLabel("SD"), 0, 2)
        for row, (key, name) in enumerate(BIOMETRY, start=1):
            label = QLabel(key)
            label.setToolTip(name)
            mm = QDoubleSpinBox(minimum=0.0, maximum=500.0, decimals=1, specialValueText="—")
            mm.setToolTip(f"{name} in millimetres")
            sd = QDoubleSpinBox(
                minimum=SD_UNSET, maximum=9.9, decimals=1, singleStep=0.1, specialValueText="—"
            )
            sd.setToolTip(f"{name}: deviation from the reference, in SD (as in Table II)")
            sd.setValue(SD_UNSET)
            self.mm[key], self.sd[key] = mm, sd
            grid.addWidget(label, row, 0)
            grid.addWidget(mm, row, 1)
            grid.addWidget(sd, row, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(grid)
        layout.addWidget(self.notes)
        layout.addStretch(1)
        for w in (self.exam_id, self.patient_id):
            w.textEdited.connect(self._changed)
        for w in (self.ga_weeks, self.ga_days, *self.mm.values(), *self.sd.values()):
            w.valueChanged.connect(self._changed)
        self.exam_date.dateChanged.connect(self._changed)
        self.notes.textChanged.connect(self._changed)

    def _changed(self, *_args: object) -> None:
        if not self._loading:
            self._timer.start()

    def flush(self) -> None:
        """Report pending edits now."""
        if self._loading:
            return
        self._timer.stop()
        details = self.details()
        if details != self._base:
            self._base = copy.deepcopy(details)
            self.edited.emit(details)

    def details(self) -> ExamDetails:
        d = copy.deepcopy(self._base)
        d.exam_id = self.exam_id.text().strip()
        d.patient_id = self.patient_id.text().strip()
        date = self.exam_date.date()
        d.exam_date = "" if date == NO_DATE else date.toString("yyyy-MM-dd")
        d.ga_weeks = self.ga_weeks.value() or None
        d.ga_days = self.ga_days.value() if d.ga_weeks is not None else None
        d.biometry_mm = {k: round(w.value(), 1) for k, w in self.mm.items() if w.value() > 0}
        d.biometry_sd = {k: round(w.value(), 1) for k, w in self.sd.items() if w.value() > SD_UNSET}
        d.notes = self.notes.toPlainText()
        return d

    def set_details(self, details: ExamDetails) -> None:
        self._loading = True
        try:
            self._timer.stop()
            self._base = copy.deepcopy(details)
            self.exam_id.setText(details.exam_id)
            self.patient_id.setText(details.patient_id)
            date = QDate.fromString(details.exam_date, "yyyy-MM-dd") if details.exam_date else NO_DATE
            self.exam_date.setDate(date if date.isValid() else NO_DATE)
            self.ga_weeks.setValue(details.ga_weeks or 0)
            self.ga_days.setValue(details.ga_days or 0)
            for k, w in self.mm.items():
                w.setValue(float(details.biometry_mm.get(k, 0.0)))
            for k, w in self.sd.items():
                w.setValue(float(details.biometry_sd.get(k, SD_UNSET)))
            if self.notes.toPlainText() != details.notes:
                self.notes.setPlainText(details.notes)
        finally:
            self._loading = False

    def set_locked(self, locked: bool) -> None:
        for w in (self.exam_id, self.patient_id, self.notes):
            w.setReadOnly(locked)
        for w in (self.exam_date, self.ga_weeks, self.ga_days, *self.mm.values(), *self.sd.values()):
            w.setReadOnly(locked)
        self.setToolTip("Signed off: reopen the review to edit the details" if locked else "")
