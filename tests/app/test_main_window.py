"""The main window end to end (offscreen): analysis in the background, frames, scores, CAM, diagnosis,
review persisted through save and reopen, failed files, cancel, keyboard, drag and drop, PDF export."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QLabel

from app import paths
from app.exam_panel import class_label
from fetalcns_core.exam import load_exam
from tests.app.conftest import SAMPLE, analyse_and_wait, write_dicom_cine
from tests.synthetic import write_video


def test_sample_exam_analyses_in_the_background_and_shows_frames_scores_cam_and_diagnosis(qtbot, window):
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    started = time.perf_counter()
    with qtbot.waitSignal(window.engine.analysis_done, timeout=120000):
        window.actions_.open_sample.trigger()  # File > Open the sample exam
    finished = time.perf_counter()
    timer.stop()
    during = [t for t in ticks if started <= t <= finished]
    gaps = [b - a for a, b in zip(during, during[1:], strict=False)]
    # the event loop kept turning while the worker analysed: ticks all along, no long freeze
    assert len(during) >= 0.3 * (finished - started) / 0.010, (len(during), finished - started)
    assert max(gaps, default=0.0) < 0.5, max(gaps)

    exam = window.session.exam
    n_images = len(list(SAMPLE.glob("*.jpg")))
    assert len(exam.frames) == n_images and exam.diagnosis is not None
    assert len(window.strip.frame_keys()) == n_images
    assert window.current_key == exam.frames[0].key
    assert window.scores.scores and window.scores.n_folds == 2
    assert window.exam_panel.top.text() == class_label(exam, exam.diagnosis.top_class)
    assert window.untrained.isVisible() and "UNTRAINED TEST MODEL" in window.untrained.label.text()
    assert "not a diagnosis" in window.notice.text()
    hint = window.minimumSizeHint()  # everything fits the 1600×1000 screens it is shown on
    assert hint.width() <= 1600 and hint.height() <= 1000, hint
    qtbot.waitUntil(window.viewer.overlay_shown, timeout=20000)
    # the CAM of another class on request
    window.viewer.cam_class.setCurrentIndex(window.viewer.cam_class.findData(2))
    viewer = window.viewer
    qtbot.waitUntil(lambda: viewer.overlay_shown() and viewer._overlay_for[1] == 2, timeout=20000)
    # the exam file was written to the user's exam folder and is in the recent list
    assert window.session.path.parent == paths.exams_dir()
    assert load_exam(window.session.path).diagnosis.top_class == exam.diagnosis.top_class
    assert str(window.session.path.resolve()) in window.prefs.recent
    assert not window.actions_.recent.isEmpty()


def test_override_and_sign_off_persist_through_save_and_reopen(qtbot, window, image_folder, prefs):
    analyse_and_wait(qtbot, window, [image_folder])
    exam = window.session.exam
    first, second = exam.frames[0].key, exam.frames[1].key
    window.strip.select_key(second)
    window.viewer.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_X)  # exclude the current frame
    assert second in exam.review.excluded and exam.diagnosis.n_frames_excluded == 1
    rp = window.review_panel
    rp.override_class.setCurrentIndex(rp.override_class.findData("ventriculomegaly"))
    rp.override_button.click()
    rp.notes.setPlainText("posterior fossa looks normal")
    rp.flush_notes()
    window.details.ga_weeks.setValue(22)
    window.details.sd["BPD"].setValue(-1.3)
    window.details.flush()
    rp.sign_button.click()
    assert window.session.locked and "Signed off by Dr Test" in rp.status.text()
    rp.agree_button.click()  # disabled after sign-off: nothing changes
    assert exam.review.decided_class == "ventriculomegaly"
    saved_path = window.session.path
    window.close()

    from app.main_window import MainWindow

    again = MainWindow(prefs)
    qtbot.addWidget(again)
    qtbot.waitUntil(lambda: again.engine.ensemble is not None, timeout=60000)
    again.open_paths([saved_path])
    review = again.session.exam.review
    assert review.decided_class == "ventriculomegaly" and review.signed_by == "Dr Test"
    assert review.notes == "posterior fossa looks normal" and set(review.excluded) == {second}
    assert again.details.details().ga_weeks == 22 and again.details.details().biometry_sd == {"BPD": -1.3}
    assert again.review_panel.notes.toPlainText() == "posterior fossa looks normal"
    assert "Ventriculomegaly" in again.review_panel.decision.text()
    assert "locked" in again.review_panel.status.text() and again.details.ga_weeks.isReadOnly()
    assert again.strip.entry(second).status == "excluded"
    whats = [e.what for e in review.audit]
    assert any("excluded frame" in w for w in whats) and any("overrode" in w for w in whats)
    assert any("edited exam details" in w for w in whats) and whats[-1].startswith("signed off")
    # the frames are re-read from their files: thumbnails and CAMs come back
    qtbot.waitUntil(lambda: first in again.results and second in again.results, timeout=30000)
    assert again.strip.entry(first).thumb is not None
    qtbot.waitUntil(again.viewer.overlay_shown, timeout=20000)
    # reopening is explicit and recorded
    again.reopen_review("wrong class")
    assert not again.session.locked and again.review_panel.agree_button.isEnabled()
    assert "reopened" in load_exam(saved_path).review.audit[-1].what
    again.close()


def test_a_corrupt_file_gives_a_failed_entry_and_a_message_not_a_crash(qtbot, window, image_folder):
    (image_folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really an image")
    cv2.imwrite(str(image_folder / "zblank.png"), np.zeros((200, 260, 3), np.uint8))
    analyse_and_wait(qtbot, window, [image_folder])
    blank = next(r for r in window.session.exam.frames if r.source_path.endswith("zblank.png"))
    entry = window.strip.entry(blank.key)
    assert entry.status == "unusable" and entry.line2 == blank.unusable_reason and blank.unusable_reason
    window.strip.select_key(blank.key)
    assert "Unusable frame" in window.viewer.message.text() and not window.scores.scores
    failed = [k for k in window.strip.frame_keys() if k.startswith("failed:")]
    assert len(failed) == 1 and failed[0].endswith("broken.png")
    assert any("broken.png" in m for m in window.messages.messages) and window.messages.isVisible()
    assert len(window.session.exam.frames) == 4 and window.session.exam.diagnosis.n_frames_used == 3
    window.strip.select_key(failed[0])
    assert "could not be read" in window.viewer.message.text()
    assert not window.review_panel.exclude_button.isEnabled()
    assert [s.failed for s in load_exam(window.session.path).sources].count(True) == 1


def test_cancel_stops_a_long_video_mid_way(qtbot, window, tmp_path):
    video = write_video(tmp_path / "loop.avi", 120)
    window.prefs.every = 1
    frames = []
    window.engine.analysis_frame.connect(frames.append)
    with qtbot.waitSignal(window.engine.analysis_done, timeout=120000):
        window.open_paths([video])
        qtbot.waitUntil(lambda: len(frames) >= 1, timeout=60000)
        qtbot.keyClick(window, Qt.Key.Key_Escape)
    exam = window.session.exam
    assert exam.incomplete and "cancelled" in exam.incomplete
    assert 1 <= len(exam.frames) < 120
    assert "Incomplete" in window.exam_panel.warning.text()
    assert window.strip.entry(exam.frames[0].key).title.startswith("loop.avi · ")
    assert not window.progress.isVisible() and not window.actions_.cancel.isEnabled()
    assert load_exam(window.session.path).incomplete == exam.incomplete


def test_keyboard_moves_frames_toggles_overlay_and_view(qtbot, window, image_folder):
    analyse_and_wait(qtbot, window, [image_folder])
    keys = window.strip.frame_keys()
    window.viewer.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_J)
    assert window.current_key == keys[1]
    qtbot.keyClick(window.viewer.view, Qt.Key.Key_Down)
    assert window.current_key == keys[2]
    qtbot.keyClick(window, Qt.Key.Key_K)
    assert window.current_key == keys[1]
    assert window.viewer.overlay_check.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_O)
    assert not window.viewer.overlay_check.isChecked() and not window.viewer.overlay_shown()
    qtbot.keyClick(window, Qt.Key.Key_C)
    assert window.viewer.mode == "original"
    qtbot.waitUntil(lambda: window.viewer.view.box.isVisible(), timeout=20000)  # original read in a worker
    qtbot.keyClick(window, Qt.Key.Key_A)
    assert window.session.exam.review.decision == "agree"
    window.review_panel.notes.setFocus()
    qtbot.keyClick(window.review_panel.notes, Qt.Key.Key_J)  # typing in a text field is not a shortcut
    assert window.current_key == keys[1] and window.review_panel.notes.toPlainText() == "j"


def test_dropping_files_opens_them_as_one_exam(qtbot, window, image_folder):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in sorted(image_folder.glob("*.png"))[:2]])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)  # fmt: skip
    with qtbot.waitSignal(window.engine.analysis_done, timeout=60000):
        window.dropEvent(event)
    assert len(window.session.exam.frames) == 2


def test_pdf_report_is_exported_in_the_background(qtbot, window, image_folder, tmp_path):
    analyse_and_wait(qtbot, window, [image_folder])
    out = tmp_path / "report.pdf"
    with qtbot.waitSignal(window.engine.report_done, timeout=120000) as done:
        window.export_pdf(out)
    assert Path(done.args[0]) == out and out.read_bytes().startswith(b"%PDF")


def test_without_a_model_the_app_says_so_and_analyses_once_one_is_chosen(
    qtbot, prefs, monkeypatch, app_bundle
):
    import app.window_ops as ops
    from app.main_window import MainWindow

    monkeypatch.setattr(ops, "default_bundle_dir", lambda: None)
    prefs.bundle_dir = ""
    win = MainWindow(prefs)
    qtbot.addWidget(win)
    win.show()
    assert win.no_model.isVisible() and "No model bundle" in win.no_model.label.text()
    assert win.no_model.button.isVisible()
    win.open_paths([SAMPLE])
    assert any("No model is loaded" in m for m in win.messages.messages)
    assert not win.session.has_frames and win.exam_panel.abnormal.format() == "no score"
    # choosing a bundle loads it, and the exam the user asked for is analysed then
    monkeypatch.setattr(ops, "default_bundle_dir", lambda: app_bundle.path)
    with qtbot.waitSignal(win.engine.analysis_done, timeout=120000):
        win.load_model()
    assert len(win.session.exam.frames) == len(list(SAMPLE.glob("*.jpg"))) and not win.no_model.isVisible()
    win.engine.runner.wait(30000)


def test_a_damaged_exam_file_is_a_message(qtbot, window, tmp_path):
    bad = tmp_path / "x.fetalcns.json"
    bad.write_text("{ not json")
    window.open_paths([bad])
    assert any("Cannot open the exam file" in m for m in window.messages.messages)


@pytest.mark.parametrize("flag", [False, True])
def test_fetalcns_command_opens_the_window_on_paths(qtbot, prefs, monkeypatch, flag, image_folder):
    from PySide6.QtWidgets import QApplication

    import app.main as entry
    from app.about import AboutDialog
    from app.logsetup import remove_logging
    from app.main_window import MainWindow

    prefs.intended_use_seen = False
    prefs.sync()
    shown = []
    monkeypatch.setattr(AboutDialog, "exec", lambda self: shown.append(not self.understood.isHidden()) or 1)
    windows = []

    def fake_exec(*_args):
        win = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
        windows.append(win)
        qtbot.waitUntil(lambda: win.session.has_frames, timeout=60000)
        win.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # main() installs its own: restored after
    argv = ["--open", str(image_folder)] if flag else [str(image_folder)]
    try:
        assert entry.main([*argv, "--device", "cpu"]) == 0
    finally:
        remove_logging()
    assert shown == [True]  # the intended-use notice on first start, to be acknowledged
    assert windows and len(windows[0].session.exam.frames) == 3
    assert "not a diagnosis" in windows[0].windowTitle()


def test_settings_change_the_video_sampling_and_reload_the_model(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QDialog

    from app.settings_dialog import SettingsDialog

    def accept_with_step_5(dialog):
        assert "cpu" in dialog.findChild(QLabel, "deviceInUse").text()
        dialog.every.setValue(5)
        dialog.device.setCurrentIndex(dialog.device.findData("auto"))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(SettingsDialog, "exec", accept_with_step_5)
    window.open_settings()
    assert (window.prefs.every, window.prefs.device) == (5, "auto")
    qtbot.waitUntil(lambda: window.engine.ensemble is not None, timeout=60000)  # reloaded for the device
    analyse_and_wait(qtbot, window, [write_video(tmp_path / "v.avi", 12)])
    assert [r.index for r in window.session.exam.frames] == [0, 5, 10]


def test_recent_exams_reopen_from_the_menu(qtbot, window, image_folder):
    analyse_and_wait(qtbot, window, [image_folder])
    path = window.session.path
    window.open_paths([image_folder])  # another exam
    qtbot.waitUntil(lambda: window.session.path != path and window.session.has_frames, timeout=60000)
    action = next(a for a in window.actions_.recent.actions() if a.toolTip() == str(path.resolve()))
    action.trigger()
    assert window.session.path == path.resolve() or window.session.path == path


def test_a_dicom_cine_opens_as_an_exam_with_frame_times(qtbot, window, tmp_path):
    path = write_dicom_cine(tmp_path / "cine.dcm", 6, frame_time_ms=100.0)  # 10 frames per second
    window.prefs.every = 2
    analyse_and_wait(qtbot, window, [path])
    frames = window.session.exam.frames
    assert [(f.kind, f.index) for f in frames] == [("dicom", 0), ("dicom", 2), ("dicom", 4)]
    assert window.strip.entry(frames[1].key).title == "cine.dcm · 0.2 s"
    assert window.session.exam.diagnosis is not None
