"""Write an evaluation: ``metrics.json`` (every figure), ``summary.md`` and the PNG plots."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from fetalcns_core.evaluation.plots import write_plots
from fetalcns_core.evaluation.summary import render_summary
from fetalcns_core.exam import atomic_write_bytes

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
SUMMARY_FILE = "summary.md"


def write_outputs(result: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the result of ``evaluate_predictions`` into ``out_dir``; returns the written paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1, ensure_ascii=False, allow_nan=False)
    paths: dict[str, Path] = {"metrics": out / METRICS_FILE, "summary": out / SUMMARY_FILE}
    atomic_write_bytes(paths["metrics"], text.encode("utf-8"))
    atomic_write_bytes(paths["summary"], render_summary(result).encode("utf-8"))
    for path in write_plots(result, out):
        paths[path.stem] = path
    log.info("evaluation written to %s", out)
    return paths


def read_metrics(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``metrics.json`` (a file or the folder that holds it)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the evaluation '{path}': {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != "fetalcns-evaluation":
        raise ValueError(f"'{path}' is not a FetalCNS evaluation (metrics.json from fetalcns-eval)")
    return data
