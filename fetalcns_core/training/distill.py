"""A ResNet34 start for ultrasound, distilled from the ImageNet ResNet50 on unlabelled ultrasound images.

No ImageNet ResNet34 weights can be had offline, but ImageNet ResNet50 weights can (see
:mod:`fetalcns_core.training.convert`). This teaches a ResNet34 to reproduce the ResNet50's feature
maps after stages 2, 3 and 4 (hint learning, FitNets style: a 1x1 projection per stage, discarded
afterwards) on augmented ultrasound images, so the study's architecture starts from features that know
ImageNet's edges and textures as they appear in ultrasound. No labels are used. Use images that are not
in the data you will evaluate on (for example HC18 subjects set aside for this), so that cross-validation
stays clean.

    fetalcns-train distill --teacher r50.safetensors --images DIR_OR_LIST --out r34-start.safetensors
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader, Dataset

from fetalcns_core.bundle import build_network
from fetalcns_core.crop import crop_frame
from fetalcns_core.preprocess import InputSpec, train_transform
from fetalcns_core.sources import expand_paths, iter_frames, probe

log = logging.getLogger(__name__)

STAGES = ("layer2", "layer3", "layer4")
STUDENT_CHANNELS = {"layer2": 128, "layer3": 256, "layer4": 512}
TEACHER_CHANNELS = {"layer2": 512, "layer3": 1024, "layer4": 2048}


class UltrasoundImages(Dataset):
    """Cropped ultrasound frames (as inference crops them), with the training augmentation."""

    def __init__(self, paths: list[Path], spec: InputSpec) -> None:
        self.images: list[np.ndarray] = []
        for path in paths:
            src = probe(path)
            for frame in iter_frames(src, every=80):
                crop = crop_frame(frame.image, mode="auto")
                if crop.usable:
                    self.images.append(crop.image)
        if not self.images:
            raise ValueError("no usable ultrasound image found for distillation")
        self.transform = train_transform(spec, photometric=True)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(self.images[i])


def _stage_features(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {}
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    x = model.layer1(x)
    for name in STAGES:
        x = getattr(model, name)(x)
        out[name] = x
    return out


def _hint_loss(
    student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor], heads: nn.ModuleDict
) -> torch.Tensor:
    loss = torch.zeros((), device=next(iter(student.values())).device)
    for name in STAGES:
        s = F.normalize(heads[name](student[name]), dim=1)
        t = F.normalize(teacher[name], dim=1)
        loss = loss + (s - t).pow(2).sum(dim=1).mean()
        # the pooled feature (what the classifier sees) deserves its own term on the last stage
        if name == STAGES[-1]:
            loss = (
                loss
                + (
                    1
                    - F.cosine_similarity(
                        heads[name](student[name]).mean((2, 3)), teacher[name].mean((2, 3)), dim=1
                    )
                ).mean()
            )
    return loss


def distill(
    teacher_weights: Path,
    image_paths: list[Path],
    out: Path,
    *,
    size: int = 160,
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, float]:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    spec = InputSpec(size=size, resize=round(size * 256 / 224))
    data = UltrasoundImages(image_paths, spec)
    loader = DataLoader(
        data,
        batch_size=batch_size,
        shuffle=True,
        drop_last=len(data) > batch_size,
        generator=torch.Generator().manual_seed(seed),
    )
    teacher = build_network("resnet50-v1", 1000, device="cpu")
    teacher.load_state_dict(load_file(str(teacher_weights)), assign=True)
    teacher.to(device).eval().requires_grad_(False)
    student = build_network("resnet34", 1000, device="cpu")
    for m in student.modules():  # build_network may leave meta tensors: give the student real weights
        if hasattr(m, "reset_parameters"):
            m.to_empty(device="cpu", recurse=False)
            m.reset_parameters()
    student.to(device).train()
    heads = nn.ModuleDict({n: nn.Conv2d(STUDENT_CHANNELS[n], TEACHER_CHANNELS[n], 1) for n in STAGES}).to(
        device
    )
    params = list(student.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    steps = epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / len(loader)) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    history: dict[str, float] = {}
    t0 = time.perf_counter()
    for epoch in range(epochs):
        total, n = 0.0, 0
        for x in loader:
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                t = _stage_features(teacher, x)
            loss = _hint_loss(_stage_features(student, x), t, heads)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(x)
            n += len(x)
        history[f"epoch{epoch}"] = total / n
        log.info(
            "distill epoch %d/%d: hint loss %.4f (%.0f s)",
            epoch + 1,
            epochs,
            total / n,
            time.perf_counter() - t0,
        )
    state = {
        k: v.detach().cpu().contiguous() for k, v in student.state_dict().items() if not k.startswith("fc.")
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        state,
        str(out),
        metadata={
            "architecture": "resnet34",
            "init": "distilled-from-imagenet-resnet50",
            "images": str(len(data)),
            "epochs": str(epochs),
            "size": str(size),
        },
    )
    return history


def _read_list(items: list[str]) -> list[Path]:
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.suffix == ".txt":
            paths += [Path(line.strip()) for line in p.read_text().splitlines() if line.strip()]
        else:
            paths += expand_paths([p])
    return paths


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fetalcns-train distill",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--teacher", type=Path, required=True, help="converted ImageNet ResNet50 (convert-weights)"
    )
    p.add_argument("--images", nargs="+", required=True, help="folders, files, or .txt lists of image paths")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    history = distill(
        args.teacher,
        _read_list(args.images),
        args.out,
        size=args.size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
    )
    print(
        f"wrote {args.out}; hint loss {history[next(iter(history))]:.4f} -> {history[list(history)[-1]]:.4f}"
    )
    return 0
