"""A generated toy dataset with class-dependent patterns, in the study's folder layout."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

TOY_CLASSES = ("normal", "stripes-v", "checker")


def toy_image(cls: str, rng: np.random.Generator, size: int = 48, brightness: float = 0.0) -> np.ndarray:
    """An RGB uint8 image: horizontal stripes, vertical stripes or a checkerboard, with noise."""
    period = rng.integers(6, 10)
    phase = rng.integers(0, period)
    yy, xx = np.mgrid[0:size, 0:size]
    if cls == TOY_CLASSES[0]:
        pattern = ((yy + phase) // (period // 2)) % 2
    elif cls == TOY_CLASSES[1]:
        pattern = ((xx + phase) // (period // 2)) % 2
    else:
        pattern = (((yy + phase) // (period // 2)) + ((xx + phase) // (period // 2))) % 2
    grey = 60 + 120 * pattern + brightness + rng.normal(0, 12, (size, size))
    grey = np.clip(grey, 20, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def make_toy_dataset(
    root: Path,
    groups_per_class: int = 5,
    images_per_group: int = 3,
    size: int = 48,
    seed: int = 0,
    classes: tuple[str, ...] = TOY_CLASSES,
) -> Path:
    """ROOT/<class>/<patient>/img-N.png; each patient has its own brightness."""
    rng = np.random.default_rng(seed)
    for cls in classes:
        for g in range(groups_per_class):
            folder = root / cls / f"{cls}-patient{g:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            brightness = rng.normal(0, 15)
            for i in range(images_per_group):
                img = toy_image(cls, rng, size, brightness)
                cv2.imwrite(str(folder / f"img-{i}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root
