"""``main(args)``: index the data, report it, extract frames, split by group, train the folds, assemble.

The shape of torchvision's references/classification/train.py: ``main(args)`` takes the parsed
arguments of :func:`fetalcns_core.training.cli.get_args_parser`.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from collections import Counter
from datetime import datetime
from logging.handlers import MemoryHandler
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from fetalcns_core.training import distributed as dist_utils
from fetalcns_core.training.dataset import DatasetIndex, LabelMap, build_index, check_duplicates, check_groups
from fetalcns_core.training.fold import RESULT, RunData, train_fold
from fetalcns_core.training.frames import FrameSettings, extract_frames
from fetalcns_core.training.models import resolve_init
from fetalcns_core.training.outputs import (
    RunError,
    assemble,
    code_version,
    fold_dir,
    folds_done,
    identity,
    read_run_json,
    write_run_json,
)
from fetalcns_core.training.splits import FoldSplit, assignment, group_labels, make_splits

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("fetalcns")) / "frames"


def data_fingerprint(index: DatasetIndex, sha256: dict[str, str]) -> str:
    """sha256 over every sample's (content sha256, label, group, augmented): the same data gives the same
    fingerprint wherever it lies (paths are left out), so folds trained on other machines can be joined
    safely and folds trained on other data cannot."""
    lines = sorted(
        f"{sha256.get(s.file) or s.file}\t{s.label}\t{s.group}\t{int(s.augmented)}\n" for s in index.samples
    )
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def frame_report(index: DatasetIndex, data: RunData) -> str:
    frames = Counter(int(v) for v in data.labels)
    return "usable frames per class: " + ", ".join(f"{c} {frames[k]}" for k, c in enumerate(index.classes))


def _load_data(args: argparse.Namespace) -> tuple[DatasetIndex, RunData, dict[str, str]]:
    label_map = LabelMap.load(args.label_map) if args.label_map else LabelMap()
    index = build_index(args.data, label_map, args.normal_class)
    log.info(
        "training data %s: %d classes (in output order)\n%s", index.source, len(index.classes), index.report()
    )
    need = args.folds if args.split == "kfold" else 2
    check_groups(
        index,
        need,
        f"{args.folds}-fold grouped cross-validation" if args.split == "kfold" else "leave-one-group-out",
    )
    settings = FrameSettings(every=args.every, fps=args.fps, crop=args.crop)
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    if not dist_utils.is_main():
        dist_utils.barrier()  # the first process decodes; the others then read the cache
    with tqdm(
        total=len(index.samples),
        desc="frames",
        unit="file",
        disable=not (args.progress and dist_utils.is_main()),
    ) as bar:

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        items, report = extract_frames(index.samples, settings, cache_dir, max(1, args.workers), progress)
    if dist_utils.is_main():
        dist_utils.barrier()
    log.info(
        "frames (every %s, fps %s, crop %s; cache %s): %s",
        args.every,
        args.fps,
        args.crop,
        cache_dir,
        report.summary(),
    )
    check_duplicates([s for s in index.samples if s.file in report.sha256], report.sha256)
    if not items:
        raise RunError("no usable frames: every file was unreadable or blank")
    samples = index.samples
    data = RunData(
        index=index,
        items=items,
        labels=np.asarray([index.label_index(samples[it.sample]) for it in items], dtype=np.int64),
        groups=[samples[it.sample].group for it in items],
        augmented=np.asarray([samples[it.sample].augmented for it in items], dtype=bool),
    )
    log.info(frame_report(index, data))
    return index, data, report.sha256


def _run_record(
    args: argparse.Namespace,
    index: DatasetIndex,
    splits: list[FoldSplit],
    fingerprint: str,
    unreadable: list[str],
    run_id: str,
) -> dict[str, Any]:
    counts = {c: vars(n) for c, n in index.counts().items()}
    return {
        "run_id": run_id,
        "code_version": code_version(),
        "config": identity(args),
        "architecture": args.arch,
        "classes": index.classes,
        "class_names": index.class_names,
        "normal_class": index.normal_class,
        "label_map": {**index.label_map.to_dict(), "dropped_files": index.dropped},
        "data": {
            "source": index.source,
            "fingerprint": fingerprint,
            "counts": counts,
            "unreadable": unreadable,
        },
        "seeds": {"seed": args.seed, "fold_seeds": {str(s.fold): args.seed + s.fold for s in splits}},
        "splits": {"scheme": args.split, "folds": [s.to_dict() for s in splits], **assignment(splits)},
    }


def _check_same_run(existing: dict[str, Any], record: dict[str, Any], run_dir: Path) -> None:
    """Refuse to add folds to a run folder that was started with other settings or data."""
    for key in ("config", "classes", "label_map", "splits"):
        if existing.get(key) != record.get(key):
            diff = ""
            if key == "config":
                a, b = existing["config"], record["config"]
                diff = ": " + ", ".join(
                    f"{k} {a.get(k)!r} -> {b.get(k)!r}"
                    for k in sorted(set(a) | set(b))
                    if a.get(k) != b.get(k)
                )
            raise RunError(
                f"'{run_dir}' holds a run with other {key}{diff}; use another --output-dir, "
                "or the run's own settings (--config RUN/run.json with its --data and --label-map)"
            )
    if existing["data"]["fingerprint"] != record["data"]["fingerprint"]:
        raise RunError(
            f"'{run_dir}' was trained on other data (files, labels or groups differ): "
            "use another --output-dir"
        )


class RunLog:
    """``train.log`` in the run folder: what the package logs, from the start (kept in memory until the
    run folder exists, so a refused run leaves no folder behind)."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("fetalcns_core")
        self.handler: logging.Handler = MemoryHandler(capacity=1_000_000, flushLevel=logging.CRITICAL + 1)
        self.logger.addHandler(self.handler)

    def open(self, run_dir: Path) -> None:
        if not isinstance(self.handler, MemoryHandler):
            return
        file = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
        file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.handler.setTarget(file)
        self.handler.flush()
        self.logger.removeHandler(self.handler)
        self.handler = file
        self.logger.addHandler(file)

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()


def main(args: argparse.Namespace) -> Path | None:
    """Train the folds asked for; returns the bundle folder once every fold of the run is finished."""
    device = dist_utils.init_from_env(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    run_log = RunLog() if dist_utils.is_main() else None
    try:
        return _main(args, device, run_log)
    finally:
        if run_log is not None:
            run_log.close()
        dist_utils.cleanup()


def _main(args: argparse.Namespace, device: Any, run_log: RunLog | None) -> Path | None:
    stamp = dist_utils.broadcast_object(datetime.now().strftime("%Y%m%d-%H%M%S"))
    run_dir = Path(args.output_dir or Path("runs") / f"train-{stamp}")
    args.arch, _ = resolve_init(args.arch, args.init)  # fails early when ImageNet weights are missing
    index, data, sha256 = _load_data(args)
    glabels = group_labels(((s.group, s.label, s.augmented) for s in index.samples), index.classes)
    splits = make_splits(glabels, index.classes, args.split, args.folds, args.val_fraction, args.seed)
    unreadable = sorted({s.file for s in index.samples} - set(sha256))
    existing = read_run_json(run_dir)
    run_id = existing["run_id"] if existing else stamp
    record = _run_record(args, index, splits, data_fingerprint(index, sha256), unreadable, run_id)
    if existing is not None:
        _check_same_run(existing, record, run_dir)
    elif dist_utils.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
        write_run_json(run_dir, record)
    if run_log is not None:
        run_log.open(run_dir)
    dist_utils.barrier()
    log.info(
        "run folder %s (%s split, %d folds, device %s, %d process(es))",
        run_dir,
        args.split,
        len(splits),
        device,
        dist_utils.world_size(),
    )
    todo = list(range(len(splits))) if args.fold is None else [args.fold]
    if any(k < 0 or k >= len(splits) for k in todo):
        raise ValueError(f"--fold {args.fold} does not exist: the run has folds 0..{len(splits) - 1}")
    for k in todo:
        fdir = fold_dir(run_dir, k)
        if (fdir / RESULT).is_file():
            log.info("fold %d is already finished: skipping it", k)
            continue
        if (fdir / "checkpoint.pt").is_file() and not args.resume:
            raise RunError(
                f"fold {k} of '{run_dir}' has a checkpoint: add --resume to continue it, or "
                "choose another --output-dir"
            )
        fdir.mkdir(parents=True, exist_ok=True)
        train_fold(args, data, splits[k], fdir, device)
    done = folds_done(run_dir, len(splits))
    if len(done) < len(splits):
        rest = sorted(set(range(len(splits))) - set(done))
        log.info(
            "folds %s of %s remain: train them with --fold K (on any machine, then copy folds/fold-K "
            "here) and join them with 'fetalcns-train assemble %s'",
            rest,
            run_dir,
            run_dir,
        )
        return None
    bundle = assemble(run_dir, args.weights_dtype) if dist_utils.is_main() else run_dir / "bundle"
    dist_utils.barrier()
    log.info(
        "run finished: out-of-fold predictions %s, model bundle %s; evaluate with 'fetalcns-eval %s'",
        run_dir / "oof_predictions.csv",
        bundle,
        run_dir,
    )
    return bundle
