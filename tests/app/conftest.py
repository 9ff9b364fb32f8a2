"""Fixtures of the desktop app tests: offscreen Qt, an isolated home folder, a random-weight bundle,
synthetic ultrasound-like images and a short video, and a main window with the model loaded."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported by anything below

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.synthetic import fan_image, write_fan_images  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "sample-exam"


@pytest.fixture(autouse=True)
def app_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings, exams and logs of the app go to a fresh folder for each test."""
    home = tmp_path / "home"
    monkeypatch.setenv("FETALCNS_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def app_bundle(tmp_path_factory: pytest.TempPathFactory):
    """An untrained two-fold bundle (random weights): the app must flag it as meaningless."""
    from fetalcns_core.bundle import make_random_bundle

    return make_random_bundle(
        tmp_path_factory.mktemp("app-bundle") / "untrained",
        classes=("normal", "encephalocele", "ventriculomegaly"),
        n_folds=2,
        seed=1,
    )


@pytest.fixture()
def prefs(app_home: Path, app_bundle):
    from app.prefs import Prefs

    p = Prefs()
    p.bundle_dir = str(app_bundle.path)
    p.device = "cpu"
    p.intended_use_seen = True
    p.reviewer = "Dr Test"
    return p


@pytest.fixture()
def window(qtbot, prefs):
    """The main window with the test bundle loaded."""
    from app.main_window import MainWindow

    win = MainWindow(prefs)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    qtbot.waitUntil(lambda: win.engine.ensemble is not None, timeout=60000)
    yield win
    win.engine.cancel_analysis()
    win.engine.runner.wait(30000)


@pytest.fixture()
def image_folder(tmp_path: Path) -> Path:
    return write_fan_images(tmp_path / "exam", 3)


def write_dicom_cine(path: Path, n_frames: int, frame_time_ms: float = 100.0) -> Path:
    """A multi-frame greyscale ultrasound DICOM of fan images."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = UltrasoundMultiFrameImageStorage
    ds.Modality = "US"
    ds.set_pixel_data(np.stack([fan_image(i)[..., 0] for i in range(n_frames)]), "MONOCHROME2", 8)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.FrameTime = frame_time_ms
    ds.save_as(path, enforce_file_format=True)
    return path


def analyse_and_wait(qtbot, win, paths: list, timeout: int = 120000) -> None:
    with qtbot.waitSignal(win.engine.analysis_done, timeout=timeout):
        win.open_paths([str(p) for p in paths])
