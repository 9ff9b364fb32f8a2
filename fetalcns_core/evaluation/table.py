"""The predictions table: one row per image with its truth, its group and the model's probabilities.

It is what a training run writes as ``oof_predictions.csv`` (out-of-fold predictions) and what a bundle
run over a labelled dataset produces (``fold = -1``). Columns:
``file, frame, group, fold, label, augmented, gestational_age_weeks, prob_<class_id>...``; the class
order is the order of the ``prob_`` columns, an empty gestational age means unknown, ``frame`` (the
frame index within a video or multi-frame file, 0 for a still image) may be absent.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PROB_PREFIX = "prob_"
REQUIRED_COLUMNS = ("file", "group", "label")
BASE_COLUMNS = ("file", "frame", "group", "fold", "label", "augmented", "gestational_age_weeks")
PROB_SUM_TOLERANCE = 1e-3


class PredictionTableError(ValueError):
    """The predictions cannot be used: a missing column, an unknown label, probabilities that are wrong."""


@dataclass
class PredictionTable:
    """Predictions of one model over labelled images, with the class order of the probability columns."""

    classes: list[str]
    files: list[str]
    groups: list[str]
    folds: np.ndarray  # (N,) int, -1 when the images were not part of a cross-validation
    labels: np.ndarray  # (N,) int, index into classes
    augmented: np.ndarray  # (N,) bool
    ga_weeks: np.ndarray  # (N,) float, NaN when unknown
    probs: np.ndarray  # (N, K) float64
    frames: np.ndarray | None = None  # (N,) int, frame index within the file; zeros when not given

    def __post_init__(self) -> None:
        n = len(self.files)
        self.frames = (
            np.zeros(n, dtype=np.int64) if self.frames is None else np.asarray(self.frames, np.int64)
        )
        self.frames = self.frames.reshape(n)
        self.folds = np.asarray(self.folds, dtype=np.int64).reshape(n)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(n)
        self.augmented = np.asarray(self.augmented, dtype=bool).reshape(n)
        self.ga_weeks = np.asarray(self.ga_weeks, dtype=np.float64).reshape(n)
        self.probs = np.asarray(self.probs, dtype=np.float64).reshape(n, len(self.classes))
        if len(self.groups) != n:
            raise PredictionTableError(f"{len(self.groups)} groups for {n} files: give one group per file")

    def __len__(self) -> int:
        return len(self.files)

    def subset(self, mask: np.ndarray) -> PredictionTable:
        idx = np.flatnonzero(mask)
        return PredictionTable(
            classes=list(self.classes),
            files=[self.files[i] for i in idx],
            groups=[self.groups[i] for i in idx],
            folds=self.folds[idx],
            labels=self.labels[idx],
            augmented=self.augmented[idx],
            ga_weeks=self.ga_weeks[idx],
            probs=self.probs[idx],
            frames=self.frames[idx],
        )

    def unit_ids(self) -> list[str]:
        """One id per row: the file, with ``#frame`` for a file that gives more than one row."""
        counts: dict[str, int] = {}
        for f in self.files:
            counts[f] = counts.get(f, 0) + 1
        return [f"{f}#{k}" if counts[f] > 1 else f for f, k in zip(self.files, self.frames, strict=True)]

    def to_records(self) -> list[dict[str, Any]]:
        rows = []
        for i in range(len(self)):
            ga = self.ga_weeks[i]
            row: dict[str, Any] = {
                "file": self.files[i],
                "frame": int(self.frames[i]),
                "group": self.groups[i],
                "fold": int(self.folds[i]),
                "label": self.classes[self.labels[i]],
                "augmented": int(self.augmented[i]),
                "gestational_age_weeks": None if math.isnan(ga) else float(ga),
            }
            for k, cls in enumerate(self.classes):
                row[PROB_PREFIX + cls] = float(self.probs[i, k])
            rows.append(row)
        return rows


def _parse_float(value: Any, what: str, where: str) -> float:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return math.nan
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise PredictionTableError(f"{where}: {what} '{value}' is not a number") from exc
    return out


def _parse_flag(value: Any, where: str) -> bool:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return False
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "1.0"):
        return True
    if text in ("0", "false", "no", "0.0"):
        return False
    raise PredictionTableError(f"{where}: augmented must be 0 or 1, not '{value}'")


def classes_from_columns(columns: Iterable[str]) -> list[str]:
    """The class ids, in output order, named by the ``prob_<class_id>`` columns."""
    classes = [c[len(PROB_PREFIX) :] for c in columns if c.startswith(PROB_PREFIX)]
    if len(classes) < 2:
        raise PredictionTableError(
            "the predictions need one 'prob_<class_id>' column per class (at least two); found "
            f"{len(classes)}"
        )
    if len(set(classes)) != len(classes):
        raise PredictionTableError("two 'prob_' columns name the same class: each class needs one column")
    return classes


def table_from_records(
    records: Iterable[Mapping[str, Any]], classes: Sequence[str] | None = None
) -> PredictionTable:
    """Build and check a table from rows (dicts with the CSV's columns, values as text or numbers).

    ``classes`` defaults to the order of the ``prob_`` keys of the first row; when given, every class
    must have its column.
    """
    rows = list(records)
    if not rows:
        raise PredictionTableError("the predictions are empty: no image to evaluate")
    keys = list(rows[0].keys())
    missing = [c for c in REQUIRED_COLUMNS if c not in keys]
    if missing:
        raise PredictionTableError(f"the predictions lack the column(s) {missing}; expected {BASE_COLUMNS}")
    found = classes_from_columns(keys)
    classes = list(classes) if classes is not None else found
    absent = [c for c in classes if c not in found]
    if absent:
        raise PredictionTableError(f"no probability column for class(es) {absent}: add 'prob_<class_id>'")
    if set(found) != set(classes):
        raise PredictionTableError(
            f"the probability columns {found} do not match the classes {classes}: the columns must be the "
            "model's output over exactly these classes"
        )
    index = {c: k for k, c in enumerate(classes)}
    files, frames, groups, folds, labels, augmented, ga, probs = [], [], [], [], [], [], [], []
    unknown: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        where = f"row {n} ('{row.get('file', '')}')"
        label = str(row["label"]).strip()
        if label not in index:
            unknown[label] = unknown.get(label, 0) + 1
            continue
        group = str(row["group"]).strip()
        if not group:
            raise PredictionTableError(f"{where}: the group is empty; every image needs its case/exam id")
        p = [_parse_float(row[PROB_PREFIX + c], f"prob_{c}", where) for c in classes]
        if not all(math.isfinite(v) and -1e-9 <= v <= 1 + 1e-9 for v in p):
            raise PredictionTableError(f"{where}: probabilities {p} must all be numbers in [0, 1]")
        if abs(sum(p) - 1.0) > PROB_SUM_TOLERANCE:
            raise PredictionTableError(
                f"{where}: the probabilities sum to {sum(p):.6g}, not 1: the prob_ columns must be the "
                "softmax output over all classes"
            )
        fold = _parse_float(row.get("fold"), "fold", where)
        frame = _parse_float(row.get("frame"), "frame", where)
        files.append(str(row["file"]))
        frames.append(0 if math.isnan(frame) else int(frame))
        groups.append(group)
        folds.append(-1 if math.isnan(fold) else int(fold))
        labels.append(index[label])
        augmented.append(_parse_flag(row.get("augmented"), where))
        ga.append(_parse_float(row.get("gestational_age_weeks"), "gestational age", where))
        probs.append(p)
    if unknown:
        raise PredictionTableError(
            f"label(s) not among the classes {classes}: {unknown} (label: rows); map them to a class or "
            "remove those rows"
        )
    table = PredictionTable(classes, files, groups, folds, labels, augmented, ga, np.array(probs), frames)
    dupes = len(files) - len(set(zip(files, frames, strict=True)))
    if dupes:
        log.warning("%d row(s) repeat a file and frame of an earlier row; each row is counted", dupes)
    return table


def read_predictions_csv(
    path: str | os.PathLike[str], classes: Sequence[str] | None = None
) -> PredictionTable:
    """Read ``oof_predictions.csv`` (or any file with the same columns)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PredictionTableError(f"cannot read the predictions '{path}': {exc}") from exc
    if not rows:
        raise PredictionTableError(f"'{path}' holds no prediction rows")
    try:
        return table_from_records(rows, classes)
    except PredictionTableError as exc:
        raise PredictionTableError(f"'{path}': {exc}") from exc


def write_predictions_csv(table: PredictionTable, path: str | os.PathLike[str]) -> Path:
    """Write the table with the columns ``oof_predictions.csv`` has."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(BASE_COLUMNS) + [PROB_PREFIX + c for c in table.classes]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in table.to_records():
            ga = row["gestational_age_weeks"]
            row["gestational_age_weeks"] = "" if ga is None else repr(ga)
            for c in table.classes:
                row[PROB_PREFIX + c] = repr(row[PROB_PREFIX + c])
            writer.writerow(row)
    return path
