"""Inference throughput and memory of a 5-fold ResNet34 ensemble on the CPU. Run by hand; prints a table.

    python benchmarks/bench_inference.py [--threads 2] [--folds 5] [--classes 3]

Frames per second (fastest of a few interleaved calls) at batch 1 and 8 of (a) the ensemble alone,
(b) the ensemble with every class's CAM from the same pass, (c) the pytorch-grad-cam path (one forward
and backward pass per fold and class) for one class, and (c') for all classes, the output (b) gives;
the time to load the bundle; and the resident memory the loaded ensemble adds (VmRSS before and
after loading and one forward pass, measured in a fresh process). The
bundle has random weights (speed only).
Targets on 2 cores: (b) >= 0.9 x (a), (b) >= 5 x (c), <= 450 MiB added.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from fetalcns_core.bundle import load_bundle, load_fold_models, make_random_bundle
from fetalcns_core.ensemble import Ensemble
from fetalcns_core.explain import gradcam_reference
from fetalcns_core.preprocess import to_batch

MIB = 1024 * 1024


def frames(n: int, seed: int = 0) -> list[np.ndarray]:
    """Random grey 800 x 600 frames (their content does not change the speed)."""
    rng = np.random.default_rng(seed)
    return [np.repeat(rng.integers(0, 256, (600, 800, 1), dtype=np.uint8), 3, axis=2) for _ in range(n)]


def best_rates(
    runs: dict[tuple[str, int], Callable[[], object]], rounds: int
) -> dict[tuple[str, int], float]:
    """Frames per second of each (name, batch) run: one warm-up call each, then ``rounds`` rounds that
    take every run in turn (so that load from other processes spreads over all of them), fastest call."""
    for fn in runs.values():
        fn()
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for key, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - t0)
    return {key: key[1] / t for key, t in best.items()}


def vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure_memory(bundle_dir: str, threads: int) -> None:
    """In a fresh process: VmRSS before and after loading the ensemble and one forward pass."""
    torch.set_num_threads(threads)
    imgs = frames(1)
    before = vm_kib("VmRSS")
    t0 = time.perf_counter()
    ens = Ensemble(bundle_dir, device="cpu")
    load_s = time.perf_counter() - t0
    ens.predict(imgs, cams=True, batch_size=1)
    after = vm_kib("VmRSS")
    ens.predict(imgs * 8, cams=True, batch_size=8)
    after8 = vm_kib("VmRSS")
    print(
        *(f"{kib / 1024:.1f}" for kib in (after - before, after8 - before, vm_kib("VmHWM"))), f"{load_s:.3f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--classes", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3, help="timed calls of each run (the fastest counts)")
    p.add_argument("--measure-memory", metavar="BUNDLE", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure_memory:
        measure_memory(args.measure_memory, args.threads)
        return
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    classes = ["normal", "encephalocele", "ventriculomegaly", "holoprosencephaly", "other"][: args.classes]
    with tempfile.TemporaryDirectory() as tmp:
        bundle = make_random_bundle(Path(tmp) / "b", arch="resnet34", classes=classes, n_folds=args.folds)
        loads = []
        for _ in range(3):
            t0 = time.perf_counter()
            load_fold_models(load_bundle(bundle.path))
            loads.append(time.perf_counter() - t0)
        mem = subprocess.run(
            [sys.executable, __file__, "--measure-memory", str(bundle.path), "--threads", str(args.threads)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        ens = Ensemble(bundle, device="cpu")
        plain = load_fold_models(bundle)  # batch norms not fused, as pytorch-grad-cam users have them
        runs: dict[tuple[str, int], Callable[[], object]] = {}
        for bs in (1, 8):
            imgs = frames(bs, seed=bs)
            runs[("a", bs)] = lambda imgs=imgs, bs=bs: ens.predict(imgs, cams=False, batch_size=bs)
            runs[("b", bs)] = lambda imgs=imgs, bs=bs: ens.predict(imgs, cams=True, batch_size=bs)

            def gradcam_all_folds(imgs: list[np.ndarray] = imgs) -> None:
                x = to_batch(imgs, bundle.input_spec)
                for model in plain:
                    gradcam_reference(model, model.layer4[-1], x, class_index=0)

            def gradcam_all_folds_all_classes(imgs: list[np.ndarray] = imgs) -> None:
                x = to_batch(imgs, bundle.input_spec)
                for model in plain:
                    for k in range(len(classes)):
                        gradcam_reference(model, model.layer4[-1], x, class_index=k)

            runs[("c", bs)] = gradcam_all_folds
            runs[("call", bs)] = gradcam_all_folds_all_classes
        measured = best_rates(runs, args.rounds)
        rows = {key: [measured[(key, 1)], measured[(key, 8)]] for key in ("a", "b", "c", "call")}

    print(
        f"\nFetalCNS inference, CPU, torch threads {torch.get_num_threads()}, {args.folds}-fold random "
        f"ResNet34, {args.classes} classes, 800x600 frames; fastest of {args.rounds} calls "
        f"(1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after)\n"
    )
    print(f"{'frames/s':48}{'batch 1':>10}{'batch 8':>10}")
    labels = {
        "a": "(a) ensemble, no CAM",
        "b": f"(b) ensemble + CAM of all {args.classes} classes",
        "c": f"(c) pytorch-grad-cam, {args.folds} folds, one class",
        "call": f"(c') pytorch-grad-cam, {args.folds} folds, all {args.classes} classes",
    }
    for key, label in labels.items():
        print(f"{label:48}" + "".join(f"{v:10.2f}" for v in rows[key]))
    ba = [b / a for a, b in zip(rows["a"], rows["b"], strict=True)]
    bc = [b / c for b, c in zip(rows["b"], rows["c"], strict=True)]
    print(f"{'(b) / (a)   target >= 0.9':48}" + "".join(f"{v:10.2f}" for v in ba))
    bcall = [b / c for b, c in zip(rows["b"], rows["call"], strict=True)]
    print(f"{'(b) / (c)   one class by grad-cam':48}" + "".join(f"{v:10.2f}" for v in bc))
    print(
        f"{chr(40) + 'b) / (c' + chr(39) + ')  same output, target >= 5':48}"
        + "".join(f"{v:10.2f}" for v in bcall)
    )
    print(
        f"\nload {args.folds} folds (float16, sha256 checked): median {statistics.median(loads):.3f} s "
        f"(runs {', '.join(f'{t:.3f}' for t in loads)}); in a fresh process {float(mem[3]):.3f} s"
    )
    print(
        f"memory added by the loaded ensemble + one forward pass of 1 frame: {float(mem[0]):.0f} MiB "
        f"(target <= 450); after a batch of 8: {float(mem[1]):.0f} MiB; process peak {float(mem[2]):.0f} MiB"
    )


# The end-to-end time of an exam (decode, crop, ensemble, CAMs, diagnosis) is in bench_pipeline.py.


if __name__ == "__main__":
    main()
