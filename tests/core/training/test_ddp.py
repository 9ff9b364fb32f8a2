"""Multi-process training (DDP) with torchrun, on CPU with the gloo backend, at toy size."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

from tests.core.training.toy import make_toy_dataset

ROOT = Path(__file__).resolve().parents[3]


def test_two_gloo_processes_train_a_fold_each_on_half_the_batches(tmp_path: Path) -> None:
    data = make_toy_dataset(tmp_path / "data", groups_per_class=3, images_per_group=4, size=40)
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "fetalcns_core.training.cli",
        "--data",
        str(data),
        "--output-dir",
        str(run),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--device",
        "cpu",
        "--fold",
        "0",
        "--folds",
        "2",
        "--epochs",
        "2",
        "--crop",
        "none",
        "--size",
        "32",
        "--resize",
        "36",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--no-progress",
        "--arch",
        "resnet18",
    ]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    fold = run / "folds" / "fold-0"
    result = json.loads((fold / "result.json").read_text())
    with (fold / "metrics.csv").open() as fh:
        metrics = list(csv.DictReader(fh))
    assert [int(m["world_size"]) for m in metrics] == [2, 2]
    # each process takes half the training frames: ceil(n / 2) / batch steps (the last partial batch dropped)
    run_json = json.loads((run / "run.json").read_text())
    split = run_json["splits"]["folds"][0]
    n_train = 4 * len(split["train"])
    per_process = math.ceil(n_train / 2)
    assert int(metrics[0]["steps"]) == per_process // 4
    # the test frames are predicted once each, although two processes shared them
    with (fold / "oof.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 * len(split["test"]) == len({r["file"] for r in rows})
    assert result["best_epoch"] in (0, 1) and (fold / "best.safetensors").is_file()
