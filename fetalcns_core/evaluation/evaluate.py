"""``evaluate_predictions``: every figure of a model on labelled predictions, with bootstrap intervals.

The result is a plain JSON-ready dict (the content of ``metrics.json``); ``write_outputs`` in
``fetalcns_core.evaluation.outputs`` writes it with the plots and the Markdown summary.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fetalcns_core import INTENDED_USE, __version__
from fetalcns_core.evaluation.blocks import LevelReport, level_curves
from fetalcns_core.evaluation.bootstrap import CI_LEVEL, group_resample_counts
from fetalcns_core.evaluation.levels import LevelMetrics, Units, exam_units, group_list, image_units
from fetalcns_core.evaluation.subgroups import ga_subgroups
from fetalcns_core.evaluation.table import PredictionTable, PredictionTableError, table_from_records
from fetalcns_core.exam import now_iso

log = logging.getLogger(__name__)

SCHEMA_NAME = "fetalcns-evaluation"
SCHEMA_VERSION = 1
DEFAULT_BOOTSTRAP = 2000
DEFAULT_THRESHOLD = 0.5
DEFAULT_BINS = 10


@dataclass(frozen=True)
class EvalSettings:
    threshold: float = DEFAULT_THRESHOLD
    n_bootstrap: int = DEFAULT_BOOTSTRAP
    seed: int = 0
    n_bins: int = DEFAULT_BINS
    include_augmented: bool = False
    ci_level: float = CI_LEVEL
    bootstrap_unit: str = "group"
    ci_method: str = "percentile"
    exam_rule: str = "mean of the frame probabilities (majority vote reported beside it)"


def to_table(data: Any, classes: Sequence[str]) -> PredictionTable:
    """A PredictionTable from a table, a pandas-like frame (``to_dict("records")``) or an iterable of rows."""
    if isinstance(data, PredictionTable):
        if list(data.classes) != list(classes):
            raise PredictionTableError(
                f"the table's classes {data.classes} are not the classes {list(classes)}"
            )
        return data
    if hasattr(data, "to_dict"):
        data = data.to_dict("records")
    if isinstance(data, Mapping):
        raise PredictionTableError("give the predictions as rows (a list of dicts), not one dict")
    return table_from_records(list(data), classes)


def _data_block(table: PredictionTable, n_aug_excluded: int, images: Units, exams: Units) -> dict[str, Any]:
    folds = sorted({int(f) for f in table.folds})
    return {
        "n_images": len(images),
        "n_groups": len(set(table.groups)),
        "n_exams": len(exams),
        "n_augmented_excluded": n_aug_excluded,
        "n_augmented_included": int(table.augmented.sum()),
        "images_per_class": {c: int((table.labels == k).sum()) for k, c in enumerate(table.classes)},
        "groups_per_class": {
            c: len({g for g, y in zip(table.groups, table.labels, strict=True) if y == k})
            for k, c in enumerate(table.classes)
        },
        "folds": folds,
        "n_images_with_ga": int(np.isfinite(table.ga_weeks).sum()),
        "mixed_label_groups": exams.mixed_label_groups,
    }


def evaluate_predictions(
    data: PredictionTable | Iterable[Mapping[str, Any]] | Any,
    classes: Sequence[str],
    normal_class: str | None = "normal",
    *,
    threshold: float = DEFAULT_THRESHOLD,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    n_bins: int = DEFAULT_BINS,
    include_augmented: bool = False,
    source: Mapping[str, Any] | None = None,
    data_notes: Mapping[str, Any] | None = None,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """Evaluate predictions (rows with the ``oof_predictions.csv`` columns, or a PredictionTable).

    Image level and exam level (mean of frame probabilities; majority vote beside it), per-class and
    averaged figures with percentile 95% intervals from ``n_bootstrap`` group resamples (seeded),
    normal-vs-abnormal at ``threshold`` on 1 - P(normal), calibration, and gestational-age subgroups.
    ``source`` describes where the predictions came from; ``data_notes`` are merged into the result's
    ``data`` block and ``warnings`` added to its warnings (both from the caller that made the table).
    Returns the JSON-ready result (see docs/core-api.md, ``evaluation``).
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"the threshold {threshold} must lie in [0, 1] (it applies to 1 - P(normal))")
    if n_bins < 1:
        raise ValueError(f"the number of calibration bins must be at least 1, not {n_bins}")
    classes = list(classes)
    settings = EvalSettings(threshold, max(0, int(n_bootstrap)), int(seed), int(n_bins), include_augmented)
    table = to_table(data, classes)
    n_aug = int(table.augmented.sum())
    if not include_augmented and n_aug:
        table = table.subset(~table.augmented)
        if len(table) == 0:
            raise PredictionTableError(
                "every image is an augmented copy; evaluate the originals or allow augmented copies "
                "(--include-augmented)"
            )
        log.info("left out %d augmented image(s)", n_aug)
    warnings = list(warnings)
    normal_index = classes.index(normal_class) if normal_class in classes else None
    if normal_index is None:
        warnings.append(f"normal class '{normal_class}' is not among the classes: no normal-vs-abnormal view")
    groups = group_list(table)
    counts = group_resample_counts(len(groups), settings.n_bootstrap, settings.seed)
    images = image_units(table, groups)
    exams = exam_units(table, groups)
    if exams.mixed_label_groups:
        warnings.append(
            f"{len(exams.mixed_label_groups)} group(s) hold images of different labels; each was split "
            "into one exam per label"
        )

    def level(units: Units, unit: str, vote: bool = False) -> LevelReport:
        lm = LevelMetrics(units, classes, normal_index, threshold, n_bins, use_vote=vote)
        return LevelReport(lm, counts, unit)

    image_report, exam_report = level(images, "image"), level(exams, "exam")
    image_level = image_report.block(normal_class, threshold, n_bins)
    exam_level = exam_report.block(normal_class, threshold, n_bins)
    exam_level["rule"] = "mean of the frame probabilities (as the paper)"
    exam_level["majority_vote"] = level(exams, "exam", vote=True).block(normal_class, threshold, n_bins)
    exam_level["majority_vote"]["rule"] = (
        "most frequent top class of the frames; ties to the class with the higher mean probability"
    )
    result: dict[str, Any] = {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "created_at": now_iso(),
        "fetalcns_version": __version__,
        "intended_use": INTENDED_USE,
        "source": dict(source or {}),
        "classes": classes,
        "normal_class": normal_class,
        "settings": asdict(settings),
        "bootstrap": {
            "resamples": settings.n_bootstrap,
            "unit": "group",
            "n_groups": len(groups),
            "method": "percentile",
            "ci_level": CI_LEVEL,
            "seed": settings.seed,
            "undefined": "a figure undefined in a resample (a class absent) is skipped for that resample",
        },
        "data": {
            **_data_block(table, n_aug if not include_augmented else 0, images, exams),
            **(data_notes or {}),
        },
        "image_level": image_level,
        "exam_level": exam_level,
    }
    result["ga_subgroups"] = ga_subgroups(images, exams, classes, normal_index, threshold, n_bins, counts)
    result["curves"] = {
        "image_level": level_curves(image_report.lm),
        "exam_level": level_curves(exam_report.lm),
    }
    result["warnings"] = warnings
    return result
