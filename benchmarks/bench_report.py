"""Time to build the PDF report of a long exam (default: 300 frames, 6 key frames).

    OMP_NUM_THREADS=1 python benchmarks/bench_report.py [--frames 300] [--repeat 3]

The exam is synthetic (tests/core/test_report.py's `make_exam`); key-frame images are 480x640 RGB
arrays, about the size of a cropped scanner frame.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fetalcns_core.exam import FrameRecord  # noqa: E402
from fetalcns_core.report import ReportOptions, build_report  # noqa: E402
from tests.core.test_report import make_exam  # noqa: E402


def frame_images(rec: FrameRecord) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(rec.index)
    crop = rng.integers(0, 255, size=(480, 640, 3), dtype=np.uint8)
    overlay = crop // 2 + np.array([120, 40, 0], dtype=np.uint8)
    return crop, overlay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--key-frames", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    exam = make_exam(args.frames, signed=True)
    options = ReportOptions(institution="Benchmark Hospital", max_key_frames=args.key_frames)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.pdf"
        for _ in range(args.repeat):
            start = time.perf_counter()
            build_report(exam, out, frame_images, options)
            times.append(time.perf_counter() - start)
        size = out.stat().st_size
    print(
        f"report of {args.frames} frames, {args.key_frames} key frames: "
        f"first {times[0]:.2f} s (includes font loading), median {statistics.median(times):.2f} s, "
        f"best {min(times):.2f} s over {args.repeat} runs; PDF {size / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
