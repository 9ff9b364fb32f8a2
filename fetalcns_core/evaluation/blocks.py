"""The JSON blocks of one level (images, exams, a subgroup): figures with intervals and their reasons."""

from __future__ import annotations

from typing import Any

import numpy as np

from fetalcns_core.evaluation import metrics as M
from fetalcns_core.evaluation.bootstrap import bootstrap_level, figure
from fetalcns_core.evaluation.levels import LevelMetrics

LABEL_KEYS = ("accuracy", "balanced_accuracy", "macro_precision", "macro_recall", "macro_f1")
YOUDEN_NOTE = (
    "optimistic: this threshold was chosen on the same data it is measured on; use it only to choose a "
    "threshold for a separate test set"
)


def _reason(key: str, lm: LevelMetrics, unit: str) -> str:
    onehot = lm.onehot
    kind, _, cls = key.partition("/")
    if cls:
        k = lm.classes.index(cls)
        absent = not onehot[:, k].any()
        if kind in ("roc_auc", "pr_auc", "recall"):
            return f"no {unit} of this class in the data" if absent else f"every {unit} is of this class"
        if kind == "precision":
            return f"no {unit} was predicted as this class"
        if kind == "specificity":
            return f"every {unit} is of this class: no negatives"
        return "class absent from the data and never predicted"
    if kind in ("roc_auc_macro", "pr_auc_macro"):
        return "fewer than two classes in the data"
    if kind.startswith("nva_"):
        n_abn = int(lm.abnormal.sum())
        n_norm = len(lm.abnormal) - n_abn
        if kind == "nva_ppv":
            return f"no {unit} was called abnormal"
        if kind == "nva_npv":
            return f"no {unit} was called normal"
        if n_abn == 0 and kind != "nva_specificity":
            return f"no abnormal {unit} in the data"
        if n_norm == 0:
            return f"no normal {unit} in the data"
    return "undefined on these data"


class LevelReport:
    """Point figures and resamples of one level, turned into the JSON blocks."""

    def __init__(self, lm: LevelMetrics, counts: np.ndarray, unit: str) -> None:
        self.lm = lm
        self.unit = unit
        self.n_resamples = counts.shape[0]
        self.point = {k: float(v[0]) for k, v in lm.compute(np.ones((1, len(lm.units)))).items()}
        self.boot = bootstrap_level(lm, counts) if self.n_resamples else {}

    def fig(self, key: str) -> dict[str, Any]:
        reason = None if np.isfinite(self.point[key]) else _reason(key, self.lm, self.unit)
        return figure(self.point[key], self.boot.get(key), self.n_resamples, reason)

    def counts_per_class(self) -> dict[str, int]:
        return {c: int(n) for c, n in zip(self.lm.classes, self.lm.onehot.sum(axis=0), strict=True)}

    def label_block(self) -> dict[str, Any]:
        units = self.lm.units
        block: dict[str, Any] = {
            "unit": self.unit,
            "n": len(units),
            "n_groups": int(np.unique(units.group_index).size),
            "counts_per_class": self.counts_per_class(),
        }
        block.update({key: self.fig(key) for key in LABEL_KEYS})
        per_class: dict[str, Any] = {}
        for k, cls in enumerate(self.lm.classes):
            sel = self.lm.onehot[:, k]
            entry: dict[str, Any] = {
                "n": int(sel.sum()),
                "n_groups": int(np.unique(units.group_index[sel]).size),
                "n_predicted": int((self.lm.pred == k).sum()),
            }
            keys = ("precision", "recall", "specificity", "f1") + (
                ("roc_auc", "pr_auc") if self.lm.scored else ()
            )
            entry.update({key: self.fig(f"{key}/{cls}") for key in keys})
            per_class[cls] = entry
        block["per_class"] = per_class
        block["confusion_matrix"] = {
            "labels": list(self.lm.classes),
            "rows": "true class",
            "columns": "predicted class",
            "counts": self.lm.confusion_counts().astype(int).tolist(),
        }
        return block

    def nva_block(self, normal_class: str, threshold: float) -> dict[str, Any]:
        lm = self.lm
        called = lm.called
        block: dict[str, Any] = {
            "normal_class": normal_class,
            "n_abnormal": int(lm.abnormal.sum()),
            "n_normal": int((~lm.abnormal).sum()),
        }
        if lm.scored:
            block["score"] = "1 - P(normal)"
            block["threshold"] = threshold
            block["rule"] = "abnormal when 1 - P(normal) >= threshold"
            block["auroc"] = self.fig("nva_auroc")
        else:
            block["rule"] = "abnormal when the majority class is not the normal class"
        block.update({key: self.fig(f"nva_{key}") for key in ("sensitivity", "specificity", "ppv", "npv")})
        block["counts"] = {
            "true_positive": int((lm.abnormal & called).sum()),
            "false_negative": int((lm.abnormal & ~called).sum()),
            "true_negative": int((~lm.abnormal & ~called).sum()),
            "false_positive": int((~lm.abnormal & called).sum()),
        }
        if lm.scored:
            youden = M.youden_threshold(lm.abnormal_score, lm.abnormal)
            block["youden"] = (
                {**youden, "note": YOUDEN_NOTE}
                if youden
                else {"value": None, "reason": "needs both normal and abnormal cases"}
            )
        return block

    def block(self, normal_class: str | None, threshold: float, n_bins: int) -> dict[str, Any]:
        out = self.label_block()
        lm = self.lm
        if lm.scored:
            out["roc_auc"] = {"macro": self.fig("roc_auc_macro"), "micro": self.fig("roc_auc_micro")}
            out["pr_auc"] = {"macro": self.fig("pr_auc_macro"), "micro": self.fig("pr_auc_micro")}
            included = [lm.classes[k] for k in lm.auc_classes]
            for entry in (out["roc_auc"]["macro"], out["pr_auc"]["macro"]):
                entry["classes_included"] = included
                entry["classes_excluded"] = [c for c in lm.classes if c not in included]
            out["pr_auc"]["definition"] = "average precision (scikit-learn average_precision_score)"
            out["calibration"] = {
                "ece": self.fig("ece"),
                "n_bins": n_bins,
                "confidence": "probability of the predicted (top) class",
                "bins": M.reliability_bins(lm.confidence, lm.pred == lm.units.labels, n_bins),
            }
            out["mean_true_class_probability"] = self.fig("mean_true_class_prob")
        out["normal_vs_abnormal"] = (
            self.nva_block(normal_class, threshold)
            if lm.normal_index is not None and normal_class is not None
            else {"value": None, "reason": f"the normal class '{normal_class}' is not among the classes"}
        )
        return out


def _rounded(curve: dict[str, list[float]] | None, keep_thresholds: bool = False) -> dict[str, Any] | None:
    if curve is None:
        return None
    out: dict[str, Any] = {}
    for key, values in curve.items():
        if key == "thresholds" and not keep_thresholds:
            continue
        out[key] = [None if v is None else round(float(v), 6) for v in values]
    return out


def level_curves(lm: LevelMetrics) -> dict[str, Any]:
    """ROC and precision-recall curves of one level (values rounded to 6 decimals, for plots)."""
    probs = lm.units.probs
    roc: dict[str, Any] = {}
    pr: dict[str, Any] = {}
    for k, cls in enumerate(lm.classes):
        roc[cls] = _rounded(M.roc_points(lm.onehot[:, k], probs[:, k]))
        pr[cls] = _rounded(M.pr_points(lm.onehot[:, k], probs[:, k]))
    roc["micro"] = _rounded(M.roc_points(lm.onehot.ravel(), probs.ravel()))
    pr["micro"] = _rounded(M.pr_points(lm.onehot.ravel(), probs.ravel()))
    out: dict[str, Any] = {"roc": roc, "pr": pr}
    if lm.normal_index is not None:
        out["normal_vs_abnormal_roc"] = _rounded(
            M.roc_points(lm.abnormal, lm.abnormal_score), keep_thresholds=True
        )
    return out
