"""Synthetic ultrasound-like images for tests that need no real data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def fan_image(seed: int, size: tuple[int, int] = (240, 320)) -> np.ndarray:
    """A fan-shaped speckled image with burned-in text, like a small scanner frame (RGB)."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, 10), (h - 20, h - 20), 90, -35, 35, 255, -1)
    tex = cv2.GaussianBlur(rng.integers(40, 220, (h, w), dtype=np.uint8), (5, 5), 0)
    img[mask > 0] = tex[mask > 0][:, None]
    cv2.putText(img, "GE 12/03/2024", (5, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
    return img


def write_fan_images(folder: Path, n: int) -> Path:
    """``n`` fan images as PNG files img0.png … in ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"img{i}.png"), cv2.cvtColor(fan_image(i), cv2.COLOR_RGB2BGR))
    return folder


def write_video(path: Path, n_frames: int, size: tuple[int, int] = (240, 320)) -> Path:
    """An MJPG AVI of ``n_frames`` fan images at 10 frames per second."""
    h, w = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    for i in range(n_frames):
        writer.write(cv2.cvtColor(fan_image(100 + i, size), cv2.COLOR_RGB2BGR))
    writer.release()
    return path
