"""fetalcns-eval on a generated run folder: outputs exist, the JSON parses, errors are reported."""

from __future__ import annotations

import csv
import json

import pytest

from fetalcns_core.evaluation.cli import main
from fetalcns_core.evaluation.outputs import read_metrics

from .conftest import CLASSES, random_rows

PNGS = ("roc.png", "pr.png", "confusion_image.png", "confusion_exam.png", "reliability.png")


def _write_csv(path, rows):
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_cli_on_a_run_folder_writes_every_output(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    _write_csv(run / "oof_predictions.csv", random_rows(n_groups=24, seed=3))
    (run / "run.json").write_text(json.dumps({"classes": CLASSES, "normal_class": "normal", "run_id": "r1"}))
    assert main([str(run), "--bootstrap", "50", "--quiet"]) == 0
    out = run / "evaluation"
    for name in ("metrics.json", "summary.md", *PNGS):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == read_metrics(out)
    assert metrics["classes"] == CLASSES and metrics["bootstrap"]["resamples"] == 50
    assert metrics["source"]["run_id"] == "r1"
    summary = (out / "summary.md").read_text()
    assert "not a diagnosis" in summary and "| Accuracy |" in summary and "Mann–Whitney" in summary
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "metrics.json" in printed


def test_cli_on_a_csv_without_run_json_uses_normal(tmp_path):
    rows = random_rows(n_groups=10, seed=4)
    _write_csv(tmp_path / "preds.csv", rows)
    assert (
        main([str(tmp_path / "preds.csv"), "--bootstrap", "0", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    )
    metrics = read_metrics(tmp_path / "o" / "metrics.json")
    assert metrics["normal_class"] == "normal"
    assert metrics["image_level"]["accuracy"]["ci_low"] is None


def test_cli_reports_bad_input(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    _write_csv(run / "oof_predictions.csv", random_rows(n_groups=6, seed=5))
    (run / "run.json").write_text(json.dumps({"classes": ["normal", "x"], "normal_class": "normal"}))
    assert main([str(run), "--quiet"]) == 1
    assert "not of the same run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--threshold", "x"])
    assert main([]) == 2


def test_reads_the_training_runs_out_of_fold_columns_with_video_frames(tmp_path, caplog):
    from fetalcns_core.evaluation import read_predictions_csv
    from fetalcns_core.training.outputs import BASE_COLUMNS

    rows = random_rows(n_groups=4, seed=6)
    rows += [dict(rows[0], frame=80), dict(rows[0], frame=160)]  # two more frames of one video
    rows[0]["frame"] = 0
    columns = BASE_COLUMNS + [f"prob_{c}" for c in CLASSES]
    with (tmp_path / "oof_predictions.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, restval="0")
        writer.writeheader()
        writer.writerows(rows)
    table = read_predictions_csv(tmp_path / "oof_predictions.csv")
    assert table.classes == CLASSES and table.frames.tolist()[-2:] == [80, 160]
    ids = table.unit_ids()
    assert len(set(ids)) == len(ids) and ids[0].endswith("#0") and ids[-1].endswith("#160")
    assert "repeat" not in caplog.text
