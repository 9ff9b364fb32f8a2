"""Open the inputs of an exam (still images, videos, DICOM files, folders) and stream their frames.

Every frame comes as RGB uint8 (H x W x 3) with its provenance: the file (path, sha256, kind, frame
count, frame rate), the frame index and its time. Videos and multi-frame DICOM files are streamed: only
the frames kept are decoded to pixels, and never all of them are held in memory.

Still images: PNG, JPEG, BMP, TIFF, 8- or 16-bit, grey, RGB, RGBA (composited on black), palette; EXIF
orientation is applied. Images of more than 8 bits are reduced to 8 bits by a shift that keeps the black
level and the relative brightness: the bit depth is taken from the largest value present (a 12-bit image
stored in 16 bits shifts by 4, a full 16-bit one by 8), so a dim image stays dim rather than being
stretched to the full range. (16-bit colour images are reduced by Pillow, which keeps the top 8 bits.)

Still images and videos are read here; DICOM files by ``fetalcns_core.dicom``; the error type and the
8-bit reduction live in ``fetalcns_core.source_base``. All three are used through this module.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fetalcns_core.dicom import iter_dicom, probe_dicom, read_dicom_frame, ultrasound_region
from fetalcns_core.exam import Frame, SourceFile
from fetalcns_core.source_base import CancelFn, SourceError, damaged, frame_time, to_8bit

__all__ = [
    "DEFAULT_EVERY",
    "SUPPORTED",
    "CancelFn",
    "SourceError",
    "count_frames",
    "expand_paths",
    "iter_frames",
    "probe",
    "read_frame",
    "sha256_file",
    "ultrasound_region",
]

log = logging.getLogger(__name__)

SUPPORTED: dict[str, str] = {
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"), "image"),
    **dict.fromkeys((".avi", ".mp4", ".m4v", ".mov", ".mkv", ".wmv", ".mpg", ".mpeg"), "video"),
    **dict.fromkeys((".dcm", ".dicom"), "dicom"),
}
DEFAULT_EVERY = 80  # the study kept every 80th frame of a video: frames 0, 80, 160 ...
_ASSUMED_FPS = 30.0  # for sampling by time when a video does not say its frame rate


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """The file's sha256 (hex), read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        before = os.fstat(fh.fileno())
        while block := fh.read(chunk):
            digest.update(block)
    result = digest.hexdigest()
    after = os.stat(path)
    if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns):  # unchanged meanwhile
        _HASHED[str(Path(path).resolve())] = (after.st_size, after.st_mtime_ns, result)
    return result


_HASHED: dict[str, tuple[int, int, str]] = {}  # path -> (size, mtime, sha256) of the last hashing


def _current_sha256(path: Path) -> str:
    """The file's sha256, hashed again only when its size or modification time changed."""
    st = path.stat()
    known = _HASHED.get(str(path.resolve()))
    if known is not None and known[:2] == (st.st_size, st.st_mtime_ns):
        return known[2]
    return sha256_file(path)


def _is_dicom(path: Path) -> bool:
    """A DICOM file (Part 10) has 'DICM' after a 128-byte preamble, whatever its name."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def _kind_of(path: Path) -> str | None:
    kind = SUPPORTED.get(path.suffix.lower())
    if kind is None and _is_dicom(path):
        return "dicom"
    return kind


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files to analyse: a folder becomes its supported files (recursive, sorted by path; DICOM files
    without an extension are recognised by their header); files named explicitly are kept even when
    unsupported, so that they fail with a clear reason."""
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = []
            for item in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in item.relative_to(path).parts):
                    continue  # hidden files and folders: thumbnails, caches, system files
                if _kind_of(item) is None:
                    log.info("ignoring '%s': not an image, video or DICOM file", item)
                    continue
                found.append(item)
            if not found:
                log.warning("folder '%s' holds no image, video or DICOM file", path)
        else:
            found = [path]
        for item in found:
            if item not in seen:
                seen.add(item)
                out.append(item)
    return out


# --------------------------------------------------------------------------- still images


def _pil_to_rgb(img: Image.Image) -> np.ndarray:
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        grey = to_8bit(np.asarray(img))
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)
        rgb = rgba[..., :3] * (rgba[..., 3:4] / 255.0)  # composited on black
        return np.ascontiguousarray(np.round(rgb).astype(np.uint8))
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def _read_image(path: Path) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                rgb = _pil_to_rgb(img)
    except FileNotFoundError:
        raise SourceError(f"cannot read '{path}': file not found — check the path") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        log.debug("image decode failed for %s: %s", path, exc)
        raise damaged(path) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise SourceError(
            f"cannot read image '{path.name}': it is too large ({exc}) — export it smaller"
        ) from exc
    if rgb.ndim != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise damaged(path)
    return rgb


# --------------------------------------------------------------------------- videos


class _Capture:
    """cv2.VideoCapture, released when the block ends (also on errors and on cancel)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cap = cv2.VideoCapture(str(path))

    def __enter__(self) -> cv2.VideoCapture:
        if not self.cap.isOpened():
            self.cap.release()
            raise SourceError(
                f"cannot read video '{self.path.name}': the file is damaged or its codec is not supported "
                "— convert it to MP4 (H.264) or export the frames as PNG"
            )
        return self.cap

    def __exit__(self, *exc: object) -> None:
        self.cap.release()


def _bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return np.ascontiguousarray(np.repeat(to_8bit(frame)[..., None], 3, axis=2))
    frame = to_8bit(frame)
    code = cv2.COLOR_BGRA2RGB if frame.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(frame, code)


def _probe_video(path: Path) -> tuple[int | None, float | None]:
    with _Capture(path) as cap:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        ok, frame = cap.read()
        if not ok or frame is None:
            raise SourceError(
                f"cannot read video '{path.name}': no frame could be decoded — the file is damaged or "
                "empty; convert it to MP4 (H.264) or export the frames as PNG"
            )
    return (count if count > 0 else None), (fps if 0.0 < fps < 1000.0 else None)


def _step(source: SourceFile, every: int | None, fps: float | None) -> int:
    """Keep every ``step``-th frame: ``every``, or the file's frame rate over ``fps`` frames per second."""
    if fps is not None:
        if fps <= 0:
            raise ValueError(f"frames per second to keep must be positive, got {fps}")
        rate = source.fps
        if not rate:
            log.warning(
                "'%s' does not give its frame rate: assuming %.0f fps", Path(source.path).name, _ASSUMED_FPS
            )
            rate = _ASSUMED_FPS
        return max(1, round(rate / fps))
    every = DEFAULT_EVERY if every is None else every
    if every < 1:
        raise ValueError(f"'every' must be 1 or more (every N-th frame is kept), got {every}")
    return int(every)


def _iter_video(source: SourceFile, step: int, cancel: CancelFn | None) -> Iterator[Frame]:
    path = Path(source.path)
    with _Capture(path) as cap:
        index = 0
        while True:
            if cancel is not None and cancel():
                log.info("reading '%s' cancelled at frame %d", path.name, index)
                return
            if not cap.grab():  # decodes without the copy to pixels: cheap for skipped frames
                break
            if index % step == 0:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    log.warning("'%s': frame %d cannot be decoded; stopping there", path.name, index)
                    break
                yield Frame(
                    image=_bgr_to_rgb(frame), source=source, index=index, time_s=frame_time(source, index)
                )
            index += 1
        if index == 0:
            raise SourceError(f"cannot read video '{path.name}': no frame could be decoded — re-export it")
        if source.n_frames is None:
            source.n_frames = index


def _count_video_frames(source: SourceFile) -> int:
    with _Capture(Path(source.path)) as cap:
        n = 0
        while cap.grab():
            n += 1
    source.n_frames = n
    return n


def _read_video_frame(source: SourceFile, index: int) -> Frame:
    path = Path(source.path)
    with _Capture(path) as cap:
        if index > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        pos = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
        if pos != index:  # the container cannot seek: read up to the frame
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            for _ in range(index):
                if not cap.grab():
                    break
        ok, frame = cap.read()
    if not ok or frame is None:
        raise SourceError(
            f"cannot read frame {index} of video '{path.name}': the video is shorter or damaged"
        )
    return Frame(image=_bgr_to_rgb(frame), source=source, index=index, time_s=frame_time(source, index))


# --------------------------------------------------------------------------- public API


def probe(path: str | os.PathLike[str]) -> SourceFile:
    """Check that a file can be read; its kind, sha256, frame count and frame rate. Raises SourceError."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"cannot read '{path}': file not found — check the path")
    if path.is_dir():
        raise SourceError(f"'{path}' is a folder: open it as an exam folder, or choose the files in it")
    kind = _kind_of(path)
    if kind is None:
        raise SourceError(
            f"cannot read '{path.name}': not a supported image, video or DICOM file "
            f"(supported: {', '.join(sorted(SUPPORTED))}, and DICOM files without an extension)"
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SourceError(
            f"cannot read '{path}': {exc.strerror or exc} — check the file's permissions"
        ) from exc
    if size == 0:
        raise SourceError(f"cannot read '{path.name}': the file is empty — copy or export it again")
    n_frames: int | None
    fps: float | None = None
    if kind == "image":
        _read_image(path)
        n_frames = 1
    elif kind == "video":
        n_frames, fps = _probe_video(path)
    else:
        n_frames, fps = probe_dicom(path)
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise SourceError(
            f"cannot read '{path}': {exc.strerror or exc} — check the file's permissions"
        ) from exc
    return SourceFile(path=str(path), sha256=digest, kind=kind, n_frames=n_frames, fps=fps)


def count_frames(source: SourceFile, every: int | None = DEFAULT_EVERY, fps: float | None = None) -> int:
    """How many frames ``iter_frames`` will yield with these settings."""
    if source.kind == "image":
        return 1
    step = _step(source, every, fps)
    n = source.n_frames
    if n is None and source.kind == "video":
        n = _count_video_frames(source)  # the container does not say: count by decoding
    return 0 if not n else math.ceil(n / step)


def iter_frames(
    source: SourceFile,
    every: int | None = DEFAULT_EVERY,
    fps: float | None = None,
    cancel: CancelFn | None = None,
) -> Iterator[Frame]:
    """Stream the frames to analyse: the image, or every ``every``-th frame of a video or multi-frame
    DICOM file (``fps``, frames per second to keep, overrides ``every``). Stops early when ``cancel()``
    is true; the file is closed in any case."""
    path = Path(source.path)
    if source.kind == "image":
        if cancel is None or not cancel():
            yield Frame(image=_read_image(path), source=source, index=0, time_s=None)
        return
    step = _step(source, every, fps)
    if source.kind == "video":
        yield from _iter_video(source, step, cancel)
    elif source.kind == "dicom":
        yield from iter_dicom(source, step, cancel)
    else:
        raise SourceError(f"cannot read '{path.name}': unknown kind '{source.kind}'")


def read_frame(source: SourceFile, index: int) -> Frame:
    """One frame again, by its index (to show or report a frame of a saved exam). A file that is no
    longer the one analysed (another sha256) is refused."""
    path = Path(source.path)
    if not path.exists():
        raise SourceError(
            f"cannot read '{path}': file not found — it was moved or deleted since the analysis"
        )
    if index < 0:
        raise SourceError(f"cannot read frame {index} of '{path.name}': frame indices start at 0")
    if source.sha256 and _current_sha256(path) != source.sha256:
        raise SourceError(
            f"'{path.name}' has changed since it was analysed (its sha256 differs): the saved results no "
            "longer describe it — analyse the file again"
        )
    if source.kind == "image":
        if index != 0:
            raise SourceError(f"'{path.name}' is a still image: it has no frame {index}")
        return Frame(image=_read_image(path), source=source, index=0, time_s=None)
    if source.kind == "video":
        return _read_video_frame(source, index)
    if source.kind == "dicom":
        return read_dicom_frame(source, index)
    raise SourceError(f"cannot read '{path.name}': unknown kind '{source.kind}'")
