"""The exam model: aggregation into the per-exam suggestion, and the exam file."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from fetalcns_core.exam import (
    SCHEMA_VERSION,
    AnalysisSettings,
    Box,
    BundleInfo,
    Exam,
    ExamDetails,
    ExamFileError,
    FrameRecord,
    Review,
    SourceFile,
    atomic_write_bytes,
    diagnose,
    exam_to_dict,
    load_exam,
    rediagnose,
    save_exam,
)

CLASSES = ["normal", "encephalocele", "ventriculomegaly"]


def _rec(i: int, probs: list[float] | None, folds: list[list[float]] | None = None, **kw) -> FrameRecord:
    return FrameRecord(
        source_path=f"/x/f{i}.png",
        source_sha256=hashlib.sha256(str(i).encode()).hexdigest(),
        index=0,
        probs=probs,
        fold_probs=folds,
        **kw,
    )


def test_exam_probability_is_the_mean_of_frame_probabilities():
    frames = [_rec(0, [0.6, 0.3, 0.1]), _rec(1, [0.2, 0.7, 0.1]), _rec(2, [0.1, 0.8, 0.1])]
    d = diagnose(frames, CLASSES, "normal")
    assert d is not None
    np.testing.assert_allclose(d.probs, [0.3, 0.6, 0.1])
    assert d.top_class == "encephalocele"
    assert d.top_prob == pytest.approx(0.6)
    assert d.abnormal_score == pytest.approx(0.7)
    assert d.n_frames_used == 3
    assert d.n_frames_support == 2
    assert d.majority_class == "encephalocele"


def test_mean_and_majority_vote_can_disagree():
    # two frames mildly normal, one strongly encephalocele: the vote says normal, the mean does not
    frames = [_rec(0, [0.5, 0.45, 0.05]), _rec(1, [0.5, 0.45, 0.05]), _rec(2, [0.0, 1.0, 0.0])]
    d = diagnose(frames, CLASSES, "normal")
    assert d.top_class == "encephalocele"
    assert d.majority_class == "normal"


def test_unusable_out_of_scope_and_excluded_frames_are_left_out_and_counted():
    frames = [
        _rec(0, [0.9, 0.05, 0.05]),
        _rec(1, None, usable=False, unusable_reason="blank frame"),
        _rec(2, [0.1, 0.1, 0.8], out_of_scope=True),
        _rec(3, [0.0, 1.0, 0.0]),
    ]
    d = diagnose(frames, CLASSES, "normal", excluded={frames[3].key: "off-plane"})
    assert d.top_class == "normal"
    assert d.n_frames_used == 1
    assert d.n_frames_unusable == 2
    assert d.n_frames_excluded == 1


def test_no_usable_frame_gives_no_suggestion():
    assert diagnose([_rec(0, None, usable=False)], CLASSES, "normal") is None


def test_fold_agreement_and_spread():
    # fold 0 says encephalocele, fold 1 says normal at exam level
    frames = [
        _rec(0, [0.45, 0.5, 0.05], folds=[[0.2, 0.75, 0.05], [0.7, 0.25, 0.05]]),
        _rec(1, [0.45, 0.5, 0.05], folds=[[0.3, 0.65, 0.05], [0.6, 0.35, 0.05]]),
    ]
    d = diagnose(frames, CLASSES, "normal")
    assert d.top_class == "encephalocele"
    assert d.fold_agreement == pytest.approx(0.5)
    assert d.fold_spread == pytest.approx((0.4 + 0.4 + 0.0) / 3)


def _full_exam() -> Exam:
    exam = Exam(
        app_version="0.1.0",
        created_at="2026-11-27T10:00:00+01:00",
        details=ExamDetails(
            exam_id="E-1",
            patient_name="王芳",
            ga_weeks=22,
            ga_days=3,
            biometry_mm={"BPD": 54.2, "HC": 201.0},
            biometry_sd={"HC": -0.4},
        ),
        settings=AnalysisSettings(every=80, crop="manual", manual_box=Box(1, 2, 30, 40)),
        sources=[
            SourceFile(path="/x/a.avi", sha256="ab" * 32, kind="video", n_frames=66, fps=13.0),
            SourceFile(path="/x/bad.png", error="cannot read image 'bad.png': damaged"),
        ],
        frames=[
            _rec(
                0,
                [0.7, 0.2, 0.1],
                folds=[[0.7, 0.2, 0.1]],
                crop_box=Box(0, 0, 10, 10),
                crop_method="auto-fan",
                time_s=0.0,
                kind="video",
            ),
            _rec(1, None, usable=False, unusable_reason="blank frame"),
        ],
        bundle=BundleInfo(bundle_id="b1", sha256="cd" * 32, classes=CLASSES, class_names=["N", "E", "V"]),
        review=Review(notes="ok"),
    )
    rediagnose(exam)
    exam.review.decision = "override"
    exam.review.decided_class = "encephalocele"
    exam.record("Dr A", "override → encephalocele")
    return exam


def test_exam_file_round_trips_exactly(tmp_path):
    exam = _full_exam()
    path = tmp_path / "exam.json"
    save_exam(exam, path)
    again = load_exam(path)
    assert again == exam
    assert exam_to_dict(again) == json.loads(path.read_text(encoding="utf-8"))
    assert "王芳" in path.read_text(encoding="utf-8")


def test_exam_file_refuses_newer_schema_and_foreign_json(tmp_path):
    path = tmp_path / "exam.json"
    data = exam_to_dict(_full_exam())
    data["schema_version"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(ExamFileError, match="newer"):
        load_exam(path)
    path.write_text('{"hello": 1}')
    with pytest.raises(ExamFileError, match="not a FetalCNS exam"):
        load_exam(path)
    path.write_text('{"schema": "fetalcns-exam", "schema_version": 1, "frames": ')
    with pytest.raises(ExamFileError, match="cannot read"):
        load_exam(path)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "exam.json"
    atomic_write_bytes(path, b"old")

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["exam.json"]  # no temp file left behind


def test_frame_key_is_stable_and_unique_per_source_and_index():
    a = FrameRecord(source_path="/a", source_sha256="1" * 64, index=80)
    b = FrameRecord(source_path="/a", source_sha256="1" * 64, index=160)
    assert a.key != b.key
    assert a.key == FrameRecord(source_path="/moved/a", source_sha256="1" * 64, index=80).key
