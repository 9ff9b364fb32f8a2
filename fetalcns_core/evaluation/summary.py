"""The Markdown summary of an evaluation: tables a clinician can read, ready to paste into a model card."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

PROPORTIONS = {
    "accuracy",
    "balanced_accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "precision",
    "recall",
    "specificity",
    "f1",
    "sensitivity",
    "ppv",
    "npv",
}


def fmt(entry: dict[str, Any] | None, percent: bool = False) -> str:
    """'73.0% (95% CI 65.2–80.1%)', '0.874 (0.812–0.921)', or 'n/a' when undefined."""
    if not entry or entry.get("value") is None:
        return "n/a"
    scale, unit, digits = (100.0, "%", 1) if percent else (1.0, "", 3)
    text = f"{entry['value'] * scale:.{digits}f}{unit}"
    if entry.get("ci_low") is not None:
        text += f" ({entry['ci_low'] * scale:.{digits}f}–{entry['ci_high'] * scale:.{digits}f}{unit})"
    return text


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows), ""]


def _undefined(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every figure reported as null, with the path to it and its reason."""
    if isinstance(node, dict):
        if node.get("value", 0) is None and "reason" in node:
            yield path, node["reason"]
            return
        for key, value in node.items():
            if key not in ("curves", "bins", "ga_subgroups"):
                yield from _undefined(value, f"{path}.{key}" if path else key)


def _overview(result: dict[str, Any]) -> list[str]:
    img, exm = result["image_level"], result["exam_level"]
    vote = exm["majority_vote"]
    rows = []
    for key, name in (
        ("accuracy", "Accuracy"),
        ("balanced_accuracy", "Balanced accuracy"),
        ("macro_precision", "Precision (macro)"),
        ("macro_recall", "Recall / sensitivity (macro)"),
        ("macro_f1", "F1 (macro)"),
    ):
        rows.append([name, fmt(img[key], True), fmt(exm[key], True), fmt(vote[key], True)])
    for group, avg, name in (
        ("roc_auc", "macro", "ROC AUC, one class vs rest (macro)"),
        ("roc_auc", "micro", "ROC AUC (micro)"),
        ("pr_auc", "macro", "PR AUC, average precision (macro)"),
        ("pr_auc", "micro", "PR AUC, average precision (micro)"),
    ):
        rows.append([name, fmt(img[group][avg]), fmt(exm[group][avg]), "—"])
    bins = img["calibration"]["n_bins"]
    rows.append(
        [
            f"Calibration error, ECE ({bins} bins)",
            fmt(img["calibration"]["ece"]),
            fmt(exm["calibration"]["ece"]),
            "—",
        ]
    )
    header = ["Figure", "Image level", "Exam level (mean of frames)", "Exam level (majority vote)"]
    return ["## Overall", "", *_table(header, rows)]


def _normal_vs_abnormal(result: dict[str, Any]) -> list[str]:
    img, exm = result["image_level"]["normal_vs_abnormal"], result["exam_level"]["normal_vs_abnormal"]
    if img.get("value", 0) is None:
        return ["## Normal vs abnormal", "", f"Not available: {img['reason']}.", ""]
    vote = result["exam_level"]["majority_vote"]["normal_vs_abnormal"]
    t = img["threshold"]
    lines = [
        "## Normal vs abnormal",
        "",
        f"Score: 1 − P({result['normal_class']}); called abnormal when the score is ≥ {t:g} "
        f"(the operating threshold). Abnormal: {img['n_abnormal']} images / {exm['n_abnormal']} exams; "
        f"normal: {img['n_normal']} images / {exm['n_normal']} exams.",
        "",
    ]
    rows = [["AUROC", fmt(img["auroc"]), fmt(exm["auroc"]), "—"]]
    for key, name in (
        ("sensitivity", "Sensitivity"),
        ("specificity", "Specificity"),
        ("ppv", "PPV"),
        ("npv", "NPV"),
    ):
        rows.append([name, fmt(img[key], True), fmt(exm[key], True), fmt(vote[key], True)])
    for key, name in (
        ("true_positive", "True positives"),
        ("false_negative", "False negatives"),
        ("true_negative", "True negatives"),
        ("false_positive", "False positives"),
    ):
        rows.append([name, str(img["counts"][key]), str(exm["counts"][key]), str(vote["counts"][key])])
    header = ["Figure", "Image level", "Exam level (mean of frames)", "Exam level (majority vote)"]
    lines += _table(header, rows)
    for level, block in (("image", img), ("exam", exm)):
        y = block["youden"]
        if y.get("threshold") is not None:
            lines.append(
                f"- Youden threshold at {level} level: {y['threshold']:.4f} (sensitivity "
                f"{100 * y['sensitivity']:.1f}%, specificity {100 * y['specificity']:.1f}%). **Optimistic:** "
                "chosen on these same data; do not report it as the model's performance."
            )
    return [*lines, ""]


def _per_class(result: dict[str, Any], key: str, title: str) -> list[str]:
    block = result[key]
    other = "image_level" if key == "exam_level" else "exam_level"
    unit = "Exams" if key == "exam_level" else "Images"
    rows = []
    for cls in result["classes"]:
        c = block["per_class"][cls]
        rows.append(
            [
                cls,
                str(c["n"]),
                str(result[other]["per_class"][cls]["n"]),
                fmt(c["recall"], True),
                fmt(c["specificity"], True),
                fmt(c["precision"], True),
                fmt(c["f1"], True),
                fmt(c["roc_auc"]),
                fmt(c["pr_auc"]),
            ]
        )
    other_unit = "Images" if unit == "Exams" else "Exams"
    header = [
        "Class",
        unit,
        other_unit,
        "Sensitivity (recall)",
        "Specificity",
        "Precision (PPV)",
        "F1",
        "ROC AUC",
        "PR AUC",
    ]
    return [f"## Per class, {title}", "", *_table(header, rows)]


def _ga(result: dict[str, Any]) -> list[str]:
    ga = result.get("ga_subgroups") or {}
    if ga.get("value", 0) is None:
        return ["## Gestational age", "", f"Not available: {ga.get('reason', 'no gestational age')}.", ""]
    lines = [
        "## Gestational age",
        "",
        f"Weeks are {ga['weeks']}. Unknown gestational age: "
        f"{ga['n_exams_unknown_ga']} exams, {ga['n_images_unknown_ga']} images.",
        "",
    ]
    rows = []
    splits = {**ga["trimester_bands"], **ga["cut_20_weeks"]["groups"]}
    for name, levels in splits.items():
        e, i = levels["exam_level"], levels["image_level"]
        if e["n"] == 0:
            rows.append([name, "0", str(i["n"]), "—", "—", "—", "—", "—"])
            continue
        rows.append(
            [
                name,
                str(e["n"]),
                str(i["n"]),
                fmt(e["accuracy"], True),
                fmt(i["accuracy"], True),
                fmt(e.get("nva_sensitivity"), True),
                fmt(e.get("nva_specificity"), True),
                fmt(e["mean_true_class_prob"]),
            ]
        )
    header = [
        "Subgroup",
        "Exams",
        "Images",
        "Accuracy (exam)",
        "Accuracy (image)",
        "Sensitivity (exam)",
        "Specificity (exam)",
        "Mean P(true class), exam",
    ]
    lines += _table(header, rows)
    tests = ga["cut_20_weeks"]["mann_whitney_true_class_probability"]
    for name, t in tests.items():
        if not isinstance(t, dict):
            continue
        if t.get("p_value") is None:
            lines.append(f"- Mann–Whitney U, {name}, <20 vs ≥20 weeks: not available ({t['reason']}).")
        else:
            lines.append(
                f"- Mann–Whitney U of the true-class probability, {name}, <20 weeks (n={t['n_before']}, "
                f"median {t['median_before']:.3f}) vs ≥20 weeks (n={t['n_after']}, median "
                f"{t['median_after']:.3f}): U = {t['u_statistic']:g}, p = {t['p_value']:.4f}."
            )
    return [*lines, ""]


def render_summary(result: dict[str, Any]) -> str:
    """The Markdown summary of an evaluation result."""
    data = result["data"]
    boot = result["bootstrap"]
    source = result.get("source") or {}
    name = source.get("name") or source.get("path") or "predictions"
    lines = [f"# Evaluation: {name}", "", f"> {result['intended_use']}", ""]
    lines += [f"Created {result['created_at']} with FetalCNS {result['fetalcns_version']}.", ""]
    for key, value in source.items():
        if key != "name":
            lines.append(f"- {key.replace('_', ' ')}: {value}")
    lines.append("")
    rows = [
        [c, str(data["images_per_class"][c]), str(data["groups_per_class"][c])] for c in result["classes"]
    ]
    rows.append(["**total**", str(data["n_images"]), str(data["n_groups"])])
    lines += ["## Data", "", *_table(["Class", "Images", "Groups (cases)"], rows)]
    if data["n_augmented_excluded"]:
        lines += [f"Augmented copies left out: {data['n_augmented_excluded']} images.", ""]
    elif data["n_augmented_included"]:
        lines += [f"Augmented copies included: {data['n_augmented_included']} images.", ""]
    lines += [
        f"Figures give the value and its 95% confidence interval: percentile bootstrap over cases "
        f"(groups), {boot['resamples']} resamples, seed {boot['seed']}. An exam is one case; its "
        "probabilities are the mean over its images. An interval cannot reach beyond what the cases show: "
        "100% (100–100%) from a few cases means that none was missed here, not that none ever will be.",
        "",
    ]
    lines += _overview(result)
    lines += _normal_vs_abnormal(result)
    lines += _per_class(result, "exam_level", "exam level (mean of frames)")
    lines += _per_class(result, "image_level", "image level")
    lines += _ga(result)
    notes = [f"- `{path}`: {reason}" for path, reason in _undefined(result)]
    for block in (result["image_level"], result["exam_level"]):
        excluded = block["roc_auc"]["macro"].get("classes_excluded")
        if excluded:
            notes.append(
                f"- {block['unit']} level macro AUCs leave out {', '.join(excluded)} (not in the data)."
            )
    notes += [f"- {w}" for w in result.get("warnings", [])]
    if notes:
        lines += ["## Not defined on these data, and warnings", "", *notes, ""]
    return "\n".join(lines)
