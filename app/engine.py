"""The app's bridge to fetalcns_core: loads the ensemble, runs analyses, reloads saved exams, makes
overlays, reads original frames and builds reports, all in worker threads.

Results come back as Qt signals on the GUI thread. Requests that the user can fire quickly (overlays,
original frames) are coalesced: only the newest waiting request runs next.

The core modules are imported here, on the GUI thread, when the app starts: a module first imported
inside a worker thread while Qt runs can crash PySide6's import hook, so workers never import.
"""

from __future__ import annotations

import codecs
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.ma  # noqa: F401  (imported lazily by the image and PDF libraries)
import pydicom.errors  # noqa: F401  (sources reads DICOM with these, imported lazily)
import pydicom.pixels  # noqa: F401  (also loads the JPEG / JPEG 2000 / RLE decoder plugins)
from PIL import Image
from PySide6.QtCore import QObject, Signal, Slot

import fetalcns_core.report  # noqa: F401  (imported on the GUI thread, see above)
import fetalcns_core.training.convert  # noqa: F401  (bundle loading of '-v1' networks imports it)
from app.workers import AnalysisTask, ReloadTask, Task, TaskRunner
from fetalcns_core import pipeline
from fetalcns_core.bundle import load_bundle
from fetalcns_core.ensemble import Ensemble
from fetalcns_core.exam import AnalysisSettings, Exam, ExamDetails, FrameRecord, SourceFile
from fetalcns_core.preprocess import InputSpec
from fetalcns_core.sources import read_frame

log = logging.getLogger(__name__)


def preload_lazy_imports() -> None:
    """Import now, on the GUI thread, what the core's libraries would otherwise import in a worker:
    Pillow's file format plugins, numpy.ma, and the text codecs the PDF writer looks up."""
    Image.init()
    for codec in ("utf_16_be", "pdfdoc", "extpdfdoc"):
        try:
            codecs.lookup(codec)
        except LookupError:
            log.debug("codec %s not available yet", codec)


preload_lazy_imports()


def _load_ensemble(bundle_dir: Path, device: str) -> Ensemble:
    return Ensemble(load_bundle(bundle_dir), device=device)


def _read_original(key: str, source: SourceFile, index: int) -> tuple[str, np.ndarray]:
    return key, read_frame(source, index).image


def _overlay(
    key: str, crop: Any, prediction: Any, class_index: int, spec: InputSpec, alpha: float
) -> tuple[str, int, float, np.ndarray]:
    return key, class_index, alpha, pipeline.overlay(crop, prediction, class_index, spec, alpha)


class Engine(QObject):
    ensemble_ready = Signal(object)
    ensemble_failed = Signal(str)
    analysis_progress = Signal(int, int)
    analysis_source = Signal(object)  # SourceFile
    analysis_frame = Signal(object)  # FrameResult
    analysis_done = Signal(object)  # Exam
    analysis_failed = Signal(str)
    reload_frame = Signal(object)  # FrameResult, or (FrameRecord, error message)
    reload_done = Signal()
    original_ready = Signal(str, object)  # key, RGB image
    overlay_ready = Signal(str, int, float, object)  # key, class, alpha, RGB image
    side_failed = Signal(str)  # an overlay / original / report that could not be made
    report_done = Signal(object)  # Path

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = TaskRunner(self, max_threads=3)
        self.ensemble: Any | None = None
        self.loading = False
        self.analysis: AnalysisTask | None = None
        self.reload: ReloadTask | None = None
        self._overlay_busy = False
        self._overlay_next: tuple | None = None
        self._original_busy = False
        self._original_next: tuple | None = None
        self.originals: OrderedDict[str, np.ndarray] = OrderedDict()

    # ------------------------------------------------------------------ model
    def load_ensemble(self, bundle_dir: Path, device: str) -> None:
        self.loading = True
        self.ensemble = None
        task = Task(_load_ensemble, bundle_dir, device)
        task.signals.done.connect(self._ensemble_loaded)
        task.signals.failed.connect(self._ensemble_failed)
        self.runner.start(task)

    def _ensemble_loaded(self, ensemble: Any) -> None:
        self.loading = False
        self.ensemble = ensemble
        log.info("model bundle %s loaded on %s", ensemble.bundle.bundle_id, ensemble.device)
        self.ensemble_ready.emit(ensemble)

    def _ensemble_failed(self, message: str) -> None:
        self.loading = False
        self.ensemble_failed.emit(message)

    # ------------------------------------------------------------------ analysis
    @property
    def analysing(self) -> bool:
        return self.analysis is not None

    def analyse(self, paths: Sequence[str | Path], settings: AnalysisSettings, details: ExamDetails) -> None:
        if self.ensemble is None:
            raise RuntimeError("no model is loaded: choose a model bundle in Settings")
        if self.analysis is not None:
            raise RuntimeError("an analysis is already running: wait for it or cancel it")
        self.cancel_reload()
        self.originals.clear()
        task = AnalysisTask(paths, self.ensemble, settings, details)
        task.signals.progress.connect(self.analysis_progress)
        task.signals.source.connect(self.analysis_source)
        task.signals.item.connect(self.analysis_frame)
        task.signals.done.connect(self._analysis_done)
        task.signals.failed.connect(self._analysis_failed)
        self.analysis = task
        self.runner.start(task)

    def cancel_analysis(self) -> None:
        if self.analysis is not None:
            self.analysis.cancel()

    def _analysis_done(self, exam: Exam) -> None:
        self.analysis = None
        self.analysis_done.emit(exam)

    def _analysis_failed(self, message: str) -> None:
        self.analysis = None
        self.analysis_failed.emit(message)

    # ------------------------------------------------------------------ saved exams
    def reload_exam(self, exam: Exam, use_model: bool) -> None:
        """Re-read a saved exam's frames; CAMs only when the loaded model is the exam's own."""
        self.cancel_reload()
        self.originals.clear()
        task = ReloadTask(exam, self.ensemble if use_model else None)
        task.signals.item.connect(self.reload_frame)
        task.signals.done.connect(self._reload_finished)
        task.signals.failed.connect(self._reload_failed)
        self.reload = task
        self.runner.start(task)

    def cancel_reload(self) -> None:
        if self.reload is not None:
            self.reload.cancel()
            self.reload = None

    def _reload_finished(self, _n: int) -> None:
        if self.reload is not None and self.sender() is self.reload.signals:
            self.reload = None
            self.reload_done.emit()

    def _reload_failed(self, message: str) -> None:
        self.reload = None
        self.side_failed.emit(f"could not re-read the exam's frames: {message}")

    # ------------------------------------------------------------------ overlays and originals
    def request_overlay(self, key: str, crop: Any, prediction: Any, class_index: int, alpha: float) -> None:
        spec = self.input_spec()
        request = (key, crop, prediction, class_index, spec, alpha)
        if self._overlay_busy:
            self._overlay_next = request
            return
        self._start_overlay(request)

    def input_spec(self) -> InputSpec:
        return self.ensemble.bundle.input_spec if self.ensemble is not None else InputSpec()

    def _start_overlay(self, request: tuple) -> None:
        self._overlay_busy = True
        task = Task(_overlay, *request)
        task.signals.done.connect(self._overlay_finished)
        task.signals.failed.connect(self._overlay_failed)
        self.runner.start(task)

    @Slot(object)
    def _overlay_finished(self, result: tuple[str, int, float, np.ndarray]) -> None:
        self.overlay_ready.emit(*result)
        self._next_overlay()

    @Slot(str)
    def _overlay_failed(self, message: str) -> None:
        self.side_failed.emit(f"could not draw the overlay: {message}")
        self._next_overlay()

    def _next_overlay(self) -> None:
        self._overlay_busy = False
        request, self._overlay_next = self._overlay_next, None
        if request is not None:
            self._start_overlay(request)

    def request_original(self, key: str, source: SourceFile | None, record: FrameRecord) -> None:
        if key in self.originals:
            self.originals.move_to_end(key)
            self.original_ready.emit(key, self.originals[key])
            return
        if source is None:
            self.side_failed.emit(
                f"the original of frame {key} is not available: its file is not in the exam"
            )
            return
        request = (key, source, record.index)
        if self._original_busy:
            self._original_next = request
            return
        self._start_original(request)

    def _start_original(self, request: tuple) -> None:
        self._original_busy = True
        task = Task(_read_original, *request)
        task.signals.done.connect(self._original_finished)
        task.signals.failed.connect(self._original_failed)
        self.runner.start(task)

    @Slot(object)
    def _original_finished(self, result: tuple[str, np.ndarray]) -> None:
        key, image = result
        self.originals[key] = image
        while len(self.originals) > 8:
            self.originals.popitem(last=False)
        self.original_ready.emit(key, image)
        self._next_original()

    @Slot(str)
    def _original_failed(self, message: str) -> None:
        self.side_failed.emit(f"could not read the original frame: {message}")
        self._next_original()

    def _next_original(self) -> None:
        self._original_busy = False
        request, self._original_next = self._original_next, None
        if request is not None:
            self._start_original(request)

    # ------------------------------------------------------------------ report
    def export_report(self, build: Callable[[], Path]) -> None:
        task = Task(build)
        task.signals.done.connect(self.report_done)
        task.signals.failed.connect(self._report_failed)
        self.runner.start(task)

    @Slot(str)
    def _report_failed(self, message: str) -> None:
        self.side_failed.emit(f"the PDF report could not be made: {message}")
