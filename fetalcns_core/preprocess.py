"""The study's image transforms, from an RGB frame to the network's input tensor.

Evaluation: resize the short side to ``resize`` (256), centre crop ``size`` (224), ImageNet mean/std,
exactly as torchvision's ``Resize(256)`` + ``CenterCrop(224)`` on tensors. Training: random resized crop
and horizontal flip, with optional photometric jitter (gain, brightness, contrast, gamma) so that a
network does not learn the grey-level habits of one scanner or archive.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from fetalcns_core.exam import Box

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

ImageTransform = Callable[[np.ndarray], torch.Tensor]


@dataclass(frozen=True)
class InputSpec:
    """What the network expects: a ``size`` square crop of the image resized to ``resize`` (short side)."""

    size: int = 224
    resize: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.size <= 0 or self.resize < self.size:
            raise ValueError(
                f"input spec needs 0 < size <= resize, got size={self.size}, resize={self.resize}: "
                "fix the bundle's 'input' section"
            )
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"input spec needs 3 means and 3 positive stds, got {self.mean}, {self.std}")

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "resize": self.resize, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        try:
            return cls(
                size=int(data.get("size", 224)),
                resize=int(data.get("resize", 256)),
                mean=tuple(float(v) for v in data.get("mean", IMAGENET_MEAN)),  # type: ignore[arg-type]
                std=tuple(float(v) for v in data.get("std", IMAGENET_STD)),  # type: ignore[arg-type]
            )
        except (TypeError, AttributeError) as exc:
            raise ValueError(
                f"input spec is malformed ({exc}): expected size, resize, mean[3], std[3]"
            ) from exc


def _as_chw_uint8(image: np.ndarray) -> torch.Tensor:
    """An H x W x 3 uint8 RGB array as a 3 x H x W tensor view (no copy)."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", None)
        raise ValueError(f"expected an H x W x 3 uint8 RGB image, got shape {shape} dtype {dtype}")
    return torch.from_numpy(image).permute(2, 0, 1)


def resized_size(height: int, width: int, spec: InputSpec) -> tuple[int, int]:
    """(height, width) after resizing the short side to ``spec.resize``, as torchvision computes it."""
    if height <= width:
        return spec.resize, int(spec.resize * width / height)
    return int(spec.resize * height / width), spec.resize


def _crop_anchor(height: int, width: int, size: int) -> tuple[int, int]:
    """(top, left) of torchvision's centre crop."""
    return int(round((height - size) / 2.0)), int(round((width - size) / 2.0))


def eval_crop_uint8(image: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """Resize the short side and centre crop: 3 x size x size uint8 (torchvision's native uint8 kernel)."""
    chw = _as_chw_uint8(image)
    h, w = image.shape[:2]
    rh, rw = resized_size(h, w, spec)
    resized = TF.resize(chw, [rh, rw], antialias=True) if (rh, rw) != (h, w) else chw
    top, left = _crop_anchor(rh, rw, spec.size)
    return resized[:, top : top + spec.size, left : left + spec.size]


def _normalise(batch_uint8: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """uint8 (..., 3, H, W) to float32 normalised with ``spec``'s mean and std, in one pass."""
    std = torch.tensor(spec.std, dtype=torch.float32).view(3, 1, 1)
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(3, 1, 1)
    return torch.addcmul(-mean / std, batch_uint8.to(torch.float32), 1.0 / (255.0 * std))


def eval_transform(spec: InputSpec | None = None) -> ImageTransform:
    """RGB uint8 ndarray to a normalised 3 x size x size float tensor (resize short side, centre crop)."""
    spec = spec or InputSpec()

    def transform(image: np.ndarray) -> torch.Tensor:
        return _normalise(eval_crop_uint8(image, spec), spec)

    return transform


def to_batch(images: Sequence[np.ndarray], spec: InputSpec | None = None) -> torch.Tensor:
    """Images with the eval transform, as one (N, 3, size, size) float32 channels_last batch."""
    spec = spec or InputSpec()
    if len(images) == 0:
        return torch.empty((0, 3, spec.size, spec.size), dtype=torch.float32)
    crops = torch.stack([eval_crop_uint8(img, spec) for img in images])
    return _normalise(crops, spec).contiguous(memory_format=torch.channels_last)


def eval_view_box(height: int, width: int, spec: InputSpec | None = None) -> Box:
    """The part of a ``height`` x ``width`` image that the eval transform shows the network."""
    spec = spec or InputSpec()
    rh, rw = resized_size(height, width, spec)
    top, left = _crop_anchor(rh, rw, spec.size)
    sy, sx = height / rh, width / rw
    box = Box(
        round(left * sx),
        round(top * sy),
        round((left + spec.size) * sx),
        round((top + spec.size) * sy),
    )
    return box.clip(width, height)


@dataclass
class PhotometricJitter:
    """Random grey-level changes of a float image in [0, 1], the same for all three channels.

    gain multiplies, brightness adds, contrast stretches about the image mean, gamma bends the curve
    (gamma drawn log-uniformly in [1/(1+g), 1+g]). Each is applied with probability ``p``.
    """

    gain: float = 0.25
    brightness: float = 0.1
    contrast: float = 0.25
    gamma: float = 0.3
    p: float = 0.8
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        r = self.rng
        if self.gain and r.random() < self.p:
            img = img * r.uniform(1.0 - self.gain, 1.0 + self.gain)
        if self.brightness and r.random() < self.p:
            img = img + r.uniform(-self.brightness, self.brightness)
        if self.contrast and r.random() < self.p:
            mean = img.mean()
            img = (img - mean) * r.uniform(1.0 - self.contrast, 1.0 + self.contrast) + mean
        img = img.clamp(0.0, 1.0)
        if self.gamma and r.random() < self.p:
            img = img.pow(math.exp(r.uniform(-math.log1p(self.gamma), math.log1p(self.gamma))))
        return img


def train_transform(
    spec: InputSpec | None = None,
    photometric: bool | PhotometricJitter = True,
    scale: tuple[float, float] = (0.08, 1.0),
    seed: int | None = None,
) -> ImageTransform:
    """RGB uint8 ndarray to a normalised tensor: random resized crop, horizontal flip, photometric jitter.

    The geometric part draws from torch's generator (seed DataLoader workers as usual); the photometric
    part from its own ``random.Random`` (``seed`` makes it repeatable).
    """
    spec = spec or InputSpec()
    geometric = v2.Compose(
        [v2.RandomResizedCrop(spec.size, scale=scale, antialias=True), v2.RandomHorizontalFlip()]
    )
    if photometric is True:
        jitter: PhotometricJitter | None = PhotometricJitter(rng=random.Random(seed))
    elif photometric is False:
        jitter = None
    else:
        jitter = photometric
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(3, 1, 1)

    def transform(image: np.ndarray) -> torch.Tensor:
        img = geometric(_as_chw_uint8(image).contiguous()).to(torch.float32) / 255.0
        if jitter is not None:
            img = jitter(img)
        return (img - mean) / std

    return transform
