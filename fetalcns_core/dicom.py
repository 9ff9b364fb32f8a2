"""Read DICOM files (Part 10): the header, the frame rate, the ultrasound region and the frames.

Multi-frame files are streamed with ``pydicom.pixels.iter_pixels`` on the kept indices only, so never
all frames are held in memory. Every frame comes as RGB uint8: YBR_FULL / YBR_FULL_422 are converted by
pydicom, palette colour through its lookup table, MONOCHROME1 is inverted and grey images of more than
8 bits are shifted by their BitsStored. RLE is decoded natively, JPEG / JPEG-LS / JPEG 2000 by the
installed pylibjpeg plugins; any other transfer syntax (e.g. MPEG-4/H.264) is refused by ``probe_dicom``
with a ``SourceError`` that names it. Frames carry the largest 2D region of
``SequenceOfUltrasoundRegions`` as their ``region_hint``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fetalcns_core.exam import Box, Frame, SourceFile
from fetalcns_core.source_base import CancelFn, SourceError, damaged, frame_time, to_8bit

log = logging.getLogger(__name__)


def _dicom_header(path: Path) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, AttributeError) as exc:
        raise damaged(path, "DICOM file") from exc


def _dicom_fps(ds: Any) -> float | None:
    """Frame rate from FrameTime (ms), CineRate or RecommendedDisplayFrameRate, when given."""
    try:
        frame_time_ms = float(ds.get("FrameTime") or 0)
        if frame_time_ms > 0:
            return 1000.0 / frame_time_ms
        for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
            rate = float(ds.get(keyword) or 0)
            if rate > 0:
                return rate
    except (TypeError, ValueError):
        pass
    return None


def _syntax(ds: Any) -> Any:
    meta = getattr(ds, "file_meta", None)
    return None if meta is None else meta.get("TransferSyntaxUID")


def _check_decodable(path: Path, ds: Any) -> None:
    from pydicom.pixels import get_decoder

    syntax = _syntax(ds)
    if syntax is None:
        return  # no file meta: pydicom reads it as implicit little endian, uncompressed
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        raise SourceError(
            f"cannot read DICOM file '{path.name}': its transfer syntax '{syntax.name}' ({syntax}) cannot "
            "be decoded here — export it uncompressed (or as JPEG/RLE) from the scanner or PACS, or install "
            "a decoder for it (pylibjpeg plugins, or gdcm)"
        )


def probe_dicom(path: Path) -> tuple[int, float | None]:
    """Frame count and frame rate of a DICOM file whose pixels can be decoded here; else SourceError."""
    ds = _dicom_header(path)
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        # stop_before_pixels hides it: look for the tag in the whole file
        import pydicom

        try:
            full = pydicom.dcmread(path, defer_size=256)
        except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged file
            raise damaged(path, "DICOM file") from exc
        if "PixelData" not in full:
            raise SourceError(
                f"cannot read DICOM file '{path.name}': it holds no image (a report or structured data?) or "
                "is damaged — export the images again"
            )
    _check_decodable(path, ds)
    n_frames = int(ds.get("NumberOfFrames") or 1)
    return max(1, n_frames), _dicom_fps(ds)


def _dicom_rgb(arr: np.ndarray, ds: Any) -> np.ndarray:
    """One decoded frame to RGB uint8 (pydicom has already turned YBR into RGB)."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
    if arr.ndim == 2:
        bits = int(ds.get("BitsStored") or 8)
        if arr.dtype.kind == "u" and bits > 8:  # the declared depth, not the largest value present
            arr = (arr.astype(np.int64) >> (bits - 8)).clip(0, 255).astype(np.uint8)
        grey = to_8bit(arr)
        if photometric == "MONOCHROME1":
            grey = 255 - grey  # MONOCHROME1: high values are dark
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    return np.ascontiguousarray(to_8bit(arr[..., :3]))


def _dicom_frame(source: SourceFile, ds: Any, index: int, arr: np.ndarray) -> Frame:
    return Frame(
        image=_dicom_rgb(arr, ds),
        source=source,
        index=index,
        time_s=frame_time(source, index) if int(ds.get("NumberOfFrames") or 1) > 1 else None,
        region_hint=ultrasound_region(ds.get("SequenceOfUltrasoundRegions")),
    )


def _decode_error(path: Path, ds: Any, exc: Exception) -> SourceError:
    syntax = _syntax(ds)
    name = f"'{syntax.name}'" if syntax is not None else "unknown"
    return SourceError(
        f"cannot decode the pixels of DICOM file '{path.name}' (transfer syntax {name}): {exc} — export it "
        "uncompressed from the scanner or PACS"
    )


def iter_dicom(source: SourceFile, step: int, cancel: CancelFn | None) -> Iterator[Frame]:
    """Every ``step``-th frame of a DICOM file, decoded one at a time; stops when ``cancel()`` is true."""
    from pydicom.pixels import iter_pixels

    path = Path(source.path)
    ds = _dicom_header(path)
    n = int(ds.get("NumberOfFrames") or 1)
    pixels = iter_pixels(path, indices=range(0, n, step))
    try:
        for index in range(0, n, step):
            if cancel is not None and cancel():
                log.info("reading '%s' cancelled at frame %d", path.name, index)
                return
            try:
                arr = next(pixels)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - decoders raise many kinds of error
                raise _decode_error(path, ds, exc) from exc
            yield _dicom_frame(source, ds, index, arr)
    finally:
        pixels.close()


def read_dicom_frame(source: SourceFile, index: int) -> Frame:
    """Frame ``index`` of a DICOM file, decoded alone."""
    from pydicom.pixels import pixel_array

    path = Path(source.path)
    ds = _dicom_header(path)
    n = int(ds.get("NumberOfFrames") or 1)
    if index >= n:
        raise SourceError(f"cannot read frame {index} of DICOM file '{path.name}': it has {n} frame(s)")
    try:
        arr = pixel_array(path, index=index if n > 1 else None)
    except Exception as exc:  # noqa: BLE001 - decoders raise many kinds of error
        raise _decode_error(path, ds, exc) from exc
    return _dicom_frame(source, ds, index, arr)


def ultrasound_region(regions: Any) -> Box | None:
    """The largest 2D region of a DICOM SequenceOfUltrasoundRegions, as a half-open Box."""
    best: Box | None = None
    for region in regions or []:
        try:
            box = Box(
                int(region.RegionLocationMinX0),
                int(region.RegionLocationMinY0),
                int(region.RegionLocationMaxX1) + 1,
                int(region.RegionLocationMaxY1) + 1,
            )
        except (AttributeError, TypeError, ValueError):
            continue
        spatial = getattr(region, "RegionSpatialFormat", 1)
        if spatial not in (None, 1) or box.width <= 0 or box.height <= 0:
            continue  # 1 = 2D tissue image; M-mode, spectral Doppler and waveforms are not
        if best is None or box.area > best.area:
            best = box
    return best
