"""The evaluation's plots (PNG), drawn from the result dict alone with matplotlib's Agg canvas.

No pyplot: figures are built with ``matplotlib.figure.Figure`` and an Agg canvas, so plotting never
touches a GUI backend or global state.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

log = logging.getLogger(__name__)

LEVELS = (("image_level", "Image level"), ("exam_level", "Exam level (mean of frames)"))
DPI = 150


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI)
    return path


def _value(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("value") is None:
        return "n/a"
    return f"{entry['value']:.3f}"


def _macro_roc(curves: dict[str, Any], classes: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Macro-average ROC: the mean over classes of the TPR interpolated on the union of their FPRs."""
    present = [curves[c] for c in classes if curves.get(c)]
    if not present:
        return None
    grid = np.unique(np.concatenate([np.asarray(c["fpr"]) for c in present]))
    tpr = np.mean([np.interp(grid, c["fpr"], c["tpr"]) for c in present], axis=0)
    return grid, tpr


def _legend(ax: Any, n: int, loc: str = "lower right") -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc=loc, fontsize=6 if n > 8 else 7, frameon=False)
    else:
        ax.text(0.5, 0.5, "not defined on these data", ha="center", va="center", color="0.4")


def plot_roc(result: dict[str, Any], path: Path) -> Path:
    classes = result["classes"]
    has_nva = "normal_vs_abnormal_roc" in result["curves"]["image_level"]
    ncols = 3 if has_nva else 2
    fig = Figure(figsize=(5.2 * ncols, 5.2), layout="constrained")
    axes = fig.subplots(1, ncols)
    for ax, (key, title) in zip(axes, LEVELS, strict=False):
        curves = result["curves"][key]["roc"]
        block = result[key]
        for cls in classes:
            c = curves.get(cls)
            if c:
                auc = _value(block["per_class"][cls].get("roc_auc"))
                ax.plot(c["fpr"], c["tpr"], lw=1.2, label=f"{cls} (AUC {auc})")
        if curves.get("micro"):
            ax.plot(
                curves["micro"]["fpr"],
                curves["micro"]["tpr"],
                "k--",
                lw=1.6,
                label=f"micro-average (AUC {_value(block['roc_auc']['micro'])})",
            )
        macro = _macro_roc(curves, classes)
        if macro is not None:
            ax.plot(*macro, "k:", lw=1.8, label=f"macro-average (AUC {_value(block['roc_auc']['macro'])})")
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8)
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.01),
            xlabel="1 − specificity (false-positive rate)",
            ylabel="sensitivity (true-positive rate)",
            title=f"{title}: one class vs the rest",
        )
        _legend(ax, len(classes))
    if has_nva:
        ax = axes[2]
        for key, title in LEVELS:
            c = result["curves"][key].get("normal_vs_abnormal_roc")
            nva = result[key]["normal_vs_abnormal"]
            if not c:
                continue
            line = ax.plot(
                c["fpr"], c["tpr"], lw=1.5, label=f"{title.split(' (')[0]} (AUROC {_value(nva['auroc'])})"
            )
            sens, spec = nva["sensitivity"]["value"], nva["specificity"]["value"]
            if sens is not None and spec is not None:
                ax.plot(
                    [1 - spec],
                    [sens],
                    "o",
                    color=line[0].get_color(),
                    label=f"threshold {nva['threshold']:g}: sens {sens:.2f}, spec {spec:.2f}",
                )
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8)
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.01),
            xlabel="1 − specificity",
            ylabel="sensitivity",
            title="Normal vs abnormal (score 1 − P(normal))",
        )
        _legend(ax, 4)
    fig.suptitle("ROC curves — research use, a review aid, not a diagnosis", fontsize=9)
    return _save(fig, path)


def plot_pr(result: dict[str, Any], path: Path) -> Path:
    classes = result["classes"]
    fig = Figure(figsize=(10.4, 5.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (key, title) in zip(axes, LEVELS, strict=True):
        curves = result["curves"][key]["pr"]
        block = result[key]
        for cls in classes:
            c = curves.get(cls)
            if c:
                ap = _value(block["per_class"][cls].get("pr_auc"))
                ax.step(
                    [0.0, *c["recall"]],
                    [c["precision"][0], *c["precision"]],
                    where="pre",
                    lw=1.2,
                    label=f"{cls} (AP {ap})",
                )
        if curves.get("micro"):
            c = curves["micro"]
            ax.step(
                [0.0, *c["recall"]],
                [c["precision"][0], *c["precision"]],
                "k--",
                where="pre",
                lw=1.6,
                label=f"micro-average (AP {_value(block['pr_auc']['micro'])})",
            )
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.01),
            xlabel="recall (sensitivity)",
            ylabel="precision (PPV)",
            title=f"{title}: precision–recall",
        )
        _legend(ax, len(classes), loc="lower left")
    fig.suptitle("Precision–recall curves — research use, not a diagnosis", fontsize=9)
    return _save(fig, path)


def plot_confusion(block: dict[str, Any], title: str, path: Path) -> Path:
    cm = block["confusion_matrix"]
    labels = cm["labels"]
    counts = np.asarray(cm["counts"], dtype=np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    k = len(labels)
    size = max(4.5, 0.5 * k + 2.5)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class (row)")
    for i in range(k):
        for j in range(k):
            if counts[i, j]:
                ax.text(
                    j,
                    i,
                    f"{int(counts[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=7 if k > 8 else 9,
                    color="white" if share[i, j] > 0.6 else "black",
                )
    ax.set_xticks(range(k), labels, rotation=60, ha="right", fontsize=7 if k > 8 else 9)
    ax.set_yticks(range(k), labels, fontsize=7 if k > 8 else 9)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    return _save(fig, path)


def plot_reliability(result: dict[str, Any], path: Path) -> Path:
    fig = Figure(figsize=(10.4, 5.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (key, title) in zip(axes, LEVELS, strict=True):
        cal = result[key]["calibration"]
        bins = [b for b in cal["bins"] if b["n"]]
        width = 1.0 / cal["n_bins"]
        centres = [(b["low"] + b["high"]) / 2 for b in bins]
        ax.bar(
            centres,
            [b["accuracy"] for b in bins],
            width=width * 0.9,
            color="tab:blue",
            alpha=0.7,
            label="accuracy in the bin",
        )
        ax.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            "o",
            color="tab:orange",
            label="mean confidence → accuracy",
        )
        for x, b in zip(centres, bins, strict=True):
            ax.text(x, 0.02, str(b["n"]), ha="center", fontsize=6, color="white")
        ax.plot([0, 1], [0, 1], color="0.5", lw=0.8, label="perfect calibration")
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.01),
            xlabel="confidence (probability of the top class)",
            ylabel="accuracy",
            title=f"{title}: ECE {_value(cal['ece'])}",
        )
        _legend(ax, 3, loc="upper left")
    fig.suptitle("Reliability (numbers in bars: count per bin) — research use, not a diagnosis", fontsize=9)
    return _save(fig, path)


def write_plots(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """roc.png, pr.png, confusion_image.png, confusion_exam.png, reliability.png in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        plot_roc(result, out_dir / "roc.png"),
        plot_pr(result, out_dir / "pr.png"),
        plot_confusion(
            result["image_level"], "Confusion matrix, image level", out_dir / "confusion_image.png"
        ),
        plot_confusion(
            result["exam_level"],
            "Confusion matrix, exam level (mean of frames)",
            out_dir / "confusion_exam.png",
        ),
        plot_reliability(result, out_dir / "reliability.png"),
    ]
    log.info("wrote %d plots to %s", len(paths), out_dir)
    return paths
