"""fetalcns-train end to end on a generated toy dataset (CPU, small images, a few epochs)."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fetalcns_core.bundle import load_bundle, load_fold_models
from fetalcns_core.training import fold as fold_module
from fetalcns_core.training.cli import main, parse_args
from fetalcns_core.training.dataset import build_index
from fetalcns_core.training.frames import FrameSettings, extract_frames
from fetalcns_core.training.splits import check_splits
from tests.core.training.toy import TOY_CLASSES, make_toy_dataset

FAST = [
    "--crop",
    "none",
    "--size",
    "32",
    "--resize",
    "36",
    "--batch-size",
    "8",
    "--workers",
    "0",
    "--no-progress",
    "--lr",
    "2e-3",
    "--rrc-scale",
    "0.5",
    "1.0",
    "--arch",
    "resnet18",
    "--folds",
    "2",
]


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "data", groups_per_class=5, images_per_group=8)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("frame-cache")


@pytest.fixture(scope="module")
def toy_run(toy: Path, cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "run"
    logger = logging.getLogger("fetalcns_core")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        args = [
            "--data",
            str(toy),
            "--output-dir",
            str(run),
            "--cache-dir",
            str(cache),
            "--epochs",
            "4",
            *FAST,
        ]
        assert main(args) == 0
    finally:
        logger.setLevel(level)
    return run


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open() as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def test_the_loop_learns_to_beat_chance_on_held_out_groups(toy_run: Path) -> None:
    _, rows = read_csv(toy_run / "oof_predictions.csv")
    classes = sorted(TOY_CLASSES)
    probs = np.array([[float(r[f"prob_{c}"]) for c in classes] for r in rows])
    labels = np.array([classes.index(r["label"]) for r in rows])
    accuracy = float((probs.argmax(1) == labels).mean())
    assert accuracy > 0.55, f"out-of-fold accuracy {accuracy:.2f} (chance 0.33)"


def test_run_records_config_classes_and_a_leak_free_split(toy_run: Path, toy: Path) -> None:
    run = json.loads((toy_run / "run.json").read_text())
    assert run["classes"] == sorted(TOY_CLASSES)
    cfg = run["config"]
    assert cfg["lr"] == 2e-3 and cfg["weight_decay"] == 0.05 and cfg["patience"] == 5 and cfg["every"] == 80
    assert run["seeds"]["seed"] == 0 and run["code_version"]
    from fetalcns_core.training.splits import FoldSplit

    splits = [FoldSplit.from_dict(s) for s in run["splits"]["folds"]]
    groups = {s.group for s in build_index(toy).samples}
    check_splits(splits, groups)
    for s in splits:
        assert not set(s.val) & set(s.test) and s.val
        assert run["splits"]["validation_groups"][str(s.fold)] == list(s.val)
    assert set(run["splits"]["group_test_fold"]) == groups
    from fetalcns_core.training.outputs import identity

    again = parse_args(["--config", str(toy_run / "run.json"), "--data", str(toy)])
    assert identity(again) == cfg  # run.json is a complete config for the same run
    log = (toy_run / "train.log").read_text()
    assert "non-aug" in log and "usable frames per class" in log and "fold 1: best epoch" in log


def test_out_of_fold_table_has_every_frame_once_with_its_test_fold(toy_run: Path, toy: Path) -> None:
    columns, rows = read_csv(toy_run / "oof_predictions.csv")
    assert columns == ["file", "frame", "group", "fold", "label", "augmented", "gestational_age_weeks"] + [
        f"prob_{c}" for c in sorted(TOY_CLASSES)
    ]
    index = build_index(toy)
    assert sorted(r["file"] for r in rows) == sorted(s.file for s in index.samples)
    assignment = json.loads((toy_run / "run.json").read_text())["splits"]["group_test_fold"]
    for r in rows:
        assert int(r["fold"]) == assignment[r["group"]]
        assert abs(sum(float(r[f"prob_{c}"]) for c in TOY_CLASSES) - 1) < 1e-4
        assert r["gestational_age_weeks"] == "" and r["augmented"] == "0"
    _, metrics = read_csv(toy_run / "metrics.csv")
    assert [(int(m["fold"]), int(m["epoch"])) for m in metrics] == [(f, e) for f in (0, 1) for e in range(4)]


def test_bundle_holds_each_folds_best_epoch_and_temperature(toy_run: Path) -> None:
    bundle = load_bundle(toy_run / "bundle")
    assert bundle.trained and bundle.classes == sorted(TOY_CLASSES) and bundle.architecture == "resnet18"
    assert bundle.input_spec.size == 32 and bundle.input_spec.resize == 36
    for k, spec in enumerate(bundle.folds):
        result = json.loads((toy_run / "folds" / f"fold-{k}" / "result.json").read_text())
        assert spec.temperature == pytest.approx(result["temperature"])
        assert np.isfinite(result["val_ece_before"]) and np.isfinite(result["val_ece_after"])
        best = load_file(str(toy_run / "folds" / f"fold-{k}" / "best.safetensors"))
        model = load_fold_models(bundle)[k]
        assert torch.allclose(model.state_dict()["fc.weight"], best["fc.weight"], atol=1e-2)
    training = bundle.manifest["training"]
    assert training["recipe"]["lr"] == 2e-3 and len(training["folds"]) == 2
    assert bundle.manifest["data"]["counts"]["normal"]["groups"] == 5
    assert bundle.label_map is not None


def test_a_second_run_decodes_nothing(toy: Path, cache: Path, toy_run: Path, monkeypatch) -> None:
    import fetalcns_core.sources as sources

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached file was decoded again")

    monkeypatch.setattr(sources, "iter_frames", no_decoding)
    items, report = extract_frames(build_index(toy).samples, FrameSettings(crop="none"), cache)
    assert report.decoded == 0 and len(items) == 120


def test_too_few_groups_for_the_folds_is_refused(toy: Path, tmp_path: Path, caplog) -> None:
    rc = main(
        [
            "--data",
            str(toy),
            "--output-dir",
            str(tmp_path / "r"),
            "--cache-dir",
            str(tmp_path / "c"),
            *FAST,
            "--folds",
            "6",
        ]
    )
    assert rc == 1
    assert "at least 6 groups" in caplog.text and not (tmp_path / "r").exists()


def run_fold0(toy: Path, cache: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "--data",
            str(toy),
            "--output-dir",
            str(out),
            "--cache-dir",
            str(cache),
            "--epochs",
            "2",
            "--fold",
            "0",
            *FAST,
            *extra,
        ]
    )


def test_resume_continues_exactly_where_the_run_stopped(
    toy: Path, cache: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    assert run_fold0(toy, cache, tmp_path / "whole") == 0
    assert not (tmp_path / "whole" / "bundle").exists()  # fold 1 is still to do

    real = fold_module.train_one_epoch

    def interrupted(*args, **kwargs):
        if args[6] == 1:  # the epoch argument
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(fold_module, "train_one_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_fold0(toy, cache, tmp_path / "cut")
    monkeypatch.setattr(fold_module, "train_one_epoch", real)
    assert run_fold0(toy, cache, tmp_path / "cut") == 1
    assert "add --resume" in caplog.text
    assert run_fold0(toy, cache, tmp_path / "cut", "--resume") == 0

    for name in ("best.safetensors",):
        a = load_file(str(tmp_path / "whole/folds/fold-0" / name))
        b = load_file(str(tmp_path / "cut/folds/fold-0" / name))
        assert all(torch.equal(a[k], b[k]) for k in a)
    ma = read_csv(tmp_path / "whole/folds/fold-0/metrics.csv")[1]
    mb = read_csv(tmp_path / "cut/folds/fold-0/metrics.csv")[1]
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(ma) == drop(mb) and len(ma) == 2
    assert read_csv(tmp_path / "whole/folds/fold-0/oof.csv") == read_csv(
        tmp_path / "cut/folds/fold-0/oof.csv"
    )

    # folds trained apart (other machines) join into one run
    assert (
        main(
            [
                "--data",
                str(toy),
                "--output-dir",
                str(tmp_path / "other"),
                "--cache-dir",
                str(cache),
                "--epochs",
                "2",
                "--fold",
                "1",
                *FAST,
            ]
        )
        == 0
    )
    assert main(["assemble", str(tmp_path / "whole")]) == 1
    shutil.copytree(tmp_path / "other/folds/fold-1", tmp_path / "whole/folds/fold-1")
    assert main(["assemble", str(tmp_path / "whole")]) == 0
    assert len(load_bundle(tmp_path / "whole" / "bundle").folds) == 2
    # other settings cannot join a run
    assert run_fold0(toy, cache, tmp_path / "whole", "--lr", "1e-3") == 1
    assert "lr 0.002 -> 0.001" in caplog.text


def test_config_file_sets_defaults_and_the_command_line_wins(tmp_path: Path) -> None:
    cfg = tmp_path / "recipe.toml"
    cfg.write_text('lr = 0.001\nepochs = 7\nsplit = "logo"\n')
    args = parse_args(["--data", "x.csv", "--config", str(cfg), "--epochs", "3"])
    assert args.lr == 0.001 and args.epochs == 3 and args.split == "logo" and args.weight_decay == 0.05
    (tmp_path / "bad.json").write_text('{"learning_rate": 1}')
    with pytest.raises(SystemExit):
        parse_args(["--data", "x.csv", "--config", str(tmp_path / "bad.json")])


def test_data_fingerprint_follows_content_labels_and_groups_not_paths(toy: Path, tmp_path: Path) -> None:
    from fetalcns_core.sources import sha256_file
    from fetalcns_core.training.dataset import LabelMap
    from fetalcns_core.training.train import data_fingerprint

    def fingerprint(root: Path, label_map: LabelMap | None = None) -> str:
        index = build_index(root, label_map)
        return data_fingerprint(index, {s.file: sha256_file(s.path) for s in index.samples})

    moved = shutil.copytree(toy, tmp_path / "elsewhere")
    assert fingerprint(toy) == fingerprint(moved)
    assert fingerprint(toy) != fingerprint(toy, LabelMap.from_dict({"checker": "stripes-v"}))
    (moved / "normal" / "normal-patient00").rename(moved / "normal" / "renamed-patient")
    assert fingerprint(toy) != fingerprint(moved)
