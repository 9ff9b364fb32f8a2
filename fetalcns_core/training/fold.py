"""Training one fold: fit on its training groups, choose the best epoch and the temperature on its
validation groups, then predict its test groups (the out-of-fold predictions)."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, get_worker_info

from fetalcns_core.exam import atomic_write_bytes
from fetalcns_core.preprocess import InputSpec, PhotometricJitter, eval_transform, train_transform
from fetalcns_core.training import checkpoint as ckpt
from fetalcns_core.training import distributed as dist_utils
from fetalcns_core.training.calibration import expected_calibration_error, fit_temperature
from fetalcns_core.training.dataset import DatasetIndex
from fetalcns_core.training.engine import (
    EarlyStopping,
    class_weights,
    classification_metrics,
    evaluate,
    softmax,
    train_one_epoch,
    warmup_cosine,
)
from fetalcns_core.training.frames import FrameItem, read_frame_image
from fetalcns_core.training.models import create_model
from fetalcns_core.training.outputs import RunError, append_metrics, identity, read_metrics, write_predictions
from fetalcns_core.training.splits import FoldSplit

log = logging.getLogger(__name__)

RESULT = "result.json"


@dataclass
class RunData:
    """The frames of a run, with each frame's label and group."""

    index: DatasetIndex
    items: list[FrameItem]
    labels: np.ndarray  # (N,) class index per frame
    groups: list[str]  # group per frame
    augmented: np.ndarray  # (N,) bool

    def select(
        self, groups: tuple[str, ...], augmented: bool, max_augmented: int | None = None
    ) -> np.ndarray:
        """Frames of ``groups``; augmented copies only if ``augmented`` (at most ``max_augmented`` files
        per group, the first in file order)."""
        wanted = set(groups)
        out, aug_files = [], {}
        for i, (item, group) in enumerate(zip(self.items, self.groups, strict=True)):
            if group not in wanted:
                continue
            if self.augmented[i]:
                if not augmented:
                    continue
                files = aug_files.setdefault(group, set())
                if max_augmented is not None and item.sample not in files and len(files) >= max_augmented:
                    continue
                files.add(item.sample)
            out.append(i)
        return np.asarray(out, dtype=np.int64)


class FrameDataset(Dataset):
    """Cached frames through a transform made in each process (so worker processes never pickle a
    closure); yields (image tensor, label, position in this dataset)."""

    def __init__(
        self,
        paths: list[Path],
        labels: np.ndarray,
        make_transform: functools.partial,
        jitter: PhotometricJitter | None = None,
    ) -> None:
        self.paths, self.labels = paths, labels
        self.make_transform, self.jitter = make_transform, jitter
        self._transform = None

    def __len__(self) -> int:
        return len(self.paths)

    def reseed(self, seed: int) -> None:
        if self.jitter is not None:
            self.jitter.rng.seed(seed)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        if self._transform is None:
            self._transform = self.make_transform()
        return self._transform(read_frame_image(self.paths[i])), int(self.labels[i]), i


def _worker_init(_: int) -> None:
    info = get_worker_info()
    if info is not None:
        info.dataset.reseed(torch.initial_seed() % 2**32)


def seed_epoch(seed: int, epoch: int, dataset: FrameDataset | None = None) -> None:
    """Reseed every generator for an epoch, so a resumed run repeats exactly what it would have done."""
    s = (seed * 1_000_003 + epoch * 7919 + dist_utils.rank() * 104_729) % 2**31
    torch.manual_seed(s)
    random.seed(s)
    np.random.seed(s)
    if dataset is not None:
        dataset.reseed(s)


def _loader(
    ds: Dataset, args: argparse.Namespace, sampler: Any, device: torch.device, drop_last: bool
) -> DataLoader:
    return DataLoader(
        ds,
        batch_size=args.batch_size,
        sampler=sampler,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        drop_last=drop_last,
        worker_init_fn=_worker_init,
    )


def _spec(args: argparse.Namespace) -> InputSpec:
    return InputSpec(size=args.size, resize=args.resize)


def _fold_config(args: argparse.Namespace, split: FoldSplit) -> dict[str, Any]:
    return {**identity(args), "fold": split.fold}


def train_fold(
    args: argparse.Namespace, data: RunData, split: FoldSplit, fold_dir: Path, device: torch.device
) -> dict[str, Any]:
    """Train fold ``split.fold`` into ``fold_dir`` (resuming its checkpoint) and return its result."""
    k = split.fold
    n_classes = len(data.index.classes)
    seed = args.seed + k
    tr = data.select(split.train, args.train_augmented, args.max_augmented_per_group)
    va = data.select(split.val, args.val_augmented)
    te = data.select(split.test, True)
    if len(va) == 0:
        raise RunError(
            f"fold {k} has no validation frames: every class needs at least 3 groups, or raise --val-fraction"
        )
    weights = class_weights(data.labels[tr], n_classes) if args.class_weights else None
    log.info(
        "fold %d: %d train / %d validation / %d test frames from %d / %d / %d groups; class weights %s",
        k,
        len(tr),
        len(va),
        len(te),
        len(split.train),
        len(split.val),
        len(split.test),
        None if weights is None else [round(w, 3) for w in weights.tolist()],
    )

    model, _ = create_model(args.arch, n_classes, args.init, seed)
    model = model.to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if args.sync_bn and dist_utils.is_distributed():
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net = model
    if dist_utils.is_distributed():
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    criterion = nn.CrossEntropyLoss(
        weight=None if weights is None else weights.to(device), label_smoothing=args.label_smoothing
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)

    spec = _spec(args)
    jitter = PhotometricJitter(rng=random.Random(seed)) if args.photometric else None
    make_train = functools.partial(
        train_transform, spec, photometric=jitter or False, scale=tuple(args.rrc_scale)
    )
    paths = [it.image_path for it in data.items]
    train_ds = FrameDataset([paths[i] for i in tr], data.labels[tr], make_train, jitter)
    sampler = DistributedSampler(
        train_ds, num_replicas=dist_utils.world_size(), rank=dist_utils.rank(), shuffle=True, seed=seed
    )
    train_loader = _loader(train_ds, args, sampler, device, drop_last=len(sampler) > args.batch_size)

    def eval_loader(idx: np.ndarray) -> DataLoader:
        ds = FrameDataset([paths[i] for i in idx], data.labels[idx], functools.partial(eval_transform, spec))
        return _loader(ds, args, dist_utils.ShardSampler(len(ds)), device, drop_last=False)

    val_loader = eval_loader(va)
    steps = len(train_loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(round(steps * args.warmup_epochs), steps * args.epochs, args.min_lr_factor)
    )
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" and args.amp else None
    stopper = EarlyStopping(args.patience, "min" if args.select_metric == "loss" else "max")
    start = 0
    checkpoint_path = fold_dir / ckpt.CHECKPOINT
    if checkpoint_path.is_file():
        state = ckpt.load_checkpoint(checkpoint_path)
        if state["config"] != _fold_config(args, split):
            raise RunError(
                f"{checkpoint_path} was written with other settings: delete the fold folder "
                "to restart it, or resume with the run's own settings"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state["scaler"] is not None:
            scaler.load_state_dict(state["scaler"])
        stopper.load_state_dict(state["stopper"])
        start = state["epoch"] + 1
        log.info(
            "fold %d: resuming after epoch %d (best so far: epoch %d, %s %.4f)",
            k,
            state["epoch"],
            stopper.best_epoch,
            args.select_metric,
            stopper.best,
        )
    rows = [r for r in read_metrics(fold_dir) if int(r["epoch"]) < start]

    for epoch in range(start, args.epochs):
        if stopper.should_stop:
            break
        t0 = time.perf_counter()
        seed_epoch(seed, epoch, train_ds)
        sampler.set_epoch(epoch)
        stats = train_one_epoch(
            net,
            criterion,
            optimizer,
            scheduler,
            train_loader,
            device,
            epoch,
            scaler,
            args.clip_grad_norm,
            args.progress,
            f"fold {k} epoch {epoch}",
        )
        dist_utils.broadcast_buffers(model)
        logits, labels, _ = evaluate(
            model, val_loader, device, args.progress, f"fold {k} validation", args.amp
        )
        val = classification_metrics(logits, labels, n_classes, weights)
        improved = stopper.step(val[args.select_metric], epoch)
        row = {
            "fold": k,
            "epoch": epoch,
            **stats,
            **{f"val_{m}": v for m, v in val.items()},
            "best": int(improved),
            "seconds": round(time.perf_counter() - t0, 2),
            "world_size": dist_utils.world_size(),
        }
        rows.append(row)
        if dist_utils.is_main():
            if improved:
                ckpt.save_best(fold_dir / ckpt.BEST, model, epoch, val[args.select_metric])
            append_metrics(fold_dir, rows)
            ckpt.save_checkpoint(
                checkpoint_path,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                scaler=scaler,
                epoch=epoch,
                stopper=stopper.state_dict(),
                config=_fold_config(args, split),
            )
        dist_utils.barrier()
        log.info(
            "fold %d epoch %d: train loss %.4f acc %.3f | val loss %.4f acc %.3f bal.acc %.3f%s (%.1fs)",
            k,
            epoch,
            stats["train_loss"],
            stats["train_acc"],
            val["loss"],
            val["acc"],
            val["balanced_acc"],
            " *best*" if improved else "",
            row["seconds"],
        )
        if stopper.should_stop:
            log.info("fold %d: no improvement for %d epochs, stopping early", k, args.patience)
    return _finish(args, data, split, fold_dir, device, model, val_loader, eval_loader(te), te, stopper, rows)


def _finish(
    args: argparse.Namespace,
    data: RunData,
    split: FoldSplit,
    fold_dir: Path,
    device: torch.device,
    model: nn.Module,
    val_loader: DataLoader,
    test_loader: DataLoader,
    te: np.ndarray,
    stopper: EarlyStopping,
    rows: list[dict[str, Any]],
) -> dict[str, Any]:
    """Best weights back in; temperature on validation; predictions of the test groups."""
    k = split.fold
    model.load_state_dict(ckpt.load_best(fold_dir / ckpt.BEST))
    val_logits, val_labels, _ = evaluate(
        model, val_loader, device, args.progress, f"fold {k} validation", args.amp
    )
    temperature = fit_temperature(val_logits, val_labels) if args.calibrate else 1.0
    ece_before = expected_calibration_error(softmax(val_logits), val_labels)
    ece_after = expected_calibration_error(softmax(val_logits, temperature), val_labels)
    test_logits, test_labels, order = evaluate(
        model, test_loader, device, args.progress, f"fold {k} test", args.amp
    )
    n_classes = len(data.index.classes)
    test = classification_metrics(test_logits, test_labels, n_classes)
    result = {
        "fold": k,
        "best_epoch": stopper.best_epoch,
        "best_score": stopper.best,
        "select_metric": args.select_metric,
        "epochs_run": len(rows),
        "stopped_early": stopper.should_stop,
        "temperature": temperature,
        "val_ece_before": ece_before,
        "val_ece_after": ece_after,
        "val": classification_metrics(val_logits, val_labels, n_classes),
        "test_frames": test,
        "groups": {"train": len(split.train), "val": len(split.val), "test": len(split.test)},
    }
    log.info(
        "fold %d: best epoch %d; temperature %.3f, validation ECE %.4f -> %.4f; test frames acc %.3f "
        "bal.acc %.3f (%d frames)",
        k,
        stopper.best_epoch,
        temperature,
        ece_before,
        ece_after,
        test["acc"],
        test["balanced_acc"],
        len(te),
    )
    if dist_utils.is_main():
        items = [te[i] for i in order]
        write_predictions(fold_dir, data, items, k, softmax(test_logits, temperature), softmax(test_logits))
        text = json.dumps(result, indent=1, allow_nan=True)
        atomic_write_bytes(fold_dir / RESULT, text.encode())
    dist_utils.barrier()
    return result
