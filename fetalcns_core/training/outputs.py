"""What a run leaves behind, and putting the folds together.

```
RUN/run.json                    resolved config, classes, label map, split assignment, seeds, code version
RUN/folds/fold-K/               checkpoint.pt, best.safetensors, metrics.csv, oof.csv, result.json
RUN/metrics.csv                 per-epoch metrics of every fold
RUN/oof_predictions.csv         out-of-fold predictions (calibrated): the input of fetalcns-eval
RUN/oof_predictions_uncalibrated.csv
RUN/bundle/                     manifest.json, fold-K.safetensors, MODEL_CARD.md: ready for the app
```
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fetalcns_core import INTENDED_USE, __version__
from fetalcns_core.exam import atomic_write_bytes

if TYPE_CHECKING:
    from fetalcns_core.training.fold import RunData

log = logging.getLogger(__name__)


class RunError(RuntimeError):
    """A run cannot go on as asked (a clash with the run folder, a missing fold ...); the message says why."""


RUN_JSON = "run.json"
OOF = "oof_predictions.csv"
OOF_RAW = "oof_predictions_uncalibrated.csv"
METRICS = "metrics.csv"
# settings that do not change what is trained: they may differ between the processes of one run
# (the data and label map are compared by content: run.json's data fingerprint and label map)
TRANSIENT = frozenset(
    {
        "resume",
        "fold",
        "device",
        "workers",
        "output_dir",
        "cache_dir",
        "progress",
        "config",
        "log_level",
        "amp",
        "data",
        "label_map",
    }
)
BASE_COLUMNS = ["file", "frame", "group", "fold", "label", "augmented", "gestational_age_weeks"]


def identity(args: argparse.Namespace) -> dict[str, Any]:
    """The settings that define a run's results (everything but where and how fast it runs)."""
    return {k: v for k, v in sorted(vars(args).items()) if k not in TRANSIENT}


def fold_dir(run_dir: Path, fold: int) -> Path:
    return run_dir / "folds" / f"fold-{fold}"


def code_version() -> str:
    """The package version, with the git commit when run from a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        commit = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


def write_run_json(run_dir: Path, record: dict[str, Any]) -> None:
    text = json.dumps(record, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    atomic_write_bytes(run_dir / RUN_JSON, text.encode("utf-8"))


def read_run_json(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / RUN_JSON).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            return list(reader.fieldnames or []), list(reader)
    except FileNotFoundError:
        return [], []


def read_metrics(directory: Path) -> list[dict[str, Any]]:
    return _read_csv(directory / METRICS)[1]


def append_metrics(directory: Path, rows: Sequence[dict[str, Any]]) -> None:
    """(Re)write ``metrics.csv`` of a fold with all its epochs so far."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    _write_csv(directory / METRICS, columns, rows)


def write_predictions(
    directory: Path, data: RunData, items: Sequence[int], fold: int, probs: np.ndarray, raw_probs: np.ndarray
) -> None:
    """A fold's test predictions: ``oof.csv`` (calibrated) and ``oof_uncalibrated.csv``."""
    classes = data.index.classes
    columns = BASE_COLUMNS + [f"prob_{c}" for c in classes]
    for name, table in (("oof.csv", probs), ("oof_uncalibrated.csv", raw_probs)):
        rows = []
        for row_probs, i in zip(table, items, strict=True):
            item = data.items[i]
            sample = data.index.samples[item.sample]
            ga = sample.gestational_age_weeks
            row = {
                "file": sample.file,
                "frame": item.index,
                "group": sample.group,
                "fold": fold,
                "label": sample.label,
                "augmented": int(sample.augmented),
                "gestational_age_weeks": "" if ga is None else f"{ga:g}",
            }
            row.update({f"prob_{c}": f"{p:.6f}" for c, p in zip(classes, row_probs, strict=True)})
            rows.append(row)
        _write_csv(directory / name, columns, rows)


def folds_done(run_dir: Path, n_folds: int) -> list[int]:
    return [k for k in range(n_folds) if (fold_dir(run_dir, k) / "result.json").is_file()]


def assemble(run_dir: str | Path, dtype: str = "float16") -> Path:
    """Join the finished folds of a run: out-of-fold tables, metrics, and the model bundle.

    Each fold's folder may come from another machine (copy ``folds/fold-K`` into one run folder).
    """
    from fetalcns_core.bundle import write_bundle
    from fetalcns_core.preprocess import InputSpec
    from fetalcns_core.training.checkpoint import BEST, load_best

    run_dir = Path(run_dir)
    run = read_run_json(run_dir)
    if run is None:
        raise FileNotFoundError(f"'{run_dir}' holds no {RUN_JSON}: give the folder of a training run")
    n_folds = len(run["splits"]["folds"])
    done = folds_done(run_dir, n_folds)
    missing = sorted(set(range(n_folds)) - set(done))
    if missing:
        raise RunError(
            f"folds {missing} of {run_dir} are not finished: train them (--fold K --resume) "
            "or copy their folds/fold-K folders here"
        )
    cfg, classes = run["config"], run["classes"]
    for src, dst in (("oof.csv", OOF), ("oof_uncalibrated.csv", OOF_RAW), (METRICS, METRICS)):
        columns: list[str] = []
        rows: list[dict[str, str]] = []
        for k in range(n_folds):
            cols, part = _read_csv(fold_dir(run_dir, k) / src)
            columns += [c for c in cols if c not in columns]
            rows += part
        _write_csv(run_dir / dst, columns, rows)
    results = [json.loads((fold_dir(run_dir, k) / "result.json").read_text()) for k in range(n_folds)]
    states = [load_best(fold_dir(run_dir, k) / BEST) for k in range(n_folds)]
    extra = {
        "label_map": run["label_map"],
        "training": {
            "recipe": {
                k: cfg[k]
                for k in (
                    "arch",
                    "init",
                    "epochs",
                    "batch_size",
                    "lr",
                    "weight_decay",
                    "warmup_epochs",
                    "patience",
                    "select_metric",
                    "class_weights",
                    "rrc_scale",
                    "photometric",
                    "label_smoothing",
                )
                if k in cfg
            },
            "split": {
                "scheme": cfg["split"],
                "folds": n_folds,
                "val_fraction": cfg["val_fraction"],
                "seed": cfg["seed"],
                "unit": "group (patient or exam)",
            },
            "frames": {"every": cfg["every"], "fps": cfg["fps"], "crop": cfg["crop"]},
            "folds": [
                {
                    "fold": r["fold"],
                    "best_epoch": r["best_epoch"],
                    "temperature": r["temperature"],
                    "val_ece_before": r["val_ece_before"],
                    "val_ece_after": r["val_ece_after"],
                }
                for r in results
            ],
            "code_version": run["code_version"],
            "run_id": run["run_id"],
        },
        "data": {
            "source": run["data"]["source"],
            "counts": run["data"]["counts"],
            "licence": cfg.get("data_licence") or "not stated",
        },
        "intended_use": INTENDED_USE,
    }
    bundle_id = cfg.get("bundle_id") or f"fetalcns-{run['architecture']}-{run['run_id']}"
    write_bundle(
        run_dir / "bundle",
        states,
        bundle_id=bundle_id,
        architecture=run["architecture"],
        classes=classes,
        class_names=run["class_names"],
        normal_class=run["normal_class"],
        input_spec=InputSpec(size=cfg["size"], resize=cfg["resize"]),
        temperatures=[r["temperature"] for r in results],
        dtype=dtype,
        trained=True,
        extra=json.loads(json.dumps(extra, allow_nan=False, default=str)),
    )
    log.info("run %s assembled: %s, %s and the bundle in %s", run_dir, OOF, METRICS, run_dir / "bundle")
    return run_dir / "bundle"
