"""From files to an analysed exam: sources → crop → ensemble → exam diagnosis.

The one place where the modules are chained, so the CLI, the GUI, evaluation and the report all see the
same frames, crops and scores. Frames stream through in small batches: a long video never sits in
memory.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fetalcns_core import __version__
from fetalcns_core.crop import CropResult, crop_frame
from fetalcns_core.ensemble import Ensemble
from fetalcns_core.exam import (
    AnalysisSettings,
    Exam,
    ExamDetails,
    Frame,
    FramePrediction,
    FrameRecord,
    SourceFile,
    now_iso,
    rediagnose,
)
from fetalcns_core.explain import cam_on_image
from fetalcns_core.preprocess import InputSpec
from fetalcns_core.sources import SourceError, count_frames, expand_paths, iter_frames, probe, read_frame

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


@dataclass
class FrameResult:
    """One analysed frame: its record, its pixels after cropping, and the ensemble's output."""

    record: FrameRecord
    crop: CropResult | None
    prediction: FramePrediction | None


def _record_for(frame: Frame, crop: CropResult) -> FrameRecord:
    return FrameRecord(
        source_path=frame.source.path,
        source_sha256=frame.source.sha256,
        index=frame.index,
        time_s=frame.time_s,
        kind=frame.source.kind,
        crop_box=crop.box,
        crop_method=crop.method,
        usable=crop.usable,
        unusable_reason=crop.reason,
    )


def _crop(frame: Frame, settings: AnalysisSettings) -> CropResult:
    return crop_frame(
        frame.image, mode=settings.crop, manual_box=settings.manual_box, region_hint=frame.region_hint
    )


def _apply_prediction(record: FrameRecord, pred: FramePrediction) -> None:
    record.probs = [float(p) for p in pred.probs]
    record.fold_probs = [[float(p) for p in row] for row in pred.fold_probs]
    record.ood_score = None if pred.ood_score is None else float(pred.ood_score)
    record.out_of_scope = bool(pred.out_of_scope)


def open_sources(
    paths: Iterable[str | os.PathLike[str]], on_source: Callable[[SourceFile], None] | None = None
) -> list[SourceFile]:
    """Probe every input; a file that cannot be read becomes a SourceFile with its error, not an exception."""
    sources: list[SourceFile] = []
    for path in expand_paths(list(paths)):
        try:
            src = probe(path)
        except SourceError as exc:
            log.warning("%s", exc)
            src = SourceFile(path=str(path), kind="unknown", error=str(exc))
        sources.append(src)
        if on_source is not None:
            on_source(src)
    return sources


def analyse(
    paths: Sequence[str | os.PathLike[str]],
    ensemble: Ensemble,
    settings: AnalysisSettings | None = None,
    *,
    details: ExamDetails | None = None,
    on_progress: ProgressFn | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
    on_source: Callable[[SourceFile], None] | None = None,
    cancel: CancelFn | None = None,
    batch_size: int = 8,
) -> Exam:
    """Analyse the files as one exam. Bad files are recorded as failed and the rest goes on.

    A cancelled analysis returns the frames done so far, with ``exam.incomplete`` set.
    """
    settings = settings or AnalysisSettings()
    exam = Exam(
        app_version=__version__,
        created_at=now_iso(),
        details=details or ExamDetails(),
        settings=settings,
        bundle=ensemble.bundle.info(),
    )
    exam.sources = open_sources(paths, on_source)
    readable = [s for s in exam.sources if not s.failed]
    total = 0
    for src in readable:
        total += count_frames(src, every=settings.every, fps=settings.fps)
    done = 0
    if on_progress is not None:
        on_progress(0, total)

    pending: list[tuple[FrameRecord, CropResult]] = []

    def flush() -> None:
        nonlocal done
        usable = [(rec, crop) for rec, crop in pending if crop.usable]
        preds = (
            ensemble.predict(
                [crop.image for _, crop in usable], cams=on_frame is not None, batch_size=batch_size
            )
            if usable
            else []
        )
        by_id = {id(rec): pred for (rec, _), pred in zip(usable, preds, strict=True)}
        for rec, crop in pending:
            pred = by_id.get(id(rec))
            if pred is not None:
                _apply_prediction(rec, pred)
                if pred.out_of_scope:
                    rec.unusable_reason = "out of scope: does not look like a fetal head or spine image"
            exam.frames.append(rec)
            done += 1
            if on_frame is not None:
                on_frame(FrameResult(rec, crop, pred))
            if on_progress is not None:
                on_progress(done, max(total, done))
        pending.clear()

    def cancelled() -> bool:
        return cancel is not None and cancel()

    for src in readable:
        if cancelled():
            break
        try:
            for frame in iter_frames(src, every=settings.every, fps=settings.fps, cancel=cancel):
                pending.append((_record_for(frame, c := _crop(frame, settings)), c))
                if len(pending) >= batch_size:
                    flush()
                if cancelled():
                    break
        except SourceError as exc:
            log.warning("%s", exc)
            src.error = str(exc)
            if on_source is not None:
                on_source(src)
        flush()
    if cancelled():
        exam.incomplete = f"analysis cancelled after {done} of {total} frames"
    rediagnose(exam)
    return exam


def reload_frame(
    record: FrameRecord,
    settings: AnalysisSettings,
    ensemble: Ensemble | None = None,
    source: SourceFile | None = None,
) -> FrameResult:
    """Read one frame of a saved exam again (pixels are never stored in the exam file).

    Raises SourceError when the file is gone or is no longer the file that was analysed.
    """
    src = source or probe(Path(record.source_path))
    if record.source_sha256 and src.sha256 != record.source_sha256:
        raise SourceError(
            f"'{record.source_path}' has changed since the exam was analysed (sha256 differs): "
            "the saved scores no longer describe it — analyse the file again"
        )
    frame = read_frame(src, record.index)
    crop = _crop(frame, settings)
    if record.crop_box is not None and crop.box != record.crop_box:
        # the analysis used another box (a manual one, or an older crop version): honour the record
        crop = crop_frame(frame.image, mode="manual", manual_box=record.crop_box)
    pred = None
    if ensemble is not None and crop.usable:
        pred = ensemble.predict([crop.image], cams=True)[0]
    return FrameResult(record, crop, pred)


def overlay(
    crop: CropResult, prediction: FramePrediction, class_index: int, spec: InputSpec, alpha: float = 0.45
) -> np.ndarray:
    """The Grad-CAM overlay of one class on the cropped frame."""
    if prediction.cams is None:
        raise ValueError("this prediction was made without CAMs: run predict(..., cams=True)")
    return cam_on_image(crop.image, prediction.cams[class_index], spec, alpha=alpha)


def frame_image_provider(
    exam: Exam, ensemble: Ensemble, alpha: float = 0.45
) -> Callable[[FrameRecord], tuple[np.ndarray, np.ndarray] | None]:
    """For the report: (cropped frame, CAM overlay of its top class), re-read from the source files.

    Returns None for a frame whose source is gone or changed; the report says so.
    """
    sources = {s.path: s for s in exam.sources if not s.failed}

    def provide(record: FrameRecord) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            res = reload_frame(record, exam.settings, ensemble, source=sources.get(record.source_path))
        except SourceError as exc:
            log.warning("report image not available: %s", exc)
            return None
        if res.crop is None or res.prediction is None:
            return None
        k = int(np.argmax(record.probs if record.probs is not None else res.prediction.probs))
        return res.crop.image, overlay(res.crop, res.prediction, k, ensemble.bundle.input_spec, alpha)

    return provide
