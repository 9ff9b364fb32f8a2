"""Synthetic ultrasound screens for tests: a textured fan or rectangle on black, with the graphics a
scanner burns in around it (header text, grey-scale bar, depth ticks, cross-hair)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def speckle(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Ultrasound-like texture: smoothed multiplicative noise, grey 20..230, uint8."""
    rng = np.random.default_rng(seed)
    noise = rng.gamma(2.0, 1.0, size=(height, width)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=2.0, sigmaY=1.0)
    shade = np.linspace(1.2, 0.6, height, dtype=np.float32)[:, None]
    img = noise / noise.max() * 255.0 * shade
    return np.clip(img + 20, 20, 230).astype(np.uint8)


@dataclass
class Screen:
    image: np.ndarray  # H x W x 3 RGB
    image_mask: np.ndarray  # bool: the ultrasound image
    text_mask: np.ndarray  # bool: burned-in text outside the image
    graphics_mask: np.ndarray  # bool: bar, ticks, cross-hair outside the image


def fan_screen(height: int = 614, width: int = 1112, seed: int = 0, shape: str = "fan") -> Screen:
    """A screen like a scanner's: the image in the middle, text and graphics around it."""
    image = np.zeros((height, width, 3), np.uint8)
    mask = np.zeros((height, width), np.uint8)
    cx = width // 2
    if shape == "fan":
        apex_y = int(0.12 * height) - int(0.55 * height)
        radius = int(0.95 * height) - apex_y
        cv2.ellipse(mask, (cx, apex_y), (radius, radius), 0, 90 - 30, 90 + 30, 1, thickness=-1)
        inner = int(0.12 * height) - apex_y
        cv2.ellipse(mask, (cx, apex_y), (inner, inner), 0, 0, 360, 0, thickness=-1)
    else:
        mask[int(0.15 * height) : int(0.92 * height), int(0.25 * width) : int(0.75 * width)] = 1
    tex = speckle(height, width, seed)
    image[mask > 0] = tex[mask > 0][:, None]
    text = np.zeros((height, width, 3), np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(text, "FetalCNS C5-1 12.0cm 35Hz", (20, 40), font, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.putText(text, "2026-01-02 10:11:12", (width - 260, 40), font, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.putText(text, "Gn 4", (width - 110, height // 2), font, 0.5, (230, 230, 230), 1, cv2.LINE_AA)
    text_mask = (text.max(axis=2) > 0) & (mask == 0)
    graphics = np.zeros((height, width, 3), np.uint8)
    bar_x = 12
    for y in range(int(0.2 * height), int(0.6 * height)):  # grey-scale bar, white at the top
        level = int(255 * (1 - (y - 0.2 * height) / (0.4 * height)))
        graphics[y, bar_x : bar_x + 10] = level
    for y in range(int(0.15 * height), int(0.95 * height), 40):  # depth ticks
        graphics[y : y + 2, 40:44] = 200
    cv2.line(graphics, (width - 80, height // 2 + 40), (width - 20, height // 2 + 40), (255, 140, 0), 1)
    cv2.line(graphics, (cx, 0), (cx, int(0.05 * height)), (150, 220, 230), 1)  # cross-hair above the image
    graphics_mask = (graphics.max(axis=2) > 0) & (mask == 0)
    image = np.where(text_mask[..., None], text, image)
    image = np.where(graphics_mask[..., None], graphics, image)
    return Screen(image, mask > 0, text_mask, graphics_mask)
