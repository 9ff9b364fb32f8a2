"""End-to-end time of one exam: decode, crop, ensemble with all-class CAMs, exam diagnosis.

Run by hand:  python benchmarks/bench_pipeline.py [VIDEO] [--bundle DIR] [--every N]
Default input: ../shared/data/video/fetal-echo-cine.avi (66 frames, 13 fps, 1112x614). Default bundle:
the bundled model, or a 5-fold random ResNet34 built in a temp dir when none is bundled (speed only).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from fetalcns_core.bundle import default_bundle_dir, load_bundle, make_random_bundle
from fetalcns_core.ensemble import Ensemble
from fetalcns_core.exam import AnalysisSettings
from fetalcns_core.pipeline import analyse

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "video", nargs="?", type=Path, default=ROOT.parent / "shared/data/video/fetal-echo-cine.avi"
    )
    p.add_argument("--bundle", type=Path)
    p.add_argument("--every", type=int, nargs="+", default=[80, 1])
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = args.bundle or default_bundle_dir()
        if bundle_dir is None:
            bundle = make_random_bundle(Path(tmp) / "b", n_folds=5)
            print("bundle: 5-fold random ResNet34 (speed only)")
        else:
            bundle = load_bundle(bundle_dir)
            print(f"bundle: {bundle.bundle_id} ({len(bundle.folds)} folds, {bundle.architecture})")
        t0 = time.perf_counter()
        ens = Ensemble(bundle, device="auto")
        print(
            f"load: {time.perf_counter() - t0:.2f} s on {ens.device}, torch threads {torch.get_num_threads()}"
        )
        for every in args.every:
            frames = []
            t0 = time.perf_counter()
            exam = analyse([args.video], ens, AnalysisSettings(every=every), on_frame=frames.append)
            dt = time.perf_counter() - t0
            print(
                f"{args.video.name} every {every}: {len(exam.frames)} frames in {dt:.2f} s "
                f"({len(exam.frames) / dt:.1f} frames/s end to end, CAMs for all classes)"
            )


if __name__ == "__main__":
    main()
