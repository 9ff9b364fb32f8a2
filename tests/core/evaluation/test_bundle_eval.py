"""fetalcns-eval --bundle --data: a bundle run over a labelled dataset the way the app runs it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fetalcns_core.bundle import load_bundle, make_random_bundle, update_manifest
from fetalcns_core.ensemble import Ensemble
from fetalcns_core.evaluation import PredictionTableError, read_metrics, read_predictions_csv
from fetalcns_core.evaluation.bundle_eval import predict_dataset
from fetalcns_core.evaluation.cli import main
from fetalcns_core.exam import AnalysisSettings
from fetalcns_core.pipeline import analyse

CLASSES = ("normal", "encephalocele", "ventriculomegaly")


def _image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.integers(30, 220, (120, 160), dtype=np.uint8), (5, 5), 0)
    return cv2.cvtColor(tex, cv2.COLOR_GRAY2BGR)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "b"
    make_random_bundle(out, arch="resnet18", classes=CLASSES, n_folds=2, seed=1)
    update_manifest(out, {"label_map": {"mild-vm": "ventriculomegaly", "scan-junk": None}})
    return out


@pytest.fixture()
def dataset(tmp_path) -> Path:
    rows = [
        ("n1a.png", "normal", "n1", 0, 22),
        ("n1b.png", "normal", "n1", 0, 22),
        ("n2a.png", "normal", "n2", 0, 12),
        ("e1a.png", "encephalocele", "e1", 0, 18),
        ("e1b.png", "encephalocele", "e1", 1, 18),
        ("v1a.png", "mild-vm", "v1", 0, 30),
        ("v2a.png", "ventriculomegaly", "v2", 0, ""),
        ("j1a.png", "scan-junk", "j1", 0, ""),
    ]
    for i, (name, *_rest) in enumerate(rows):
        cv2.imwrite(str(tmp_path / name), _image(i))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    rows.append(("broken.png", "normal", "n2", 0, 12))
    with (tmp_path / "manifest.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label", "group", "augmented", "gestational_age_weeks"])
        writer.writerows(rows)
    return tmp_path / "manifest.csv"


def test_bundle_on_a_dataset_gives_the_apps_scores_and_every_output(bundle, dataset, tmp_path):
    out = tmp_path / "eval"
    assert main(["--bundle", str(bundle), "--data", str(dataset), "--out", str(out), "--bootstrap", "20",
                 "--device", "cpu", "--crop", "none", "--quiet"]) == 0  # fmt: skip
    metrics = read_metrics(out)
    data = metrics["data"]
    assert data["n_images"] == 6 and data["n_groups"] == 5  # n1 (2), n2, e1, v1, v2; broken unscored
    assert data["n_augmented_excluded"] == 1
    assert data["labels_dropped_by_label_map"] == {"scan-junk": 1}
    assert data["n_unscored"] == 1 and data["unscored"][0]["file"] == "broken.png"
    assert metrics["source"]["bundle_trained"] is False
    assert any("untrained" in w for w in metrics["warnings"])
    counts = {"normal": 3, "encephalocele": 1, "ventriculomegaly": 2}
    assert metrics["image_level"]["counts_per_class"] == counts
    for name in ("summary.md", "roc.png", "pr.png", "confusion_image.png", "confusion_exam.png"):
        assert (out / name).is_file()
    table = read_predictions_csv(out / "predictions.csv")
    assert set(table.folds) == {-1} and table.classes == list(CLASSES)
    # the same file analysed alone by the app's pipeline gets the same probabilities
    i = table.files.index("v1a.png")
    ensemble = Ensemble(load_bundle(bundle), device="cpu")
    exam = analyse([dataset.parent / "v1a.png"], ensemble, AnalysisSettings(crop="none"))
    assert table.probs[i] == pytest.approx(np.array(exam.frames[0].probs), abs=1e-6)
    assert table.labels[i] == CLASSES.index("ventriculomegaly") and table.ga_weeks[i] == 30
    json.loads((out / "metrics.json").read_text())


def test_unknown_labels_are_refused_unless_dropped(bundle, dataset, tmp_path, capsys):
    text = dataset.read_text().replace("mild-vm", "lissencephaly")
    dataset.write_text(text)
    with pytest.raises(PredictionTableError, match="lissencephaly"):
        predict_dataset(bundle, dataset, device="cpu", crop="none")
    args = ["--bundle", str(bundle), "--data", str(dataset), "--out", str(tmp_path / "o"), "--bootstrap", "0",
            "--device", "cpu", "--crop", "none", "--quiet"]  # fmt: skip
    assert main(args) == 1 and "label_map" in capsys.readouterr().err
    assert main([*args, "--drop-unknown-labels"]) == 0
    assert read_metrics(tmp_path / "o")["data"]["labels_dropped_unknown"] == {"lissencephaly": 1}


def test_frames_are_sampled_and_cropped_as_the_bundle_was_trained():
    from fetalcns_core.evaluation.bundle_eval import analysis_settings

    trained = {"training": {"frames": {"every": 40, "fps": None, "crop": "none"}}}
    s = analysis_settings(trained, None, None, None, "cpu")
    assert (s.every, s.fps, s.crop, s.device) == (40, None, "none", "cpu")
    s = analysis_settings(trained, "auto", 10, None, "cpu")
    assert (s.every, s.crop) == (10, "auto")
    s = analysis_settings({}, None, None, None, "auto")
    assert (s.every, s.crop) == (AnalysisSettings().every, AnalysisSettings().crop)


@pytest.mark.shared
def test_real_images_of_the_shared_dataset_go_through(bundle, shared_data, tmp_path):
    root = shared_data / "fetal-brain-us"
    with (root / "manifest.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["augmented"] == "0"]
    picked: list[dict] = []
    for label in ("normal", "encephalocele", "moderate-ventriculomegaly"):
        groups = sorted({r["group"] for r in rows if r["label"] == label})[:2]
        picked += [next(r for r in rows if r["group"] == g) for g in groups]
    manifest = tmp_path / "subset.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label", "group"])
        for r in picked:
            label = "ventriculomegaly" if "ventriculomegaly" in r["label"] else r["label"]
            writer.writerow([str(root / r["file"]), label, r["group"]])
    made = predict_dataset(bundle, manifest, device="cpu")
    assert len(made.table) + made.notes["n_unscored"] == len(picked) == 6
    assert made.source["crop"] == "auto"
    assert np.allclose(made.table.probs.sum(axis=1), 1.0, atol=1e-4)


def test_a_bundle_on_its_own_training_data_is_flagged_optimistic(bundle, dataset):
    update_manifest(bundle, {"data": {"source": str(dataset)}})
    try:
        made = predict_dataset(bundle, dataset, device="cpu", crop="none")
    finally:
        update_manifest(bundle, {"data": {}})
    assert any("trained on this dataset" in w and "optimistic" in w for w in made.warnings)
