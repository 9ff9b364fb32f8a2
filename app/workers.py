"""Background work: every fetalcns_core call that can take time runs here, off the GUI thread.

`Task` runs one callable in the thread pool and reports its result or error through Qt signals, which
arrive on the GUI thread (queued connections). `AnalysisTask` wraps `pipeline.analyse` and forwards its
callbacks (sources, frames, progress) as signals; it can be cancelled between frames.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from fetalcns_core import pipeline, sources
from fetalcns_core.sources import SourceError

log = logging.getLogger(__name__)


class TaskSignals(QObject):
    done = Signal(object)
    failed = Signal(str)
    progress = Signal(int, int)
    item = Signal(object)  # one streamed result (a frame, a source ...)
    source = Signal(object)


class Task(QRunnable):
    """Run `fn(*args, **kwargs)` in the pool; emit `done(result)` or `failed(message)`."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.signals = TaskSignals()
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def execute(self) -> Any:
        return self._fn(*self._args, **self._kwargs)

    def run(self) -> None:
        try:
            result = self.execute()
        except Exception as exc:  # reported to the window, never raised into Qt
            log.exception("background task failed")
            self.signals.failed.emit(describe_error(exc))
            return
        self.signals.done.emit(result)


class AnalysisTask(Task):
    """`pipeline.analyse` in the pool. Emits `source`, `item` (FrameResult), `progress` and `done(Exam)`."""

    def __init__(
        self, paths: Sequence[str | Path], ensemble: Any, settings: Any, details: Any = None
    ) -> None:
        super().__init__(lambda: None)
        self._paths = [str(p) for p in paths]
        self._ensemble = ensemble
        self._settings = settings
        self._details = details

    def execute(self) -> Any:
        return pipeline.analyse(
            self._paths,
            self._ensemble,
            self._settings,
            details=self._details,
            on_progress=self.signals.progress.emit,
            on_frame=self.signals.item.emit,
            on_source=self.signals.source.emit,
            cancel=self._cancel.is_set,
        )


class ReloadTask(Task):
    """Re-read the frames of a saved exam (`pipeline.reload_frame`), one `item` per frame.

    Each source file is probed once (its sha256 checked against the exam's). A frame whose file is gone
    or changed is emitted as `(record, error message)`.
    """

    def __init__(self, exam: Any, ensemble: Any | None) -> None:
        super().__init__(lambda: None)
        self._exam = exam
        self._ensemble = ensemble

    def _source(self, path: str, cache: dict[str, Any]) -> Any:
        if path not in cache:
            try:
                cache[path] = sources.probe(Path(path))
            except (SourceError, OSError) as exc:
                cache[path] = SourceError(str(exc))
        return cache[path]

    def execute(self) -> int:
        records = list(self._exam.frames)
        probed: dict[str, Any] = {}
        self.signals.progress.emit(0, len(records))
        for n, record in enumerate(records, start=1):
            if self.cancelled:
                break
            source = self._source(record.source_path, probed)
            try:
                if isinstance(source, SourceError):
                    raise source
                result = pipeline.reload_frame(record, self._exam.settings, self._ensemble, source=source)
            except (SourceError, OSError) as exc:
                self.signals.item.emit((record, str(exc)))
            else:
                self.signals.item.emit(result)
            self.signals.progress.emit(n, len(records))
        return len(records)


class TaskRunner(QObject):
    """Starts tasks on a thread pool and keeps them alive until they have finished."""

    def __init__(self, parent: QObject | None = None, max_threads: int = 2) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._running: dict[TaskSignals, Task] = {}

    def start(self, task: Task) -> Task:
        self._running[task.signals] = task
        task.signals.done.connect(self._forget)
        task.signals.failed.connect(self._forget)
        self.pool.start(task)
        return task

    def _forget(self, _payload: object = None) -> None:
        self._running.pop(self.sender(), None)  # type: ignore[call-overload]

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def cancel_all(self) -> None:
        for task in list(self._running.values()):
            task.cancel()

    def wait(self, msecs: int = 30000) -> bool:
        return self.pool.waitForDone(msecs)


def describe_error(exc: BaseException) -> str:
    """One line for the user: the error's own message (core errors say what to do), or its type."""
    text = str(exc).strip()
    return text if text else type(exc).__name__
