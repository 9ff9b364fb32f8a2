"""Training frames: files become frames through the same ``sources`` + ``crop`` code as inference.

Videos and DICOM are sampled as the app samples them (every 80th frame by default) and every frame is
cropped with the app's cropping, so a network is trained on the pixels it will later be shown. Decoded
and cropped frames are cached on disk as lossless PNG, keyed by the file's sha256, the sampling and
crop settings, and a fingerprint of the decoding and cropping code, so that a second run decodes
nothing and a change of that code is never served stale frames.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fetalcns_core import __version__
from fetalcns_core.exam import atomic_write_bytes
from fetalcns_core.training.dataset import Sample

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
INDEX = "frames.json"


@dataclass(frozen=True)
class FrameSettings:
    """How files become frames: video sampling and cropping (as ``AnalysisSettings`` of the app)."""

    every: int | None = 80
    fps: float | None = None
    crop: str = "auto"  # auto | none

    def __post_init__(self) -> None:
        if self.crop not in ("auto", "none"):
            raise ValueError(f"crop '{self.crop}' cannot be used for training: use 'auto' or 'none'")
        if self.fps is None and (self.every is None or self.every < 1):
            raise ValueError(f"sample every N-th frame with N >= 1 (got {self.every}) or give fps")

    def key(self) -> str:
        """The cache key part of these settings and of the code that applies them."""
        text = json.dumps(
            {
                "format": CACHE_FORMAT,
                "every": self.every,
                "fps": self.fps,
                "crop": self.crop,
                "code": code_fingerprint(),
            },
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def code_fingerprint() -> str:
    """sha256 of the source of ``sources`` and ``crop``: frames change when that code does."""
    from fetalcns_core import crop, sources

    digest = hashlib.sha256()
    for module in (sources, crop):
        try:
            digest.update(Path(inspect.getfile(module)).read_bytes())
        except (OSError, TypeError):  # frozen build without sources: fall back to the version
            digest.update(f"{module.__name__}-{__version__}".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class FrameItem:
    """One usable training frame: the sample it comes from and its cropped pixels on disk."""

    sample: int  # index into the sample list
    index: int  # frame index in the file (0 for a still image)
    time_s: float | None
    image_path: Path
    crop_box: tuple[int, int, int, int] | None
    crop_method: str


@dataclass
class ExtractionReport:
    files: int = 0
    decoded: int = 0  # files decoded this time (the rest came from the cache)
    frames: int = 0
    unusable: dict[str, int] = field(default_factory=dict)  # reason -> frames
    unreadable: dict[str, str] = field(default_factory=dict)  # file -> error
    sha256: dict[str, str] = field(default_factory=dict)  # file -> sha256

    def summary(self) -> str:
        text = (
            f"{self.frames} usable frames from {self.files - len(self.unreadable)} files "
            f"({self.decoded} decoded now, {self.files - self.decoded - len(self.unreadable)} from the cache)"
        )
        if self.unusable:
            text += "; unusable frames: " + ", ".join(f"{n} {r}" for r, n in sorted(self.unusable.items()))
        if self.unreadable:
            text += f"; {len(self.unreadable)} unreadable file(s), e.g. {next(iter(self.unreadable.items()))}"
        return text


class FrameCache:
    """``ROOT/<sha[:2]>/<sha>/<settings key>/`` holding ``frames.json`` and one PNG per usable frame."""

    def __init__(self, root: str | os.PathLike[str], settings: FrameSettings) -> None:
        self.root = Path(root)
        self.settings = settings
        self.key = settings.key()
        self._memo_path = self.root / "sha256-memo.json"
        try:
            self._memo: dict[str, list[Any]] = json.loads(self._memo_path.read_text())
        except (OSError, ValueError):
            self._memo = {}

    def sha256(self, path: Path) -> str:
        """The file's sha256, remembered by (size, mtime) so big videos are hashed once."""
        from fetalcns_core.sources import sha256_file

        st = path.stat()
        key = str(path.resolve())
        hit = self._memo.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return str(hit[2])
        digest = sha256_file(path)
        self._memo[key] = [st.st_size, st.st_mtime_ns, digest]
        return digest

    def save_memo(self) -> None:
        atomic_write_bytes(self._memo_path, json.dumps(self._memo).encode())

    def entry(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256 / self.key

    def lookup(self, sha256: str) -> list[dict[str, Any]] | None:
        try:
            return json.loads((self.entry(sha256) / INDEX).read_text())["frames"]
        except (OSError, ValueError, KeyError):
            return None

    def build(self, path: Path, sha256: str) -> list[dict[str, Any]]:
        """Decode and crop every sampled frame of ``path`` into the cache; returns the frame records."""
        from fetalcns_core.crop import crop_frame
        from fetalcns_core.sources import iter_frames, probe

        source = probe(path)
        target = self.entry(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
        try:
            records = []
            for frame in iter_frames(source, every=self.settings.every, fps=self.settings.fps):
                crop = crop_frame(frame.image, mode=self.settings.crop, region_hint=frame.region_hint)
                rec: dict[str, Any] = {
                    "index": frame.index,
                    "time_s": frame.time_s,
                    "method": crop.method,
                    "box": crop.box.as_list(),
                    "usable": crop.usable,
                    "reason": crop.reason,
                }
                if crop.usable:
                    rec["png"] = f"f{frame.index:07d}.png"
                    bgr = cv2.cvtColor(np.ascontiguousarray(crop.image), cv2.COLOR_RGB2BGR)
                    if not cv2.imwrite(str(tmp / rec["png"]), bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
                        raise OSError(f"cannot write a cached frame under '{tmp}': check the disk")
                records.append(rec)
            meta = {"sha256": sha256, "settings": self.settings.__dict__, "frames": records}
            (tmp / INDEX).write_text(json.dumps(meta))
            if target.exists():  # built meanwhile by another process: keep theirs
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return records


def extract_frames(
    samples: Sequence[Sample],
    settings: FrameSettings,
    cache_dir: str | os.PathLike[str],
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[list[FrameItem], ExtractionReport]:
    """The usable frames of every sample, decoding and cropping only what the cache lacks."""
    from fetalcns_core.sources import SourceError

    cache = FrameCache(cache_dir, settings)
    report = ExtractionReport(files=len(samples))

    def one(i: int) -> tuple[int, str, list[dict[str, Any]] | None, bool, str | None]:
        path = samples[i].path
        try:
            sha = cache.sha256(path)
            found = cache.lookup(sha)
            if found is not None:
                return i, sha, found, False, None
            return i, sha, cache.build(path, sha), True, None
        except (SourceError, OSError, ValueError) as exc:
            return i, "", None, False, str(exc)

    results: list[tuple[int, str, list[dict[str, Any]] | None, bool, str | None]] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for n, res in enumerate(pool.map(one, range(len(samples))), start=1):
            results.append(res)
            if on_progress is not None:
                on_progress(n, len(samples))
    cache.save_memo()
    items: list[FrameItem] = []
    for i, sha, records, decoded, error in results:
        if records is None:
            report.unreadable[samples[i].file] = error or "unreadable"
            log.warning("cannot read '%s': %s — it is left out of training", samples[i].file, error)
            continue
        report.sha256[samples[i].file] = sha
        report.decoded += decoded
        entry = cache.entry(sha)
        for rec in records:
            if not rec["usable"]:
                reason = rec.get("reason") or "unusable"
                report.unusable[reason] = report.unusable.get(reason, 0) + 1
                continue
            box = tuple(rec["box"]) if rec.get("box") else None
            items.append(
                FrameItem(i, int(rec["index"]), rec.get("time_s"), entry / rec["png"], box, rec["method"])
            )  # type: ignore[arg-type]
    report.frames = len(items)
    return items, report


def read_frame_image(path: Path) -> np.ndarray:
    """A cached frame as H x W x 3 uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cached frame '{path}' cannot be read: delete the frame cache folder and run again")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
