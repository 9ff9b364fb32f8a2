"""``fetalcns-eval``: figures of a model from a training run's out-of-fold predictions, or from a bundle
run over a labelled dataset.

    fetalcns-eval RUN_DIR_or_oof_predictions.csv [--out DIR]
    fetalcns-eval --bundle BUNDLE_DIR --data MANIFEST.csv|ROOT [--out DIR]

Writes metrics.json, summary.md and the plots (roc, pr, confusion_image, confusion_exam, reliability).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fetalcns_core import INTENDED_USE
from fetalcns_core.evaluation.evaluate import (
    DEFAULT_BINS,
    DEFAULT_BOOTSTRAP,
    DEFAULT_THRESHOLD,
    evaluate_predictions,
)
from fetalcns_core.evaluation.outputs import write_outputs
from fetalcns_core.evaluation.summary import fmt
from fetalcns_core.evaluation.table import (
    PredictionTable,
    PredictionTableError,
    read_predictions_csv,
    write_predictions_csv,
)

log = logging.getLogger("fetalcns_core.evaluation")

OOF_FILE = "oof_predictions.csv"
RUN_FILE = "run.json"


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fetalcns-eval",
        description="Evaluate a FetalCNS model: out-of-fold predictions of a training run, or a model "
        "bundle on a labelled dataset. " + INTENDED_USE,
    )
    p.add_argument(
        "predictions", nargs="?", help=f"a training run folder (with {OOF_FILE}) or a predictions CSV"
    )
    p.add_argument("--bundle", help="a model bundle folder (manifest.json + fold weights)")
    p.add_argument(
        "--data", help="labelled dataset for --bundle: a CSV manifest or ROOT/<class>/<case>/ folders"
    )
    p.add_argument("--out", help="output folder (default: RUN_DIR/evaluation, or ./evaluation-<bundle id>)")
    p.add_argument("--normal-class", help="the normal class (default: run.json's, else 'normal')")
    p.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="operating threshold on 1 - P(normal) for normal vs abnormal (default 0.5)",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_BOOTSTRAP,
        help="bootstrap resamples over groups for the 95%% intervals (default 2000; 0 = none)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--bins", type=int, default=DEFAULT_BINS, help="calibration bins (default 10)")
    p.add_argument("--include-augmented", action="store_true", help="evaluate augmented copies too")
    p.add_argument(
        "--drop-unknown-labels",
        action="store_true",
        help="with --bundle: leave out files whose label is not a class of the bundle",
    )
    p.add_argument("--device", default="auto", help="with --bundle: auto, cpu, cuda, cuda:1 ...")
    p.add_argument(
        "--crop", choices=("auto", "none"), help="with --bundle: cropping (default: as trained, else auto)"
    )
    p.add_argument(
        "--every", type=int, help="with --bundle: every N-th video frame (default: as trained, else 80)"
    )
    p.add_argument("--batch-size", type=int, default=8, help="with --bundle: frames per batch")
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    return p


def _read_run(run_json: Path) -> dict[str, Any]:
    try:
        data = json.loads(run_json.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PredictionTableError(f"cannot read '{run_json}': {exc}") from exc
    if not isinstance(data, dict):
        raise PredictionTableError(f"'{run_json}' is not a training run description (expected an object)")
    return data


def load_run_predictions(
    path: Path, normal_class: str | None = None
) -> tuple[PredictionTable, str, dict[str, Any]]:
    """The table, the normal class and a source description from a run folder or a predictions CSV."""
    csv_path = path / OOF_FILE if path.is_dir() else path
    if not csv_path.is_file():
        raise PredictionTableError(
            f"'{csv_path}' does not exist: give a training run folder holding {OOF_FILE}, or the CSV itself"
        )
    run_json = csv_path.parent / RUN_FILE
    run = _read_run(run_json) if run_json.is_file() else {}
    table = read_predictions_csv(csv_path)
    run_classes = run.get("classes")
    if run_classes is not None:
        if sorted(run_classes) != sorted(table.classes):
            raise PredictionTableError(
                f"{RUN_FILE} names the classes {run_classes} but {csv_path.name} has probabilities for "
                f"{table.classes}: the two files are not of the same run"
            )
        if list(run_classes) != table.classes:
            log.warning(
                "class order taken from the prob_ columns %s (run.json lists %s)", table.classes, run_classes
            )
    normal = normal_class or run.get("normal_class") or "normal"
    source = {"name": csv_path.parent.name if path.is_dir() else csv_path.name, "predictions": str(csv_path)}
    if run:
        source["run"] = str(run_json)
        for key in ("run_id", "code_version", "architecture"):
            if key in run and isinstance(run[key], str | int | float):
                source[key] = run[key]
    return table, normal, source


def print_summary(result: dict[str, Any], paths: dict[str, Path]) -> None:
    data = result["data"]
    print(f"FetalCNS evaluation — {INTENDED_USE}")
    print(
        f"{data['n_images']} images, {data['n_exams']} exams, {data['n_groups']} groups, "
        f"{len(result['classes'])} classes; 95% CI from {result['bootstrap']['resamples']} group resamples"
    )
    for key, title in (("image_level", "image"), ("exam_level", "exam ")):
        b = result[key]
        line = (
            f"  {title}: accuracy {fmt(b['accuracy'], True)}, balanced {fmt(b['balanced_accuracy'], True)}, "
            f"macro F1 {fmt(b['macro_f1'], True)}, macro AUC {fmt(b['roc_auc']['macro'])}"
        )
        nva = b["normal_vs_abnormal"]
        if nva.get("auroc"):
            line += (
                f"; normal vs abnormal AUROC {fmt(nva['auroc'])}, "
                f"sensitivity {fmt(nva['sensitivity'], True)}, "
                f"specificity {fmt(nva['specificity'], True)} at {nva['threshold']:g}"
            )
        print(line)
    for warning in result.get("warnings", []):
        print(f"  warning: {warning}")
    print(f"written to {paths['metrics'].parent}: " + ", ".join(p.name for p in paths.values()))


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s"
    )
    if (args.predictions is None) == (args.bundle is None):
        print("give either a run folder / predictions CSV, or --bundle with --data", file=sys.stderr)
        return 2
    if args.bundle and not args.data:
        print("--bundle needs --data: the labelled dataset (CSV manifest or class folders)", file=sys.stderr)
        return 2
    errors: tuple[type[BaseException], ...] = (PredictionTableError, ValueError, OSError)
    if args.bundle is not None:
        from fetalcns_core.bundle import BundleError

        errors += (BundleError,)
    try:
        if args.predictions is not None:
            path = Path(args.predictions)
            table, normal, source = load_run_predictions(path, args.normal_class)
            out = Path(args.out) if args.out else (path if path.is_dir() else path.parent) / "evaluation"
            notes: dict[str, Any] = {}
            warnings: list[str] = []
        else:
            from fetalcns_core.evaluation.bundle_eval import predict_dataset

            made = predict_dataset(
                args.bundle,
                args.data,
                include_augmented=args.include_augmented,
                drop_unknown_labels=args.drop_unknown_labels,
                device=args.device,
                crop=args.crop,
                every=args.every,
                batch_size=args.batch_size,
            )
            table, source, notes, warnings = made.table, made.source, made.notes, made.warnings
            normal = args.normal_class or made.normal_class
            out = Path(args.out) if args.out else Path(f"evaluation-{source['bundle_id']}")
            write_predictions_csv(table, out / "predictions.csv")
        result = evaluate_predictions(
            table,
            table.classes,
            normal,
            threshold=args.threshold,
            n_bootstrap=args.bootstrap,
            seed=args.seed,
            n_bins=args.bins,
            include_augmented=args.include_augmented,
            source=source,
            data_notes=notes,
            warnings=warnings,
        )
        paths = write_outputs(result, out)
    except errors as exc:
        print(f"fetalcns-eval: {exc}", file=sys.stderr)
        return 1
    print_summary(result, paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
