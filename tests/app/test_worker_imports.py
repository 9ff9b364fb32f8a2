"""Workers never import a module: PySide6's import hook is not safe to run in a worker thread while the
GUI thread runs Python (it crashed the app), so everything the core needs is imported up front."""

from __future__ import annotations

import sys
import threading

from tests.app.conftest import SAMPLE, analyse_and_wait, write_dicom_cine
from tests.synthetic import write_video

_RECORDING: list[list[str]] = []


def _audit(event: str, args: tuple) -> None:
    if event == "import" and _RECORDING and threading.current_thread() is not threading.main_thread():
        _RECORDING[-1].append(str(args[0]))


sys.addaudithook(_audit)  # cannot be removed; it records nothing outside this test


def test_analysis_overlays_originals_report_and_reopen_import_nothing_in_workers(qtbot, window, tmp_path):
    imported: list[str] = []
    _RECORDING.append(imported)
    try:
        window.prefs.every = 3
        inputs = [SAMPLE, write_video(tmp_path / "v.avi", 10), write_dicom_cine(tmp_path / "c.dcm", 4)]
        analyse_and_wait(qtbot, window, inputs)
        qtbot.waitUntil(window.viewer.overlay_shown, timeout=20000)
        window.viewer.toggle_mode()
        qtbot.waitUntil(lambda: window.viewer.view.box.isVisible(), timeout=20000)
        with qtbot.waitSignal(window.engine.report_done, timeout=120000):
            window.export_pdf(tmp_path / "report.pdf")
        window.open_paths([window.session.path])
        qtbot.waitUntil(lambda: len(window.results) == len(window.session.exam.frames), timeout=60000)
    finally:
        _RECORDING.remove(imported)
    assert imported == []
