"""The app's log file: in the user's log folder, and no patient text or file path reaches it."""

from __future__ import annotations

import logging

from app import paths
from app.logsetup import SCRUB, PatientTextScrubber, install_excepthook, remove_logging, setup_logging


def test_paths_and_patient_text_are_scrubbed():
    f = PatientTextScrubber()
    f.set_secrets(["Jane Doe", "P-00123", "ab"])  # too short to blank: "ab"
    text = f.scrub("cannot read video '/home/u/Jane Doe/P-00123.avi': codec; C:\\exams\\x.dcm failed; ab ok")
    assert "Jane" not in text and "P-00123" not in text and "exams" not in text
    assert "<path>" in text and "codec" in text and "ab ok" in text
    assert f.scrub("cannot read 'scan 3.png' (damaged)") == "cannot read '<path>' (damaged)"


def test_log_file_lives_in_the_log_folder_and_is_scrubbed(app_home, caplog):
    log_file = setup_logging()
    try:
        assert log_file.parent == paths.log_dir() and log_file.is_relative_to(app_home)
        SCRUB.set_secrets(["Smith"])
        logging.getLogger("fetalcns_core.sources").warning("cannot read '%s'", "/data/Smith/a.png")
        try:
            raise ValueError("bad file /data/Smith/b.png")
        except ValueError:
            logging.getLogger("app").exception("failed for Smith")
        for h in logging.getLogger().handlers:
            h.flush()
        text = log_file.read_text()
        assert "cannot read" in text and "ValueError" in text
        assert "Smith" not in text and "/data" not in text
        assert "/data/Smith/a.png" in caplog.text  # other handlers see the record unchanged
    finally:
        SCRUB.set_secrets([])
        remove_logging()


def test_an_uncaught_error_is_logged_and_shown_not_fatal(monkeypatch):
    import sys

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    shown = []
    install_excepthook(shown.append)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    assert shown and "boom" in shown[0] and "log" in shown[0]
