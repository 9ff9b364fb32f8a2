"""The training loop's parts: class weights, the learning-rate schedule, early stopping, one epoch of
training and one pass of evaluation (shape of torchvision's references/classification/train.py)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from fetalcns_core.training import distributed as dist_utils

log = logging.getLogger(__name__)


def class_weights(labels: Sequence[int], num_classes: int) -> torch.Tensor:
    """The study's weighted cross-entropy weights ``w_i = N / (K * n_i)`` from the training labels.

    ``K`` counts the classes present; a class absent from these labels gets weight 0 (it cannot be
    learnt from them, and an infinite weight would break the loss).
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    if not present.any():
        raise ValueError("no training labels: the class weights are undefined")
    weights = np.zeros(num_classes, dtype=np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


def warmup_cosine(warmup_steps: int, total_steps: int, min_factor: float = 0.0):  # noqa: ANN201
    """The multiplier of the base learning rate at each optimiser step: linear warm-up from 0 over
    ``warmup_steps`` (the study: the first epoch), then cosine decay to ``min_factor`` at ``total_steps``."""
    warmup_steps = max(0, int(warmup_steps))
    total_steps = max(1, int(total_steps))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


@dataclass
class EarlyStopping:
    """Stop when the validation score has not improved for ``patience`` epochs; remembers the best."""

    patience: int = 5
    mode: str = "max"  # "max" for accuracy, "min" for loss
    best: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0

    def step(self, score: float, epoch: int) -> bool:
        """Record an epoch's score; True when it is the best so far."""
        better = self.best is None or (score > self.best if self.mode == "max" else score < self.best)
        if better:
            self.best, self.best_epoch, self.bad_epochs = float(score), epoch, 0
        else:
            self.bad_epochs += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "patience": self.patience,
            "mode": self.mode,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def train_one_epoch(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: DataLoader,
    device: torch.device,
    epoch: int,
    scaler: torch.amp.GradScaler | None = None,
    clip_grad_norm: float | None = None,
    progress: bool = True,
    desc: str = "",
) -> dict[str, float]:
    """One pass over the training loader, stepping the scheduler after every optimiser step."""
    model.train()
    amp = scaler is not None and device.type == "cuda"
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = torch.zeros((), dtype=torch.int64, device=device)
    steps = 0
    bar = tqdm(
        loader, desc=desc or f"epoch {epoch}", leave=False, disable=not (progress and dist_utils.is_main())
    )
    for images, targets, _ in bar:
        images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        targets = targets.to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            logits = model(images)
            loss = criterion(logits, targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the training loss became {loss.item()} at epoch {epoch}: lower --lr or check the images"
            )
        optimizer.zero_grad(set_to_none=True)
        if amp:
            scaler.scale(loss).backward()
            if clip_grad_norm:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if clip_grad_norm:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
        scheduler.step()
        steps += 1
        n = targets.shape[0]
        total_loss += loss.detach().double() * n
        correct += (logits.detach().argmax(1) == targets).sum()
        seen += n
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
    stats = dist_utils.all_reduce_sum(torch.stack([total_loss, correct.double(), seen.double()]))
    n_seen = max(1.0, float(stats[2]))
    return {
        "train_loss": float(stats[0]) / n_seen,
        "train_acc": float(stats[1]) / n_seen,
        "lr": optimizer.param_groups[0]["lr"],
        "steps": steps,
    }


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    progress: bool = True,
    desc: str = "evaluate",
    amp: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits, labels and dataset indices of every item of ``loader``.

    Under DDP each process passes over its own share (``loader`` should hold a
    :class:`~fetalcns_core.training.distributed.ShardSampler`) and all get the gathered result, sorted by
    dataset index, so every process takes the same early-stopping decision.
    """
    model.eval()
    amp = amp and device.type == "cuda"
    out_logits, out_labels, out_index = [], [], []
    bar = tqdm(loader, desc=desc, leave=False, disable=not (progress and dist_utils.is_main()))
    for images, targets, index in bar:
        images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            logits = model(images)
        out_logits.append(logits.float().cpu())
        out_labels.append(targets.cpu())
        out_index.append(index.cpu())
    logits = torch.cat(out_logits).numpy() if out_logits else np.zeros((0, 0), np.float32)
    labels = torch.cat(out_labels).numpy() if out_labels else np.zeros(0, np.int64)
    index = torch.cat(out_index).numpy() if out_index else np.zeros(0, np.int64)
    parts = dist_utils.all_gather_object((logits, labels, index))
    parts = [p for p in parts if len(p[2])]
    if not parts:
        return logits, labels, index
    logits = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    index = np.concatenate([p[2] for p in parts])
    order = np.argsort(index, kind="stable")
    return logits[order], labels[order], index[order]


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def classification_metrics(
    logits: np.ndarray, labels: np.ndarray, num_classes: int, weights: torch.Tensor | None = None
) -> dict[str, float]:
    """Accuracy, balanced accuracy (mean recall of the classes present) and (weighted) loss."""
    if len(labels) == 0:
        return {"acc": math.nan, "balanced_acc": math.nan, "loss": math.nan}
    pred = logits.argmax(1)
    recalls = [float((pred[labels == k] == k).mean()) for k in range(num_classes) if (labels == k).any()]
    loss = nn.functional.cross_entropy(
        torch.from_numpy(logits).float(), torch.from_numpy(labels).long(), weight=weights
    )
    return {
        "acc": float((pred == labels).mean()),
        "balanced_acc": float(np.mean(recalls)),
        "loss": float(loss),
    }
