"""What every reader of ``sources`` shares: the error it raises and the reduction of pixels to 8 bits.

Images of more than 8 bits are reduced to 8 bits by a shift that keeps the black level and the relative
brightness: the bit depth is taken from the largest value present (a 12-bit image stored in 16 bits
shifts by 4, a full 16-bit one by 8), so a dim image stays dim rather than being stretched to the full
range.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fetalcns_core.exam import SourceFile

CancelFn = Callable[[], bool]


class SourceError(Exception):
    """An input that cannot be read; the message names the file and says what to do."""


def damaged(path: Path, what: str = "image") -> SourceError:
    """The error for a file that cannot be decoded as a ``what``."""
    return SourceError(f"cannot read {what} '{path.name}': file is damaged or not an {what} — re-export it")


def to_8bit(arr: np.ndarray) -> np.ndarray:
    """Integer pixels of more than 8 bits to 8 bits by a shift (see the module's notes)."""
    if arr.dtype == np.uint8:
        return arr
    arr = arr.astype(np.float64) if arr.dtype.kind == "f" else arr.astype(np.int64)
    if arr.dtype.kind == "f":
        top = float(arr.max()) if arr.size else 0.0
        scaled = arr / top * 255.0 if top > 1.0 else arr * 255.0
        return np.clip(scaled, 0, 255).astype(np.uint8)
    lowest = int(arr.min()) if arr.size else 0
    if lowest < 0:
        arr = arr - lowest  # signed data: move the lowest value to black
    top = int(arr.max()) if arr.size else 0
    bits = max(8, math.ceil(math.log2(top + 1)))
    return (arr >> (bits - 8)).astype(np.uint8)


def frame_time(source: SourceFile, index: int) -> float | None:
    """The time of frame ``index`` in seconds, None when the file's frame rate is unknown."""
    return None if not source.fps else index / source.fps
