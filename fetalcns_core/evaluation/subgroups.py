"""Gestational-age subgroups: the trimester bands and the 20-week cut with a Mann–Whitney U test.

Weeks are completed weeks: 12 weeks 6 days (12.86) counts as 12. The bands are the paper's: ≤12, 13–28
and >28 weeks; the cut compares exams before 20 weeks (<20) with exams at or after 20 weeks (≥20) on
the probability the model gives the true class, with a two-sided Mann–Whitney U test (one value per
exam: images of one exam are not independent).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import mannwhitneyu

from fetalcns_core.evaluation.blocks import LevelReport
from fetalcns_core.evaluation.levels import LevelMetrics, Units

CUT_WEEKS = 20
BANDS: tuple[tuple[str, Callable[[np.ndarray], np.ndarray]], ...] = (
    ("≤12 weeks", lambda w: w <= 12),
    ("13–28 weeks", lambda w: (w >= 13) & (w <= 28)),
    (">28 weeks", lambda w: w >= 29),
)
CUT_GROUPS: tuple[tuple[str, Callable[[np.ndarray], np.ndarray]], ...] = (
    (f"<{CUT_WEEKS} weeks", lambda w: w < CUT_WEEKS),
    (f"≥{CUT_WEEKS} weeks", lambda w: w >= CUT_WEEKS),
)
SUBGROUP_KEYS = ("accuracy", "balanced_accuracy", "mean_true_class_prob", "roc_auc_macro")
SUBGROUP_NVA_KEYS = ("nva_auroc", "nva_sensitivity", "nva_specificity")


def completed_weeks(ga_weeks: np.ndarray) -> np.ndarray:
    """Gestational age in completed weeks (floor); NaN stays NaN."""
    return np.floor(np.asarray(ga_weeks, dtype=np.float64))


def ga_band(ga_weeks: float | None) -> str | None:
    """The trimester band of one gestational age in weeks, None when unknown."""
    if ga_weeks is None or not math.isfinite(ga_weeks):
        return None
    weeks = completed_weeks(np.array([ga_weeks]))
    for name, rule in BANDS:
        if bool(rule(weeks)[0]):
            return name
    return None


def _mask(units: Units, rule: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    weeks = completed_weeks(units.ga_weeks)
    known = np.isfinite(weeks)
    out = np.zeros(len(units), dtype=bool)
    out[known] = rule(weeks[known])
    return out


def _subgroup_block(
    units: Units,
    mask: np.ndarray,
    unit: str,
    classes: list[str],
    normal_index: int | None,
    threshold: float,
    n_bins: int,
    counts: np.ndarray,
) -> dict[str, Any]:
    if not mask.any():
        return {"n": 0, "reason": f"no {unit} in this subgroup"}
    sub = units.subset(mask)
    report = LevelReport(
        LevelMetrics(sub, classes, normal_index, threshold, n_bins, light=True), counts, unit
    )
    block: dict[str, Any] = {
        "n": len(sub),
        "n_groups": int(np.unique(sub.group_index).size),
        "counts_per_class": report.counts_per_class(),
    }
    for key in SUBGROUP_KEYS:
        block[key] = report.fig(key)
    block["roc_auc_macro"]["classes_included"] = [classes[k] for k in report.lm.auc_classes]
    if normal_index is not None:
        for key in SUBGROUP_NVA_KEYS:
            block[key] = report.fig(key)
    return block


def mann_whitney(before: np.ndarray, after: np.ndarray) -> dict[str, Any]:
    """Two-sided Mann–Whitney U test (scipy, method 'auto') of two samples; U is that of ``before``."""
    before = np.asarray(before, dtype=np.float64)
    after = np.asarray(after, dtype=np.float64)
    out: dict[str, Any] = {"n_before": int(before.size), "n_after": int(after.size)}
    if before.size == 0 or after.size == 0:
        out.update(u_statistic=None, p_value=None, reason="needs at least one exam on each side of the cut")
        return out
    res = mannwhitneyu(before, after, alternative="two-sided")
    out.update(
        u_statistic=float(res.statistic),
        p_value=float(res.pvalue),
        median_before=float(np.median(before)),
        median_after=float(np.median(after)),
        test="Mann–Whitney U, two-sided (scipy.stats.mannwhitneyu, method 'auto')",
    )
    return out


def ga_subgroups(
    images: Units,
    exams: Units,
    classes: list[str],
    normal_index: int | None,
    threshold: float,
    n_bins: int,
    counts: np.ndarray,
) -> dict[str, Any]:
    """The trimester bands, the 20-week cut and its test; null with the reason when no GA is known."""
    if not np.isfinite(images.ga_weeks).any():
        return {"value": None, "reason": "no gestational age in the data"}
    args = (classes, normal_index, threshold, n_bins, counts)

    def split(rules: tuple[tuple[str, Callable[[np.ndarray], np.ndarray]], ...]) -> dict[str, Any]:
        return {
            name: {
                "image_level": _subgroup_block(images, _mask(images, rule), "image", *args),
                "exam_level": _subgroup_block(exams, _mask(exams, rule), "exam", *args),
            }
            for name, rule in rules
        }

    exam_weeks = completed_weeks(exams.ga_weeks)
    true_prob = exams.probs[np.arange(len(exams)), exams.labels]
    before = np.isfinite(exam_weeks) & (exam_weeks < CUT_WEEKS)
    after = np.isfinite(exam_weeks) & (exam_weeks >= CUT_WEEKS)
    tests: dict[str, Any] = {"all exams": mann_whitney(true_prob[before], true_prob[after])}
    if normal_index is not None:
        abnormal = exams.labels != normal_index
        tests["abnormal exams"] = mann_whitney(true_prob[before & abnormal], true_prob[after & abnormal])
    return {
        "weeks": "completed weeks (12 weeks 6 days counts as 12)",
        "n_images_unknown_ga": int((~np.isfinite(images.ga_weeks)).sum()),
        "n_exams_unknown_ga": int((~np.isfinite(exams.ga_weeks)).sum()),
        "trimester_bands": split(BANDS),
        "cut_20_weeks": {
            "groups": split(CUT_GROUPS),
            "mann_whitney_true_class_probability": {
                "compared": "probability of the true class, one value per exam, before vs from 20 weeks",
                **tests,
            },
        },
    }
