"""Per-epoch checkpoints (model, optimiser, scheduler, scaler, epoch, early stopping, config) and the
best-validation weights of a fold. Written atomically; read with ``weights_only=True``."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from fetalcns_core.exam import atomic_write_bytes
from fetalcns_core.training.outputs import RunError

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
BEST = "best.safetensors"


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The network inside DDP / torch.compile wrappers."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or model._orig_mod
    return model


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in unwrap(model).state_dict().items()}


def save_checkpoint(
    path: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    epoch: int,
    stopper: dict[str, Any],
    config: dict[str, Any],
) -> None:
    """Everything needed to continue after ``epoch`` (the last finished epoch)."""
    payload = {
        "model": cpu_state(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": epoch,
        "stopper": stopper,
        "config": config,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several error types for a damaged file
        raise RunError(
            f"checkpoint '{path}' cannot be read ({exc}): delete it to restart this fold from epoch 0"
        ) from exc


def save_best(path: Path, model: torch.nn.Module, epoch: int, score: float) -> None:
    payload = save(cpu_state(model), metadata={"epoch": str(epoch), "score": repr(score)})
    atomic_write_bytes(path, payload)


def load_best(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))
