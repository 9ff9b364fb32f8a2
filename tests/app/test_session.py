"""The review through ExamSession: every change is audited and autosaved; sign-off locks; reopen unlocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import paths
from app.session import ExamSession, ReviewError, ReviewLockedError
from fetalcns_core.exam import BundleInfo, Exam, ExamDetails, FrameRecord, load_exam, rediagnose

CLASSES = ["normal", "encephalocele", "ventriculomegaly"]


def make_exam() -> Exam:
    frames = [
        FrameRecord("a.png", "a" * 64, probs=[0.2, 0.7, 0.1], fold_probs=[[0.2, 0.7, 0.1], [0.2, 0.7, 0.1]]),
        FrameRecord("b.png", "b" * 64, probs=[0.3, 0.6, 0.1], fold_probs=[[0.3, 0.6, 0.1], [0.3, 0.6, 0.1]]),
        FrameRecord("c.png", "c" * 64, probs=[0.5, 0.4, 0.1], fold_probs=[[0.6, 0.3, 0.1], [0.4, 0.5, 0.1]]),
        FrameRecord("d.png", "d" * 64, usable=False, unusable_reason="blank frame"),
    ]
    exam = Exam(frames=frames, bundle=BundleInfo(bundle_id="t", classes=CLASSES, normal_class="normal"))
    rediagnose(exam)
    return exam


@pytest.fixture()
def session(tmp_path: Path) -> ExamSession:
    return ExamSession(make_exam(), tmp_path / "exam.fetalcns.json")


def saved(session: ExamSession) -> Exam:
    return load_exam(session.path)


def test_agree_takes_the_ai_top_class_and_is_audited_and_saved(session):
    session.agree("Dr A")
    exam = saved(session)
    assert exam.review.decision == "agree"
    assert exam.review.decided_class == "encephalocele"
    assert exam.review.audit[-1].who == "Dr A"
    assert "agreed" in exam.review.audit[-1].what


def test_override_requires_a_class_of_the_model(session):
    with pytest.raises(ReviewError):
        session.override("Dr A", "anencephaly")
    session.override("Dr A", "ventriculomegaly")
    exam = saved(session)
    assert (exam.review.decision, exam.review.decided_class) == ("override", "ventriculomegaly")
    assert "encephalocele" in exam.review.audit[-1].what  # the suggestion it overrode is recorded


def test_excluding_frames_recomputes_the_suggestion_and_clears_a_stale_agreement(session):
    session.agree("Dr A")
    a, b = session.exam.frames[0].key, session.exam.frames[1].key
    session.exclude("Dr A", a, "poor plane")
    assert session.exam.review.decision == "agree"  # suggestion unchanged: agreement stands
    session.exclude("Dr A", b)
    assert session.exam.diagnosis.top_class == "normal"
    assert session.exam.review.decision is None  # the agreed suggestion changed: agreement cleared
    assert "changed from encephalocele to normal" in session.exam.review.audit[-1].what
    assert session.exam.review.audit[-2].what == f"excluded frame a.png ({a}): poor plane"
    session.restore("Dr A", b)
    exam = saved(session)
    assert set(exam.review.excluded) == {a}
    assert exam.diagnosis.n_frames_excluded == 1


def test_sign_off_needs_a_name_and_a_decision_then_locks_everything(session):
    with pytest.raises(ReviewError, match="agree"):
        session.sign_off("Dr A")
    session.override("Dr A", "normal")
    with pytest.raises(ReviewError, match="name"):
        session.sign_off("  ")
    session.sign_off("Dr A")
    assert session.locked
    for change in (
        lambda: session.agree("Dr B"),
        lambda: session.override("Dr B", "encephalocele"),
        lambda: session.exclude("Dr B", session.exam.frames[0].key),
        lambda: session.set_notes("Dr B", "late note"),
        lambda: session.set_details("Dr B", ExamDetails(ga_weeks=20)),
    ):
        with pytest.raises(ReviewLockedError, match="Dr A"):
            change()
    exam = saved(session)
    assert exam.review.signed_by == "Dr A" and exam.review.signed_at
    assert exam.review.notes == ""


def test_reopen_is_recorded_with_who_and_why(session):
    session.agree("Dr A")
    session.sign_off("Dr A")
    with pytest.raises(ReviewError):
        session.reopen("", "typo")
    session.reopen("Dr B", "wrong class")
    assert not session.locked
    session.override("Dr B", "normal")
    whats = [(e.who, e.what) for e in saved(session).review.audit]
    assert ("Dr B", "reopened the review signed by Dr A: wrong class") in whats
    assert all(e.when for e in saved(session).review.audit)


def test_details_and_notes_changes_name_the_fields(session):
    session.set_details("Dr A", ExamDetails(exam_id="E1", ga_weeks=20, ga_days=3, biometry_sd={"BPD": -1.4}))
    session.set_notes("Dr A", "cerebellum not seen")
    session.set_notes("Dr A", "cerebellum not seen")  # no change, no entry
    exam = saved(session)
    assert exam.details.biometry_sd == {"BPD": -1.4}
    assert exam.review.notes == "cerebellum not seen"
    whats = [e.what for e in exam.review.audit]
    assert whats == [
        "edited exam details: exam_id, ga_weeks, ga_days, biometry_sd",
        "edited the review notes",
    ]


def test_a_new_exam_is_saved_in_the_user_data_folder(app_home):
    session = ExamSession(make_exam())
    session.exam.details.exam_id = "ID 7/x"
    path = session.save()
    assert path.parent == paths.exams_dir() and path.parent.is_relative_to(app_home)
    assert path.name == "ID_7_x.fetalcns.json"
    first, second = ExamSession(make_exam()).save(), ExamSession(make_exam()).save()
    assert first.name.startswith("exam-") and first != second  # named by time, never overwriting
    assert json.loads(path.read_text())["schema"] == "fetalcns-exam"


def test_a_failed_save_is_reported_not_raised(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    session = ExamSession(make_exam(), blocker / "sub" / "exam.fetalcns.json")  # parent is a file
    messages = []
    session.on_save_failed = messages.append
    session.agree("Dr A")
    assert messages and "Save As" in messages[0]
    assert session.exam.review.decision == "agree"  # the change is kept in memory
