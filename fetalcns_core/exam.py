"""The exam data model: frames, predictions, the per-exam diagnosis, the review, and the exam file.

Everything here is plain, serialisable data. Pixels are never stored in the exam file; overlays and
reports are rebuilt from the source files it names (each with its sha256).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SCHEMA_NAME = "fetalcns-exam"


class ExamFileError(ValueError):
    """An exam file cannot be read: wrong format, newer schema, or damaged JSON."""


@dataclass(frozen=True)
class Box:
    """A pixel box, half-open: columns x0..x1-1, rows y0..y1-1."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    def clip(self, width: int, height: int) -> Box:
        return Box(
            max(0, min(self.x0, width)),
            max(0, min(self.y0, height)),
            max(0, min(self.x1, width)),
            max(0, min(self.y1, height)),
        )

    def as_list(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]

    @classmethod
    def from_list(cls, values: list[int] | tuple[int, ...] | None) -> Box | None:
        return None if values is None else cls(*(int(v) for v in values))


@dataclass
class SourceFile:
    """One input file of an exam and what became of it."""

    path: str
    sha256: str = ""
    kind: str = "image"  # image | video | dicom
    n_frames: int | None = None  # frames in the file (videos, multi-frame DICOM)
    fps: float | None = None
    error: str | None = None  # why the file could not be read, if it could not

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass
class Frame:
    """Pixels of one frame with provenance. Not serialised: the exam file keeps FrameRecord."""

    image: np.ndarray  # H x W x 3, uint8, RGB, as in the file (after EXIF orientation)
    source: SourceFile
    index: int = 0  # frame index within the file (0 for a still image)
    time_s: float | None = None  # time from the start of the file, if it is a video
    region_hint: Box | None = None  # e.g. DICOM SequenceOfUltrasoundRegions


@dataclass
class FramePrediction:
    """What the ensemble says of one frame."""

    probs: np.ndarray  # (K,) mean over folds of the (calibrated) softmax
    fold_probs: np.ndarray  # (F, K)
    cams: np.ndarray | None = None  # (K, h, w) float32 in [0, 1], ensemble CAM per class
    ood_score: float | None = None  # higher = less like the training data
    out_of_scope: bool = False


@dataclass
class FrameRecord:
    """The serialisable record of one frame: where it came from, its crop, its scores, its state."""

    source_path: str
    source_sha256: str
    index: int = 0
    time_s: float | None = None
    kind: str = "image"
    crop_box: Box | None = None
    crop_method: str = "none"  # auto-fan | auto-rect | full | dicom-region | manual | none
    usable: bool = True
    unusable_reason: str | None = None  # blank frame, no image found, out of scope ...
    probs: list[float] | None = None
    fold_probs: list[list[float]] | None = None
    ood_score: float | None = None
    out_of_scope: bool = False

    @property
    def key(self) -> str:
        """Stable id of the frame inside its exam."""
        return f"{self.source_sha256[:16]}:{self.index}"

    @property
    def scored(self) -> bool:
        return self.usable and self.probs is not None and not self.out_of_scope


@dataclass
class BundleInfo:
    bundle_id: str = ""
    sha256: str = ""  # of manifest.json, which holds every weight file's sha256
    classes: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    normal_class: str = "normal"
    trained: bool = True
    architecture: str = "resnet34"


@dataclass
class ExamDiagnosis:
    """The AI's suggestion for the whole exam. A suggestion for a clinician, never a diagnosis."""

    classes: list[str]
    probs: list[float]  # mean of the used frames' probabilities (the paper's rule)
    top_class: str
    top_prob: float
    abnormal_score: float  # 1 - P(normal)
    majority_class: str  # majority vote of the frames' top classes
    fold_agreement: float  # share of folds whose exam-level top class equals top_class
    fold_spread: float  # mean over classes of the max - min of fold exam probabilities
    n_frames_used: int
    n_frames_support: int  # used frames whose own top class is top_class
    n_frames_unusable: int
    n_frames_excluded: int  # excluded by the reviewer
    rule: str = "mean"


@dataclass
class ExamDetails:
    exam_id: str = ""
    patient_id: str = ""
    patient_name: str = ""
    exam_date: str = ""  # ISO date
    ga_weeks: int | None = None
    ga_days: int | None = None
    biometry_mm: dict[str, float] = field(default_factory=dict)  # BPD, HC, AC, FL, CRL, TCD
    biometry_sd: dict[str, float] = field(default_factory=dict)  # deviation in SD, if given
    notes: str = ""


@dataclass
class AuditEntry:
    when: str
    who: str
    what: str


@dataclass
class Review:
    """The clinician's work. Kept apart from the AI's suggestion everywhere."""

    decision: str | None = None  # None | "agree" | "override"
    decided_class: str | None = None  # the class the clinician chose (equals top class on agree)
    notes: str = ""
    excluded: dict[str, str] = field(default_factory=dict)  # frame key -> reason
    signed_by: str | None = None
    signed_at: str | None = None
    audit: list[AuditEntry] = field(default_factory=list)

    @property
    def signed(self) -> bool:
        return self.signed_by is not None


@dataclass
class AnalysisSettings:
    every: int | None = 80  # every N-th video frame (the paper's 80)
    fps: float | None = None  # or N frames per second (overrides `every`)
    crop: str = "auto"  # auto | none | manual
    manual_box: Box | None = None
    device: str = "auto"


@dataclass
class Exam:
    schema: str = SCHEMA_NAME
    schema_version: int = SCHEMA_VERSION
    app_version: str = ""
    created_at: str = ""
    details: ExamDetails = field(default_factory=ExamDetails)
    settings: AnalysisSettings = field(default_factory=AnalysisSettings)
    sources: list[SourceFile] = field(default_factory=list)
    frames: list[FrameRecord] = field(default_factory=list)
    bundle: BundleInfo | None = None
    diagnosis: ExamDiagnosis | None = None
    review: Review = field(default_factory=Review)
    incomplete: str | None = None  # why the analysis did not finish (cancelled ...), if it did not

    def frame(self, key: str) -> FrameRecord:
        for rec in self.frames:
            if rec.key == key:
                return rec
        raise KeyError(key)

    def record(self, who: str, what: str) -> None:
        """Append a line to the review's audit trail."""
        self.review.audit.append(AuditEntry(when=now_iso(), who=who, what=what))


def now_iso() -> str:
    """Local time with its UTC offset, to the second."""
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")


# --------------------------------------------------------------------------- aggregation


def diagnose(
    frames: list[FrameRecord],
    classes: list[str],
    normal_class: str,
    excluded: dict[str, str] | None = None,
) -> ExamDiagnosis | None:
    """Combine the usable, not excluded frames into the exam's suggestion (mean of probabilities).

    Returns None when no frame can be used.
    """
    excluded = excluded or {}
    used = [f for f in frames if f.scored and f.key not in excluded]
    n_unusable = sum(1 for f in frames if not f.scored)
    n_excluded = sum(1 for f in frames if f.scored and f.key in excluded)
    if not used:
        return None
    probs = np.array([f.probs for f in used], dtype=np.float64)  # (N, K)
    mean = probs.mean(axis=0)
    top = int(mean.argmax())
    frame_tops = probs.argmax(axis=1)
    votes = np.bincount(frame_tops, minlength=len(classes))
    # ties in the vote go to the class with the higher mean probability
    majority = int(max(range(len(classes)), key=lambda k: (votes[k], mean[k])))
    agreement, spread = 1.0, 0.0
    if all(f.fold_probs for f in used):
        folds = np.array([f.fold_probs for f in used], dtype=np.float64)  # (N, F, K)
        fold_exam = folds.mean(axis=0)  # (F, K)
        agreement = float((fold_exam.argmax(axis=1) == top).mean())
        spread = float((fold_exam.max(axis=0) - fold_exam.min(axis=0)).mean())
    p_normal = float(mean[classes.index(normal_class)]) if normal_class in classes else 0.0
    return ExamDiagnosis(
        classes=list(classes),
        probs=[float(p) for p in mean],
        top_class=classes[top],
        top_prob=float(mean[top]),
        abnormal_score=1.0 - p_normal,
        majority_class=classes[majority],
        fold_agreement=agreement,
        fold_spread=spread,
        n_frames_used=len(used),
        n_frames_support=int((frame_tops == top).sum()),
        n_frames_unusable=n_unusable,
        n_frames_excluded=n_excluded,
    )


def rediagnose(exam: Exam) -> None:
    """Recompute the exam's suggestion after frames were excluded or restored."""
    if exam.bundle is None:
        exam.diagnosis = None
        return
    exam.diagnosis = diagnose(
        exam.frames, exam.bundle.classes, exam.bundle.normal_class, exam.review.excluded
    )


# --------------------------------------------------------------------------- exam file


def _to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def exam_to_dict(exam: Exam) -> dict[str, Any]:
    data = _to_jsonable(exam)
    for rec in data["frames"]:
        box = rec["crop_box"]
        rec["crop_box"] = None if box is None else [box["x0"], box["y0"], box["x1"], box["y1"]]
    mb = data["settings"]["manual_box"]
    data["settings"]["manual_box"] = None if mb is None else [mb["x0"], mb["y0"], mb["x1"], mb["y1"]]
    return data


def _build(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        log.warning("ignoring unknown fields in %s: %s", cls.__name__, sorted(unknown))
    return cls(**{k: v for k, v in data.items() if k in names})


def exam_from_dict(data: dict[str, Any]) -> Exam:
    if data.get("schema") != SCHEMA_NAME:
        raise ExamFileError("not a FetalCNS exam file (no 'fetalcns-exam' schema tag)")
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ExamFileError(
            f"exam file schema version {version} is newer than this program reads ({SCHEMA_VERSION}): "
            "update FetalCNS to open it"
        )
    try:
        settings = dict(data["settings"])
        settings["manual_box"] = Box.from_list(settings.get("manual_box"))
        frames = []
        for rec in data["frames"]:
            rec = dict(rec)
            rec["crop_box"] = Box.from_list(rec.get("crop_box"))
            frames.append(_build(FrameRecord, rec))
        review = dict(data["review"])
        review["audit"] = [_build(AuditEntry, a) for a in review.get("audit", [])]
        return Exam(
            schema=data["schema"],
            schema_version=version,
            app_version=data.get("app_version", ""),
            created_at=data.get("created_at", ""),
            details=_build(ExamDetails, data["details"]),
            settings=_build(AnalysisSettings, settings),
            sources=[_build(SourceFile, s) for s in data["sources"]],
            frames=frames,
            bundle=None if data.get("bundle") is None else _build(BundleInfo, data["bundle"]),
            diagnosis=None if data.get("diagnosis") is None else _build(ExamDiagnosis, data["diagnosis"]),
            review=_build(Review, review),
            incomplete=data.get("incomplete"),
        )
    except (KeyError, TypeError) as exc:
        raise ExamFileError(f"exam file is damaged or incomplete: {exc}") from exc


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> None:
    """Write a file so that readers see either the old or the new content, never a mixture."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_exam(exam: Exam, path: str | os.PathLike[str]) -> None:
    """Save the exam as JSON, atomically (temp file + rename)."""
    text = json.dumps(exam_to_dict(exam), indent=1, ensure_ascii=False, allow_nan=False)
    atomic_write_bytes(path, text.encode("utf-8"))


def load_exam(path: str | os.PathLike[str]) -> Exam:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExamFileError(f"cannot read exam file '{path}': {exc}") from exc
    if not isinstance(data, dict):
        raise ExamFileError(f"'{path}' is not a FetalCNS exam file")
    return exam_from_dict(data)
