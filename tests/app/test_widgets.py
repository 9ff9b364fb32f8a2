"""The panels on their own: strip rows, score bars, viewer zoom/pan/views, the AI vs clinician panels,
the details form, settings and the intended-use notice."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QDialogButtonBox, QLabel

from app.about import SHORT_NOTICE, AboutDialog
from app.details_form import DetailsForm
from app.exam_panel import ExamPanel
from app.review_panel import ReviewPanel
from app.scores import ScoresPanel, class_scores
from app.settings_dialog import SettingsChoice, SettingsDialog
from app.strip import FrameStrip, entry_for
from app.viewer import FrameViewer
from fetalcns_core import INTENDED_USE
from fetalcns_core.exam import (
    AuditEntry,
    Box,
    BundleInfo,
    Exam,
    ExamDetails,
    FrameRecord,
    SourceFile,
    rediagnose,
)

CLASSES = ["normal", "encephalocele", "ventriculomegaly"]
BUNDLE = BundleInfo(bundle_id="t", classes=CLASSES, class_names=["Normal", "Encephalocele", "VM"])


def scored(name: str, probs: list[float]) -> FrameRecord:
    return FrameRecord(name, name * 8, probs=probs, fold_probs=[probs, probs])


def test_strip_rows_show_top_class_score_colour_and_reasons(qtbot):
    strip = FrameStrip()
    qtbot.addWidget(strip)
    ok = scored("a.png", [0.1, 0.8, 0.1])
    bad = FrameRecord("b.png", "b" * 8, usable=False, unusable_reason="blank frame")
    thumb = np.full((50, 80, 3), 128, np.uint8)
    strip.set_entry(entry_for(ok, BUNDLE, thumb, None))
    strip.set_entry(entry_for(bad, BUNDLE, None, None))
    strip.add_failed_source(SourceFile("/x/c.png", error="not an image: the file is damaged"))
    e = strip.entry(ok.key)
    assert (e.line1, e.status, e.thumb is not None) == ("Encephalocele 80%", "ok", True)
    assert e.abnormal == pytest.approx(0.9)
    assert strip.entry(bad.key).status == "unusable" and strip.entry(bad.key).line2 == "blank frame"
    assert "damaged" in strip.entry("failed:/x/c.png").line2
    strip.set_entry(entry_for(ok, BUNDLE, None, "poor plane"))  # update keeps the thumbnail
    assert strip.entry(ok.key).status == "excluded" and strip.entry(ok.key).thumb is not None
    seen = []
    strip.current_changed.connect(seen.append)
    strip.step(1)
    strip.step(1)
    strip.step(-1)
    strip.step(5)
    assert seen == [ok.key, bad.key, ok.key, "failed:/x/c.png"]
    strip.setFocus()
    qtbot.keyClick(strip, Qt.Key.Key_Up)
    assert strip.current_key() == bad.key


def test_score_bars_are_fold_means_with_fold_ranges(qtbot):
    rows = class_scores(["A", "B"], [0.3, 0.7], [[0.2, 0.8], [0.4, 0.6]])
    assert [(r.name, r.mean, r.low, r.high, r.top) for r in rows] == [
        ("A", 0.3, 0.2, 0.4, False),
        ("B", 0.7, 0.6, 0.8, True),
    ]
    panel = ScoresPanel()
    qtbot.addWidget(panel)
    panel.set_scores(["A", "B"], [0.3, 0.7], [[0.2, 0.8], [0.4, 0.6]])
    panel.resize(360, panel.sizeHint().height())
    image = panel.grab().toImage()
    assert panel.n_folds == 2 and image.width() == 360  # painted without error
    panel.set_scores(["A", "B"], None, None, "blank frame")
    assert panel.scores == [] and panel.message == "blank frame"


def test_viewer_zooms_pans_switches_views_and_asks_for_overlays(qtbot):
    viewer = FrameViewer()
    qtbot.addWidget(viewer)
    viewer.resize(800, 600)
    viewer.show()
    viewer.set_classes(["Normal", "Encephalocele"])
    wanted, originals = [], []
    viewer.overlay_wanted.connect(lambda *a: wanted.append(a))
    viewer.original_wanted.connect(originals.append)
    crop = np.zeros((100, 120, 3), np.uint8)
    viewer.set_frame("k1", crop, Box(10, 20, 130, 120), top=1, has_cams=True)
    assert wanted[-1] == ("k1", 1, 0.35)  # default: the frame's top class
    viewer.set_overlay("k1", 1, 0.35, np.full((100, 120, 3), 200, np.uint8))
    assert viewer.overlay_shown()
    viewer.overlay_check.setChecked(False)
    assert not viewer.overlay_shown()
    viewer.overlay_check.setChecked(True)
    viewer.cam_class.setCurrentIndex(viewer.cam_class.findData(0))
    assert wanted[-1][:2] == ("k1", 0) and not viewer.overlay_shown()  # stale class hidden
    viewer.set_overlay("other", 0, 0.35, crop)  # a late result for another frame is ignored
    assert not viewer.overlay_shown()
    viewer.opacity.setValue(70)  # the slider asks for a new blend once it settles
    qtbot.waitUntil(lambda: wanted[-1] == ("k1", 0, 0.7), timeout=2000)
    viewer.toggle_mode()
    assert viewer.mode == "original" and originals == ["k1"]
    viewer.set_original("k1", np.zeros((300, 400, 3), np.uint8))
    assert viewer.view.base.pixmap().width() == 400
    assert viewer.view.box.isVisible() and viewer.view.box.rect().width() == 120
    assert viewer.view.overlay.pos().x() == 10  # the overlay sits on the crop box in the original
    before = viewer.view.zoom
    viewer.view.zoom_by(1.25)
    assert viewer.view.zoom == pytest.approx(before * 1.25) and not viewer.view.fitted
    viewer.view.zoom_by(2.0)
    qtbot.wait(20)
    h = viewer.view.horizontalScrollBar()
    start = h.value()
    vp = viewer.view.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=QPoint(400, 300))
    qtbot.mouseMove(vp, QPoint(300, 300))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=QPoint(300, 300))
    assert h.maximum() > 0 and h.value() != start  # dragging pans
    viewer.view.fit()
    assert viewer.view.fitted


def _exam() -> Exam:
    exam = Exam(frames=[scored("a.png", [0.1, 0.8, 0.1]), scored("b.png", [0.2, 0.5, 0.3])], bundle=BUNDLE)
    rediagnose(exam)
    return exam


def test_the_ai_suggestion_and_the_clinician_decision_are_apart_and_labelled(qtbot):
    exam = _exam()
    ai, review = ExamPanel(), ReviewPanel()
    for w in (ai, review):
        qtbot.addWidget(w)
    ai.show_exam(exam)
    assert ai.title() == "AI suggestion — not a diagnosis" and review.title() == "Clinician decision"
    assert ai.objectName() != review.objectName()
    assert ai.top.text() == "Encephalocele" and "65%" in ai.prob.text()
    assert ai.abnormal.value() == 85 and "2 of 2" in ai.agreement.text() and "2 of 2" in ai.support.text()
    review.show_review(exam, exam.frames[0].key)
    assert review.decision.text() == "No decision yet" and not review.sign_button.isEnabled()
    exam.review.decision, exam.review.decided_class = "override", "normal"
    exam.review.audit.append(AuditEntry("2026-01-02T10:00:00+00:00", "Dr A", "overrode"))
    review.show_review(exam, exam.frames[0].key)
    assert "Normal" in review.decision.text() and "overrides the AI" in review.decision.text()
    assert review.sign_button.isEnabled() and review.history.count() == 1
    exam.review.signed_by, exam.review.signed_at = "Dr A", "2026-01-02T10:05:00+00:00"
    review.show_review(exam, exam.frames[0].key)
    assert "Signed off by Dr A" in review.status.text() and "locked" in review.status.text()
    assert not review.agree_button.isEnabled() and not review.exclude_button.isEnabled()
    assert review.notes.isReadOnly() and not review.reopen_button.isHidden()


def test_details_form_round_trips_table_ii_biometry(qtbot):
    form = DetailsForm()
    qtbot.addWidget(form)
    details = ExamDetails(exam_id="2022021807", ga_weeks=13, ga_days=5, biometry_mm={"BPD": 21.5},
                          biometry_sd={"BPD": -1.4, "TCD": 0.0}, notes="n")  # fmt: skip
    form.set_details(details)
    assert form.details() == details
    got = []
    form.edited.connect(got.append)
    form.sd["HC"].setValue(-3.5)
    form.flush()
    assert got and got[-1].biometry_sd == {"BPD": -1.4, "TCD": 0.0, "HC": -3.5}
    form.set_locked(True)
    assert form.ga_weeks.isReadOnly() and form.exam_id.isReadOnly()


def test_settings_show_the_bundle_classes_id_model_card_and_untrained_warning(qtbot, app_bundle):
    dialog = SettingsDialog(SettingsChoice(bundle_dir=str(app_bundle.path), every=40), "cpu")
    qtbot.addWidget(dialog)
    assert "In use now: <b>cpu</b>" in dialog.findChild(QLabel, "deviceInUse").text()
    info = dialog.info.text()
    assert app_bundle.bundle_id in info and "Encephalocele" in info and "UNTRAINED TEST MODEL" in info
    assert "Model card" in dialog.card.toPlainText()
    dialog.fps_radio.setChecked(True)
    dialog.fps.setValue(2.0)
    dialog.device.setCurrentIndex(dialog.device.findData("cuda"))
    assert dialog.choice() == SettingsChoice("cuda", str(app_bundle.path), 40, 2.0)
    dialog.path.setText("/nowhere")
    dialog._show_bundle()
    assert "manifest.json" in dialog.info.text()


def test_first_start_notice_states_the_intended_use_and_needs_acknowledging(qtbot):
    dialog = AboutDialog(first_start=True)
    qtbot.addWidget(dialog)
    assert INTENDED_USE in dialog.findChild(QLabel, "aboutText").text()
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled()
    dialog.understood.setChecked(True)
    assert ok.isEnabled()
    assert "not a diagnosis" in SHORT_NOTICE
