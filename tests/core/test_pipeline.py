"""The pipeline and `fetalcns-predict`: files in, an analysed exam out; bad input never stops the rest."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fetalcns_core.bundle import load_bundle
from fetalcns_core.cli import main as predict_main
from fetalcns_core.ensemble import Ensemble
from fetalcns_core.exam import AnalysisSettings, load_exam
from fetalcns_core.pipeline import analyse, frame_image_provider, reload_frame
from tests.synthetic import fan_image, write_fan_images, write_video

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "sample-exam"


@pytest.fixture()
def exam_folder(tmp_path: Path) -> Path:
    folder = write_fan_images(tmp_path / "exam", 3)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    (folder / "notes.txt").write_text("ignored: not an image")
    return folder


@pytest.fixture()
def small_video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "loop.avi", 25)


def test_a_folder_is_one_exam_and_a_corrupt_file_does_not_stop_the_others(random_bundle, exam_folder):
    ens = Ensemble(random_bundle, device="cpu")
    seen = []
    exam = analyse([exam_folder], ens, AnalysisSettings(), on_frame=seen.append)
    names = [s.name for s in exam.sources]
    assert names == ["broken.png", "img0.png", "img1.png", "img2.png"]
    broken = exam.sources[0]
    assert broken.failed and "broken.png" in broken.error
    assert len(exam.frames) == 3 and all(f.probs is not None for f in exam.frames)
    assert exam.diagnosis is not None and exam.diagnosis.n_frames_used == 3
    assert exam.bundle.bundle_id == random_bundle.bundle_id and exam.bundle.trained is False
    # every frame arrives with its pixels, crop and CAMs for the viewer
    assert len(seen) == 3
    k = len(random_bundle.classes)
    assert all(r.prediction.cams.shape[0] == k and r.crop.image.ndim == 3 for r in seen)


def test_video_frames_are_sampled_every_nth_with_time(random_bundle, small_video):
    ens = Ensemble(random_bundle, device="cpu")
    exam = analyse([small_video], ens, AnalysisSettings(every=10))
    assert [f.index for f in exam.frames] == [0, 10, 20]
    assert [round(f.time_s, 3) for f in exam.frames] == [0.0, 1.0, 2.0]
    assert exam.sources[0].kind == "video"


def test_cancel_returns_the_frames_done_and_says_it_is_incomplete(random_bundle, small_video):
    ens = Ensemble(random_bundle, device="cpu")
    done = []
    exam = analyse(
        [small_video],
        ens,
        AnalysisSettings(every=1),
        on_progress=lambda d, t: done.append(d),
        cancel=lambda: len(done) > 2,
        batch_size=1,
    )
    assert 0 < len(exam.frames) < 25
    assert exam.incomplete and "cancelled" in exam.incomplete


def test_a_saved_frame_can_be_reloaded_and_a_changed_file_is_refused(random_bundle, exam_folder):
    ens = Ensemble(random_bundle, device="cpu")
    exam = analyse([exam_folder], ens)
    rec = exam.frames[0]
    res = reload_frame(rec, exam.settings, ens)
    assert res.crop.box == rec.crop_box
    np.testing.assert_allclose(res.prediction.probs, rec.probs, atol=1e-5)
    images = frame_image_provider(exam, ens)(rec)
    assert images is not None and images[0].shape == images[1].shape
    # the file changes after the analysis
    cv2.imwrite(rec.source_path, cv2.cvtColor(fan_image(99), cv2.COLOR_RGB2BGR))
    assert frame_image_provider(exam, ens)(rec) is None


def test_predict_cli_writes_exam_csv_and_overlays(random_bundle, exam_folder, tmp_path, capsys):
    out = tmp_path / "out"
    code = predict_main([str(exam_folder), "--bundle", str(random_bundle.path), "--out", str(out), "-q"])
    printed = capsys.readouterr()
    assert code == 0
    assert "UNTRAINED TEST MODEL" in printed.out
    assert "FAILED broken.png" in printed.out
    assert "not a diagnosis" in printed.out
    exam = load_exam(out / "exam.fetalcns.json")
    assert len(exam.frames) == 3
    rows = list(csv.DictReader((out / "frames.csv").open()))
    assert len(rows) == 3 and all(r["top_class"] in random_bundle.classes for r in rows)
    assert len(list((out / "overlays").glob("*.png"))) == 3
    json.loads((out / "exam.fetalcns.json").read_text())


def test_predict_cli_fails_with_one_line_reason_on_unusable_input(random_bundle, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    code = predict_main([str(bad), "--bundle", str(random_bundle.path), "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("fetalcns-predict: ") and "bad.jpg" in err[-1]


def test_predict_cli_reports_a_missing_bundle_clearly(tmp_path, capsys):
    code = predict_main([str(SAMPLE), "--bundle", str(tmp_path / "nope"), "-q"])
    assert code == 1
    assert "fetalcns-predict:" in capsys.readouterr().err


def test_sample_exam_ships_with_attribution_and_at_most_12_images():
    images = sorted(p for p in SAMPLE.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    assert 1 <= len(images) <= 12
    attribution = (SAMPLE / "ATTRIBUTION.md").read_text()
    assert "CC BY 4.0" in attribution
    for img in images:
        assert img.name in attribution


def test_reload_honours_the_bundle_of_the_exam(random_bundle):
    # the exam remembers which bundle scored it; loading the bundle again gives the same id and sha256
    again = load_bundle(random_bundle.path)
    assert again.info() == random_bundle.info()
