"""Multi-process training with ``torchrun`` (DDP): NCCL on CUDA, gloo on CPU.

Without ``torchrun`` every helper works for a single process, so the loop has one code path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

log = logging.getLogger(__name__)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def init_from_env(device_kind: str) -> torch.device:
    """Join the process group when started by ``torchrun`` and return this process's device.

    ``device_kind`` is ``auto`` (CUDA when present), ``cuda`` or ``cpu``.
    """
    if device_kind == "auto":
        device_kind = "cuda" if torch.cuda.is_available() else "cpu"
    if device_kind == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA GPU is available: use --device cpu")
    if device_kind not in ("cuda", "cpu"):
        raise ValueError(f"unknown device '{device_kind}': use auto, cuda or cpu")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1 and not is_distributed():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if device_kind == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
        log.info("process %d of %d joined (%s)", rank(), world_size(), backend)
    return torch.device("cuda", local) if device_kind == "cuda" else torch.device("cpu")


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_object(obj: Any) -> list[Any]:
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Give every process rank 0's buffers (batch-norm running statistics), which each process updated
    with its own batches since DDP last synchronised them, so that all evaluate the same network."""
    if is_distributed():
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


class ShardSampler(Sampler[int]):
    """Evaluation sampler: process r takes items r, r + W, r + 2W ... with no padding or duplicates
    (``DistributedSampler`` pads, which would count some items twice in the metrics)."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __iter__(self) -> Iterator[int]:
        return iter(range(rank(), self.length, world_size()))

    def __len__(self) -> int:
        return len(range(rank(), self.length, world_size()))
