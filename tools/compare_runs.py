"""Markdown table comparing training runs on the figures the bundled model is chosen by.

For each run folder: exam-level (case-level) balanced accuracy, macro AUROC and normal-vs-abnormal AUROC
of its out-of-fold predictions (eval/metrics.json), and the share of held-out HC18 heads called abnormal
(eval-hc18/metrics.json), each with its 95% bootstrap CI (over case groups).

    python tools/compare_runs.py runs/a-r34-scratch runs/b-r50-imagenet runs/c-r34-distilled
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def fmt(m: dict | None, scale: float = 1.0, invert: bool = False) -> str:
    if not m or m.get("value") is None:
        return "—"
    v, lo, hi = (m["value"], m.get("ci_low"), m.get("ci_high"))
    if invert:
        v, lo, hi = 1 - v, (None if hi is None else 1 - hi), (None if lo is None else 1 - lo)
    ci = "" if lo is None else f" ({lo * scale:.2f}–{hi * scale:.2f})"
    return f"{v * scale:.2f}{ci}"


def row(run: Path) -> str:
    m = json.loads((run / "eval" / "metrics.json").read_text())
    e = m["exam_level"]
    i = m["image_level"]
    hc = run / "eval-hc18" / "metrics.json"
    fpr = "—"
    if hc.exists():
        h = json.loads(hc.read_text())["image_level"]["normal_vs_abnormal"]
        c = h["counts"]
        n = c["true_negative"] + c["false_positive"]
        fpr = f"{fmt(h['specificity'], invert=True)} [{c['false_positive']}/{n}]"
    run_json = json.loads((run / "run.json").read_text())
    cfg = run_json.get("config", {})
    return (
        f"| {run.name} | {cfg.get('arch')} | {Path(str(cfg.get('init'))).name} | "
        f"{fmt(e['balanced_accuracy'])} | {fmt(e['roc_auc']['macro'])} | "
        f"{fmt(e['normal_vs_abnormal']['auroc'])} | {fmt(i['balanced_accuracy'])} | {fpr} |"
    )


def main() -> None:
    print(
        "| run | arch | init | exam bal. acc. | exam macro AUROC | exam normal-vs-abnormal AUROC "
        "| image bal. acc. | HC18 held-out called abnormal |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        print(row(Path(arg)))


if __name__ == "__main__":
    main()
