"""Screenshots of the desktop app at 1600×1000, for the docs and for looking at the app as a user would.

Run under a virtual X server (or with QT_QPA_PLATFORM=offscreen):

    Xvfb :99 -screen 0 1600x1000x24 &
    DISPLAY=:99 python packaging/screenshots.py          # PNGs in packaging/build/screenshots (not committed)

Writes (a) sample-exam-cam.png: the sample exam with a Grad-CAM overlay, (b) video-exam.png: a video
exam, (c) review-signed.png: the review after sign-off. Settings and exam files go to a temporary
FETALCNS_HOME, never to the user's own. Without a trained bundle (models/ empty) a random-weight test
bundle is made, and the screenshots show the app's UNTRAINED TEST MODEL banner.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_VIDEO = ROOT.parent / "shared" / "data" / "video" / "fetal-echo-cine.avi"


def wait_for(app, condition: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.01)


def settle(app, seconds: float = 0.4) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def synthetic_video(path: Path, n_frames: int = 160) -> Path:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    h, w = 480, 640
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (w, h))
    for i in range(n_frames):
        img = np.zeros((h, w, 3), np.uint8)
        mask = np.zeros((h, w), np.uint8)
        cv2.ellipse(mask, (w // 2, 30), (h - 60, h - 60), 90, -38, 38, 255, -1)
        tex = cv2.GaussianBlur(rng.integers(30, 200, (h, w), dtype=np.uint8), (7, 7), 0)
        cv2.ellipse(tex, (w // 2, h // 2 + 10 * np.sin(i / 10)), (110, 80), 0, 0, 360, 230, 3)
        img[mask > 0] = tex[mask > 0][:, None]
        cv2.putText(img, f"SYNTHETIC  {i:03d}", (10, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        writer.write(img)
    writer.release()
    return path


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "packaging" / "build" / "screenshots")
    parser.add_argument("--bundle", type=Path, help="model bundle folder (default: the bundled model)")
    parser.add_argument("--video", type=Path, help="video for (b); default: the shared cine loop, if present")
    parser.add_argument("--every", type=int, default=8, help="video sampling step for (b)")
    parser.add_argument("--size", default="1600x1000")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fetalcns-shots-"))
    os.environ["FETALCNS_HOME"] = str(work / "home")
    from app.main import create_app
    from app.main_window import MainWindow
    from app.paths import sample_exam_dir
    from app.prefs import Prefs
    from fetalcns_core.bundle import default_bundle_dir, make_random_bundle

    bundle = args.bundle or default_bundle_dir()
    if bundle is None:
        bundle = make_random_bundle(work / "untrained-bundle").path
    app = create_app([sys.argv[0]])
    prefs = Prefs()
    prefs.bundle_dir, prefs.device, prefs.intended_use_seen = str(bundle), "auto", True
    prefs.reviewer = "Dr A. Example"
    width, height = (int(v) for v in args.size.split("x"))
    win = MainWindow(prefs)
    win.resize(width, height)
    win.move(0, 0)
    win.show()
    wait_for(app, lambda: win.engine.ensemble is not None, 300, "the model")
    args.out.mkdir(parents=True, exist_ok=True)
    shots = []

    def shot(name: str) -> None:
        settle(app)
        path = args.out / name
        win.grab().save(str(path))
        shots.append(path)

    def analyse(paths: list[Path]) -> None:
        done = []
        win.engine.analysis_done.connect(done.append)
        win.open_paths(paths)
        wait_for(app, lambda: bool(done), 600, "the analysis")
        win.engine.analysis_done.disconnect(done.append)

    # (a) the sample exam, a frame with its Grad-CAM overlay
    analyse([sample_exam_dir()])
    exam = win.session.exam
    win.strip.select_key(exam.frames[min(1, len(exam.frames) - 1)].key)
    wait_for(app, win.viewer.overlay_shown, 60, "the overlay")
    win.details.exam_id.setText("SAMPLE-01")
    win.details.ga_weeks.setValue(22)
    win.details.ga_days.setValue(3)
    win.details.sd["BPD"].setValue(-1.3)
    win.details.flush()
    shot("sample-exam-cam.png")
    sample_exam_file = win.session.path

    # (b) a video exam
    video = args.video or (SHARED_VIDEO if SHARED_VIDEO.exists() else synthetic_video(work / "loop.avi"))
    prefs.every = args.every
    analyse([video])
    keys = [k for k in win.strip.frame_keys() if not k.startswith("failed:")]
    if keys:
        win.strip.select_key(keys[len(keys) // 2])
        wait_for(app, lambda: win.viewer.overlay_shown() or not win.viewer._has_cams, 60, "the overlay")
    shot("video-exam.png")

    # (c) the sample exam reopened, reviewed and signed off
    win.open_paths([sample_exam_file])
    win.strip.select_key(win.session.exam.frames[-1].key)
    win.toggle_exclude()
    win.strip.select_key(win.session.exam.frames[0].key)
    rp = win.review_panel
    classes = win.session.exam.bundle.classes
    other = next(c for c in classes if c != win.session.exam.diagnosis.top_class)
    rp.override_class.setCurrentIndex(rp.override_class.findData(other))
    rp.override_button.click()
    rp.notes.setPlainText("Cerebellum and cisterna magna seen; decision differs from the AI suggestion.")
    rp.flush_notes()
    win.sign_off()
    frames = win.session.exam.frames
    reread = lambda: all(f.key in win.results or f.key in win.frame_errors for f in frames)  # noqa: E731
    wait_for(app, reread, 120, "the frames to be re-read")
    wait_for(app, win.viewer.overlay_shown, 60, "the overlay")
    shot("review-signed.png")

    win.close()
    for path in shots:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
