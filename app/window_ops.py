"""The main window's file, model, settings and help operations (a mixin of `MainWindow`)."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox

from app import paths
from app.about import AboutDialog
from fetalcns_core.bundle import default_bundle_dir
from fetalcns_core.exam import AnalysisSettings
from fetalcns_core.pipeline import frame_image_provider, overlay
from fetalcns_core.report import build_report

log = logging.getLogger(__name__)

UNTRAINED_TEXT = "UNTRAINED TEST MODEL — results are meaningless. For software tests only."
FILE_FILTER = (
    "Ultrasound (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.avi *.mp4 *.mov *.mkv *.wmv *.dcm *.dicom);;"
    "All files (*)"
)
EXAM_FILTER = f"FetalCNS exam (*{paths.EXAM_SUFFIX});;All files (*)"


class WindowOps:
    """Needs the attributes MainWindow sets: prefs, engine, session, banners, viewer, strip, messages ..."""

    # ------------------------------------------------------------------ model
    def bundle_dir(self) -> Path | None:
        return Path(self.prefs.bundle_dir) if self.prefs.bundle_dir else default_bundle_dir()

    def load_model(self) -> None:
        folder = self.bundle_dir()
        if folder is None:
            self.no_model.show_text(
                "No model bundle is installed with this copy of FetalCNS. Choose a bundle folder to "
                "analyse exams (saved exams can still be opened).",
                "Choose model bundle…",
                self.open_settings,
            )
            self.device_label.setText("no model")
            return
        self.no_model.hide()
        self.device_label.setText("loading model…")
        self.engine.load_ensemble(folder, self.prefs.device)

    def _model_ready(self, ensemble) -> None:
        bundle = ensemble.bundle
        self.device_label.setText(
            f"{bundle.bundle_id} · {len(bundle.folds)} folds · {ensemble.device.upper()}"
        )
        self.device_label.setToolTip(f"Model bundle {bundle.path}\nmanifest sha256 {bundle.sha256}")
        self._update_banners(bundle.trained)
        if not self.session.has_frames:
            self.viewer.set_classes(list(bundle.class_names))
        pending, self.pending_paths = self.pending_paths, None
        if pending:
            self.start_analysis(pending)

    def _model_failed(self, message: str) -> None:
        self.device_label.setText("no model")
        self.no_model.show_text(
            f"The model could not be loaded: {message}", "Choose model bundle…", self.open_settings
        )
        if self.pending_paths:
            self.pending_paths = None
            self.notify("The analysis did not start because no model could be loaded.")

    def _update_banners(self, trained: bool | None) -> None:
        """The untrained banner follows the exam's model when an exam is open, else the loaded model's."""
        exam_bundle = self.session.exam.bundle if self.session.has_frames else None
        if exam_bundle is not None:
            trained = exam_bundle.trained
        elif self.engine.ensemble is not None:
            trained = self.engine.ensemble.bundle.trained
        if trained is False:
            self.untrained.show_text(f"⚠ {UNTRAINED_TEXT}")
        else:
            self.untrained.hide()

    def _analysis_settings(self) -> AnalysisSettings:
        return AnalysisSettings(every=self.prefs.every, fps=self.prefs.fps, device=self.prefs.device)

    # ------------------------------------------------------------------ files
    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open ultrasound images, videos or DICOM", "", FILE_FILTER
        )
        if files:
            self.open_paths(files)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder as one exam")
        if folder:
            self.open_paths([folder])

    def choose_exam_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a saved exam", str(paths.exams_dir()), EXAM_FILTER)
        if path:
            self.open_exam_file(path)

    def open_sample(self) -> None:
        sample = paths.sample_exam_dir()
        if sample.is_dir():
            self.open_paths([sample])
        else:
            self.notify(f"The sample exam is not installed (looked in {sample}).")

    def refresh_recent(self) -> None:
        menu = self.actions_.recent
        menu.clear()
        recent = [p for p in self.prefs.recent if Path(p).exists()]
        for path in recent:
            action = menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda _checked=False, p=path: self.open_paths([p]))
        if recent:
            menu.addSeparator()
            menu.addAction("Clear list", self._clear_recent)
        menu.setEnabled(bool(recent))

    def _clear_recent(self) -> None:
        self.prefs.clear_recent()
        self.refresh_recent()

    def save_as(self) -> None:
        if not self.session.has_frames:
            return
        start = str(self.session.path or paths.default_exam_path(self.session.exam.details.exam_id))
        path, _ = QFileDialog.getSaveFileName(self, "Save exam as", start, EXAM_FILTER)
        if path:
            if not paths.is_exam_file(path):
                path = str(Path(path).with_suffix("")) + paths.EXAM_SUFFIX
            if self.session.save(Path(path)) is not None:
                self.prefs.add_recent(path)
                self.refresh_recent()
                self._update_title()

    def _saved(self, path: Path) -> None:
        self.statusBar().showMessage(f"Saved {path.name}", 4000)
        self.statusBar().setToolTip(f"Exam file: {path}")

    def export_pdf(self, out_path: str | Path | None = None) -> None:
        if not self.session.has_frames:
            return
        if self.engine.analysing:
            self.notify(
                "Wait for the analysis to finish (or cancel it) before exporting the report.", kind="info"
            )
            return
        if out_path is None:
            stem = self.session.path.name.removesuffix(paths.EXAM_SUFFIX) if self.session.path else "exam"
            start = str(
                (self.session.path.parent if self.session.path else paths.exams_dir()) / f"{stem}.pdf"
            )
            out_path, _ = QFileDialog.getSaveFileName(self, "Export PDF report", start, "PDF (*.pdf)")
            if not out_path:
                return
        self._flush_edits()
        exam, ensemble = self.session.exam, self.engine.ensemble
        same = self._same_model(exam)
        fallback = frame_image_provider(exam, ensemble) if same else None
        cached = dict(self.results)
        spec, alpha = self.engine.input_spec(), self.viewer.alpha

        def images(record):  # runs in the worker: pixels of this session first, else re-read the file
            res = cached.get(record.key)
            if res is not None and res.crop is not None and getattr(res.prediction, "cams", None) is not None:
                k = max(range(len(record.probs)), key=record.probs.__getitem__) if record.probs else 0
                return res.crop.image, overlay(res.crop, res.prediction, k, spec, alpha)
            return fallback(record) if fallback is not None else None

        self.statusBar().showMessage("Writing the PDF report…")
        self.engine.export_report(lambda: build_report(exam, Path(out_path), images))

    def _same_model(self, exam) -> bool:
        """Whether the loaded model is the one the exam was analysed with (CAMs and re-reads need it)."""
        ens = self.engine.ensemble
        return ens is not None and exam.bundle is not None and ens.bundle.sha256 == exam.bundle.sha256

    # ------------------------------------------------------------------ settings and help
    def open_settings(self) -> None:
        from app.settings_dialog import SettingsChoice, SettingsDialog

        p = self.prefs
        now = SettingsChoice(p.device, p.bundle_dir, p.every, p.fps)
        in_use = self.engine.ensemble.device if self.engine.ensemble is not None else None
        dialog = SettingsDialog(now, in_use, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        new = dialog.choice()
        p.device, p.bundle_dir, p.every, p.fps = new.device, new.bundle_dir, new.every, new.fps
        if (new.device, new.bundle_dir) != (now.device, now.bundle_dir) or self.engine.ensemble is None:
            if self.engine.analysing:
                self.notify("The new model settings apply after the running analysis.", kind="info")
            else:
                self.load_model()

    def show_about(self, first_start: bool = False) -> None:
        dialog = AboutDialog(self.log_file, first_start, self)
        dialog.exec()
        if first_start:
            self.prefs.intended_use_seen = True

    def show_log_location(self) -> None:
        QMessageBox.information(self, "Log file", f"The log file (no patient data) is:\n{self.log_file}")

    def notify(self, text: str, kind: str = "warning") -> None:
        """A non-modal message above the image (never a crash, never a blocking dialog)."""
        log.info("message shown to the user (%s)", kind)
        self.messages.add(text, kind)
