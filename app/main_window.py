"""The main window: frame strip | viewer | scores, AI suggestion, clinician decision and exam details.

It wires widgets to the `Engine` (fetalcns_core in workers) and to the `ExamSession` (review, autosave).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QProgressBar,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import paths
from app.about import SHORT_NOTICE
from app.actions import build_actions
from app.banners import Banner, MessageBar
from app.details_form import DetailsForm
from app.engine import Engine
from app.exam_panel import ExamPanel
from app.logsetup import SCRUB
from app.prefs import Prefs
from app.review_ops import ReviewOps
from app.review_panel import ReviewPanel
from app.scores import ScoresPanel
from app.session import ExamSession
from app.strip import FAILED_PREFIX, FrameStrip, entry_for
from app.viewer import FrameViewer
from app.window_ops import WindowOps
from fetalcns_core.exam import ExamDetails, ExamFileError, FrameRecord

log = logging.getLogger(__name__)


class MainWindow(WindowOps, ReviewOps, QMainWindow):
    def __init__(self, prefs: Prefs | None = None, log_file: Path | None = None) -> None:
        super().__init__()
        self.prefs = prefs or Prefs()
        self.log_file = log_file
        self.setWindowTitle("FetalCNS")
        self.setAcceptDrops(True)
        self.resize(1600, 1000)
        self.engine = Engine(self)
        self.session = ExamSession()
        self.session.on_saved = self._saved
        self.session.on_save_failed = self.notify
        self.results: dict[str, object] = {}  # frame key -> FrameResult (pixels of this session)
        self.frame_errors: dict[str, str] = {}  # frame key -> why its pixels are not available
        self.pending_paths: list[str] | None = None
        self.current_key: str | None = None
        self._build_widgets()
        self.actions_ = build_actions(self)
        self._connect()
        self.refresh_recent()
        self.load_model()

    # ------------------------------------------------------------------ layout
    def _build_widgets(self) -> None:
        self.viewer = FrameViewer()
        self.untrained = Banner("danger")
        self.no_model = Banner("warning")
        self.messages = MessageBar()
        centre = QWidget(objectName="centre")
        layout = QVBoxLayout(centre)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        for w in (self.untrained, self.no_model, self.messages):
            layout.addWidget(w)
        layout.addWidget(self.viewer, 1)
        self.setCentralWidget(centre)

        self.strip = FrameStrip()
        strip_dock = QDockWidget("Frames", self, objectName="framesDock")
        strip_dock.setWidget(self.strip)
        strip_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, strip_dock)

        self.scores = ScoresPanel()
        self.exam_panel = ExamPanel()
        self.review_panel = ReviewPanel()
        self.review_panel.reviewer.setText(self.prefs.reviewer)
        self.details = DetailsForm()
        review_page = QWidget()
        rl = QVBoxLayout(review_page)
        frame_title = QLabel("AI scores of this frame", objectName="sectionTitle")
        rl.addWidget(frame_title)
        rl.addWidget(self.scores)
        rl.addWidget(self.exam_panel)
        rl.addWidget(self.review_panel)
        rl.addStretch(1)
        self.tabs = QTabWidget(objectName="sideTabs")
        for page, title in ((review_page, "Review"), (self.details, "Exam details")):
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setWidget(page)
            self.tabs.addTab(scroll, title)
        side = QDockWidget("Exam", self, objectName="examDock")
        side.setWidget(self.tabs)
        side.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        side.setMinimumWidth(430)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, side)
        self.resizeDocks([strip_dock, side], [270, 450], Qt.Orientation.Horizontal)

        status = self.statusBar()
        self.notice = QLabel(f"⚠ {SHORT_NOTICE}", objectName="intendedUse")
        self.device_label = QLabel("", objectName="deviceLabel")
        self.progress = QProgressBar(maximumWidth=260)
        self.progress.setFormat("%v / %m frames")
        self.progress.hide()
        status.addPermanentWidget(self.notice)
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.device_label)

    def _connect(self) -> None:
        e = self.engine
        e.ensemble_ready.connect(self._model_ready)
        e.ensemble_failed.connect(self._model_failed)
        e.analysis_progress.connect(self._progress)
        e.analysis_source.connect(self._source)
        e.analysis_frame.connect(self._frame)
        e.analysis_done.connect(self._analysis_done)
        e.analysis_failed.connect(self._analysis_failed)
        e.reload_frame.connect(self._reloaded)
        e.original_ready.connect(self.viewer.set_original)
        e.overlay_ready.connect(self.viewer.set_overlay)
        e.side_failed.connect(self.notify)
        e.report_done.connect(lambda path: self.statusBar().showMessage(f"PDF report written: {path}", 10000))
        self.strip.current_changed.connect(self.show_frame)
        self.viewer.overlay_wanted.connect(self._want_overlay)
        self.viewer.original_wanted.connect(self._want_original)
        rp = self.review_panel
        rp.agree_clicked.connect(self.agree)
        rp.override_chosen.connect(self.override)
        rp.exclude_toggled.connect(lambda _checked: self.toggle_exclude())
        rp.notes_edited.connect(lambda text: self._review(lambda who: self.session.set_notes(who, text)))
        rp.sign_off_clicked.connect(self.sign_off)
        rp.reopen_clicked.connect(self.reopen_review)
        rp.reviewer.editingFinished.connect(lambda: setattr(self.prefs, "reviewer", rp.reviewer_name()))
        self.details.edited.connect(self._details_edited)

    # ------------------------------------------------------------------ opening
    def open_paths(self, paths_: list[str | Path]) -> None:
        """Open a saved exam file, or analyse files / folders as one new exam."""
        items = [str(p) for p in paths_]
        if not items:
            return
        if len(items) == 1 and paths.is_exam_file(items[0]):
            self.open_exam_file(items[0])
        else:
            self.start_analysis(items)

    def start_analysis(self, items: list[str]) -> None:
        if self.engine.analysing:
            self.notify("An analysis is already running: cancel it (Esc) or wait before opening more files.")
            return
        if self.engine.ensemble is None:
            if self.engine.loading:
                self.pending_paths = items
                self.statusBar().showMessage("Loading the model; the analysis starts when it is ready…")
            else:
                self.pending_paths = items
                self.notify(
                    "No model is loaded: choose a model bundle in Settings (Ctrl+,); "
                    "the exam is analysed as soon as the model is loaded."
                )
            return
        self._flush_edits()
        details = self.details.details() if not self.session.has_frames else ExamDetails()
        self._reset_exam(ExamSession())
        self.details.set_details(details)
        self.session.exam.details = details
        bundle = self.engine.ensemble.bundle
        self.viewer.set_classes(list(bundle.class_names))
        self.viewer.clear("Analysing…")
        self.exam_panel.show_exam(None, running=True)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.actions_.cancel.setEnabled(True)
        self._sources_for_recent = items
        log.info("analysis started on %d input(s)", len(items))
        self.engine.analyse(items, self._analysis_settings(), details)

    def open_exam_file(self, path: str | Path) -> None:
        if self.engine.analysing:
            self.notify("An analysis is running: cancel it (Esc) before opening a saved exam.")
            return
        self._flush_edits()
        try:
            session = ExamSession.open(path)
        except ExamFileError as exc:
            self.notify(f"Cannot open the exam file: {exc}")
            return
        self._reset_exam(session)
        exam = session.exam
        self.prefs.add_recent(path)
        self.refresh_recent()
        if exam.bundle:
            self.viewer.set_classes(list(exam.bundle.class_names or exam.bundle.classes))
        for src in exam.sources:
            if src.failed:
                self.strip.add_failed_source(src)
        for record in exam.frames:
            self.strip.set_entry(entry_for(record, exam.bundle, None, exam.review.excluded.get(record.key)))
        same_model = self._same_model(exam)
        if exam.frames and not same_model:
            self.notify(
                "This exam was analysed with another model "
                f"({exam.bundle.bundle_id if exam.bundle else 'unknown'}): its saved scores are shown, "
                "but activation maps need that model (Settings > Model bundle).",
                kind="info",
            )
        self.engine.reload_exam(exam, use_model=same_model)
        self.refresh_exam()
        self._update_banners(exam.bundle.trained if exam.bundle else None)
        if exam.frames:
            self.strip.select_key(exam.frames[0].key)

    def _reset_exam(self, session: ExamSession) -> None:
        self.engine.cancel_reload()
        session.on_saved, session.on_save_failed = self._saved, self.notify
        self.session = session
        self.results.clear()
        self.frame_errors.clear()
        self.current_key = None
        self.strip.clear_frames()
        self.messages.reset()
        self.scores.clear()
        self.details.set_details(session.exam.details)
        self._update_title()

    # ------------------------------------------------------------------ analysis callbacks
    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _source(self, source) -> None:
        if source.failed:
            self.strip.add_failed_source(source)
            self.notify(f"Could not read {source.name}: {source.error}")

    def _frame(self, result) -> None:
        record: FrameRecord = result.record
        self.results[record.key] = result
        bundle = self.engine.ensemble.bundle.info() if self.engine.ensemble else None
        thumb = result.crop.image if result.crop is not None else None
        self.strip.set_entry(entry_for(record, bundle, thumb, None))
        if self.current_key is None:
            self.strip.select_key(record.key)

    def _analysis_done(self, exam) -> None:
        self._analysis_finished()
        self._flush_edits()
        exam.details = self.details.details()
        self.session.exam = exam
        if self.session.save() is not None:
            self.prefs.add_recent(self.session.path)
            self.refresh_recent()
        for key in self.strip.frame_keys():  # refresh rows with the final records (out-of-scope flags ...)
            if not key.startswith(FAILED_PREFIX) and key in self.results:
                self.strip.set_entry(entry_for(exam.frame(key), exam.bundle, None, None))
        if exam.incomplete:
            self.notify(f"The analysis is incomplete: {exam.incomplete}.", kind="info")
        if not exam.frames:
            self.viewer.clear("No frame could be read from these files.")
        log.info("analysis finished: %d frames, incomplete=%s", len(exam.frames), bool(exam.incomplete))
        self.refresh_exam()

    def _analysis_failed(self, message: str) -> None:
        self._analysis_finished()
        self.notify(f"The analysis failed: {message}")
        self.viewer.clear("The analysis failed. See the message above.")
        self.refresh_exam()

    def _analysis_finished(self) -> None:
        self.progress.hide()
        self.actions_.cancel.setEnabled(False)

    def cancel_analysis(self) -> None:
        if self.engine.analysing:
            self.engine.cancel_analysis()
            self.statusBar().showMessage("Cancelling after the current frames…", 5000)

    def _reloaded(self, item) -> None:
        exam = self.session.exam
        record = item[0] if isinstance(item, tuple) else item.record
        if not any(r is record for r in exam.frames):
            return  # a late frame of an exam that is no longer open
        if isinstance(item, tuple):
            error = item[1]
            if not self.frame_errors:
                self.notify(f"Some frames cannot be shown again: {error}", kind="info")
            self.frame_errors[record.key] = error
            if record.key == self.current_key:
                self.show_frame(record.key)
            return
        key = record.key
        self.results[key] = item
        thumb = item.crop.image if item.crop is not None else None
        self.strip.set_entry(entry_for(exam.frame(key), exam.bundle, thumb, exam.review.excluded.get(key)))
        if key == self.current_key:
            self.show_frame(key)

    # ------------------------------------------------------------------ showing a frame
    def show_frame(self, key: str) -> None:
        self.current_key = key
        exam = self.session.exam
        if key.startswith(FAILED_PREFIX):
            entry = self.strip.entry(key)
            self.viewer.clear(f"This file could not be read.\n{entry.line2 if entry else ''}")
            self.scores.clear("No scores: the file could not be read")
            self.refresh_review()
            return
        result = self.results.get(key)
        record = result.record if result is not None else exam.frame(key)
        names = self._class_names()
        self.scores.set_scores(
            names,
            record.probs,
            record.fold_probs,
            "" if record.scored else (record.unusable_reason or "not scored"),
        )
        crop = result.crop if result is not None else None
        prediction = result.prediction if result is not None else None
        top = int(max(range(len(record.probs)), key=record.probs.__getitem__)) if record.probs else 0
        message = ""
        if crop is None:
            message = self.frame_errors.get(key, "Reading the frame…")
        elif not record.usable:
            message = f"Unusable frame: {record.unusable_reason or 'no ultrasound image found'}"
        has_cams = prediction is not None and getattr(prediction, "cams", None) is not None
        self.viewer.set_frame(
            key, None if crop is None else crop.image, record.crop_box, top, has_cams, message
        )
        self.refresh_review()

    def _class_names(self) -> list[str]:
        bundle = self.session.exam.bundle
        if bundle is None and self.engine.ensemble is not None:
            return list(self.engine.ensemble.bundle.class_names)
        return list(bundle.class_names or bundle.classes) if bundle else []

    def _want_overlay(self, key: str, class_index: int, alpha: float) -> None:
        result = self.results.get(key)
        if result is not None and result.crop is not None and result.prediction is not None:
            self.engine.request_overlay(key, result.crop, result.prediction, class_index, alpha)

    def _want_original(self, key: str) -> None:
        exam = self.session.exam
        record = self.results[key].record if key in self.results else exam.frame(key)
        source = next((s for s in exam.sources if s.path == record.source_path and not s.failed), None)
        self.engine.request_original(key, source, record)

    # ------------------------------------------------------------------ refresh
    def refresh_exam(self) -> None:
        self.exam_panel.show_exam(self.session.exam if self.session.has_frames else None)
        self.refresh_review()
        self._update_title()

    def refresh_review(self) -> None:
        exam = self.session.exam
        self.review_panel.show_review(exam if self.session.has_frames else None, self.current_key)
        self.details.set_locked(self.session.locked)
        SCRUB.set_secrets(
            [
                exam.details.exam_id,
                exam.details.patient_id,
                exam.details.patient_name,
                exam.details.notes,
                exam.review.notes,
            ]
        )
        has = self.session.has_frames
        for action in (self.actions_.save_as, self.actions_.export_pdf):
            action.setEnabled(has)

    def _update_title(self) -> None:
        name = self.session.path.name if self.session.path else "new exam"
        signed = " — signed" if self.session.locked else ""
        self.setWindowTitle(f"FetalCNS — {name}{signed}  ·  review aid, not a diagnosis")

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.open_paths(files)

    def closeEvent(self, event) -> None:  # noqa: N802
        self._flush_edits()
        self.engine.cancel_analysis()
        self.engine.cancel_reload()
        self.engine.runner.wait(10000)
        self.prefs.reviewer = self.review_panel.reviewer_name()
        self.prefs.sync()
        super().closeEvent(event)
