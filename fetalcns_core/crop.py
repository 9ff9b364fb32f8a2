"""Find the ultrasound image in a frame, cut the frame to it and blank what is burned in around it.

A scanner screenshot shows the fetal image (a fan/sector, or a rectangle for a linear probe) on a black
screen with header panels (probe, depth, date and time), a grey-scale bar, a logo, depth ticks,
cross-hair markers and parameter text. The study trained and tested on the fetal image alone, so
everything else is removed before a frame reaches the network.

How the image region is found (``find_image_region``), on a copy reduced to about 500 px:

1. *Non-black* pixels: above the screen's black level (0, or up to 20 for limited-range video) plus 4.
   A block of the reduced copy is non-black only when all its pixels are, so the one-pixel black gap
   between a header panel and the fan survives the reduction.
2. A morphological opening removes thin structures: text strokes, depth ticks, cross-hair lines.
3. Connected components made mostly (>= 50 %) of *flat runs* (three equal grey levels in a row, across
   or down) are drawn panels, bars and logos; ultrasound speckle has few (<= 40 % even in smooth,
   dim images). Every other component of some size is image: the fan, and tissue cut off from it by
   black fluid. A large flat component (>= 30 % of the frame) is the fill around a rotated, exported
   image and counts as image too.
4. The convex hull of the image components is the image mask (a fan is convex; so is a rectangle).

When is a frame *already cropped* (method ``"full"``: nothing cut, nothing blanked)? When the region's
box covers >= 95 % of the frame; or >= 60 % of it while almost nothing is drawn outside the region:
under 1 % of the frame in panels and bright or coloured marks, and fewer than 10 character-sized bright
marks on black (a line of text has more). Measured on the real data: GE Voluson screens carry about 5 %
of graphics and 20-45 characters outside the fan, HC18 images with a burned-in cine bar 3.5 %; a screen
capture of a fan with only ticks around it (the cine loop) leaves a fan box under 55 % of the frame;
exported images (HC18 without a cine bar, FETAL_PLANES_DB) leave at most dark margins and a thin scale
bar: under 0.7 % and no text.

Inside the image, graphics are blanked too (``overlay_mask``, found by ``fetalcns_core.crop_overlays``
and re-exported here): colour marks and marker dots, ticks, text, dotted callipers, cross-hairs,
grey-scale bars and measurement panels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from fetalcns_core.crop_overlays import (
    BLACK,
    MARK_GREY,
    MIN_PANEL_AREA,
    PANEL_GREY,
    Pixels,
    check_image,
    flat_runs,
    overlay_mask,
    overlays,
)
from fetalcns_core.exam import Box

__all__ = [
    "CROP_MODES",
    "CropResult",
    "ImageRegion",
    "already_cropped",
    "auto_crop",
    "crop_frame",
    "find_image_region",
    "is_blank",
    "overlay_mask",
]

log = logging.getLogger(__name__)

CROP_MODES = ("auto", "none", "manual")

_PANEL_FLAT = 0.5  # share of flat-run pixels at or above which a component is a drawn panel
_LARGE_AREA = 0.3  # share of the frame above which a flat component is image fill, not a panel
_MIN_PIECE_AREA = 0.0005  # share of the frame a piece of image must cover to count
_MIN_IMAGE_AREA = 0.05  # share of the frame the largest piece of an image covers ...
_MIN_SPARSE_AREA = 0.015  # ... or all its pieces together, in a dark, sparse image
_FULL_BOX = 0.95  # box share at or above which the frame is taken as already cropped
_FULL_BOX_CLEAN = 0.6  # ... or above this when almost nothing is drawn outside the region
_CLEAN_OUTSIDE = 0.01  # "almost nothing": graphics outside the region, share of the frame ...
_TEXT_MARKS = 10  # ... and fewer marks of a character's size (a line of text has more)
_RECT_FILL = 0.95  # hull area / box area at or above which the region is a rectangle
_WORK_SIDE = 500  # the long side of the reduced copy the region is searched on
_BLANK_RANGE = 8  # a frame whose 1st..99th percentile grey range is under this is blank


@dataclass
class CropResult:
    """A frame cut to its ultrasound image.

    ``image`` is the frame cut to ``box`` with everything outside the image mask set to black;
    ``mask`` (same height and width as ``image``, bool, True = kept) is None when nothing was blanked.
    ``usable`` is False for a blank frame or one without an ultrasound image; ``reason`` says why.
    """

    box: Box
    image: np.ndarray
    mask: np.ndarray | None
    method: str  # auto-fan | auto-rect | full | dicom-region | manual | none
    usable: bool = True
    reason: str | None = None


@dataclass
class ImageRegion:
    """What ``find_image_region`` found."""

    mask: np.ndarray  # H x W bool, the convex image region
    box: Box  # its bounding box
    shape: str  # "fan" | "rect"
    box_share: float  # box area / frame area
    outside_graphics: float  # what is drawn outside the region, share of the frame
    outside_marks: int = 0  # bright marks of a character's size outside the region (letters, digits)


def _full_box(image: np.ndarray) -> Box:
    return Box(0, 0, image.shape[1], image.shape[0])


def is_blank(image: np.ndarray) -> bool:
    """A frame with (nearly) nothing in it: one grey level, or a few levels of noise."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[::2, ::2]
    lo, hi = np.percentile(grey, (1, 99))
    return bool(hi - lo < _BLANK_RANGE)


def _reduce(px: Pixels) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The frame reduced by f: per block the share of flat runs, of marks, the mean grey (0..255 each),
    and whether all of the block is non-black."""
    grey = px.grey
    h, w = grey.shape
    maps = [
        flat_runs(grey).view(np.uint8) * np.uint8(255),
        ((grey >= MARK_GREY) | px.colour).view(np.uint8) * np.uint8(255),
        grey,
        (grey > px.black + BLACK).view(np.uint8) * np.uint8(255),
    ]
    f = max(1, int(round(max(h, w) / _WORK_SIDE)))
    if f > 1:
        hs, ws = h // f, w // f
        maps = [cv2.resize(m[: hs * f, : ws * f], (ws, hs), interpolation=cv2.INTER_AREA) for m in maps]
    flat, marks, mean_grey, nonblack = maps
    return f, flat, marks, mean_grey, nonblack == 255


def _find_region(px: Pixels) -> ImageRegion | None:
    h, w = px.grey.shape
    f, flat, marks, mean_grey, nonblack = _reduce(px)
    k = max(3, int(round(min(h, w) / 110 / f)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    opened = cv2.morphologyEx(nonblack.view(np.uint8), cv2.MORPH_OPEN, kernel)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if n <= 1:
        return None
    small_area = labels.size
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    areas[0] = 0
    per_px = np.maximum(areas, 1) * 255.0
    flat_share = np.bincount(labels.ravel(), weights=flat.ravel(), minlength=n) / per_px
    panel = (flat_share >= _PANEL_FLAT) & (areas < _LARGE_AREA * small_area)
    keep = ~panel & (areas >= _MIN_PIECE_AREA * small_area)
    panel[0] = keep[0] = False
    # an image is one large piece or, in a dark, sparse image (bright structures on black), many
    if not keep.any() or (
        areas[keep].max() < _MIN_IMAGE_AREA * small_area and areas[keep].sum() < _MIN_SPARSE_AREA * small_area
    ):
        return None
    contours, _ = cv2.findContours(keep[labels].view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(np.concatenate(contours))
    inside = np.zeros(labels.shape, np.uint8)
    cv2.fillConvexPoly(inside, hull, 1)
    # back to frame pixels: a reduced pixel (x, y) covers x*f .. x*f + f - 1
    hull_full = np.round(hull.astype(np.float64) * f + (f - 1) / 2.0).astype(np.int32)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, hull_full, 1)
    x, y, bw, bh = cv2.boundingRect(hull_full)
    box = Box(x, y, x + bw, y + bh).clip(w, h)
    shape = "rect" if float(mask.sum()) >= _RECT_FILL * box.area else "fan"
    if panel.any():  # a grey-scale bar or logo beside a fan can fall inside its hull: never image
        drawn = cv2.dilate(panel[labels].view(np.uint8), np.ones((3, 3), np.uint8))
        drawn = cv2.resize(drawn, (labels.shape[1] * f, labels.shape[0] * f), interpolation=cv2.INTER_NEAREST)
        mask[: drawn.shape[0], : drawn.shape[1]] &= 1 - drawn
    # drawn outside the image: visible panels (whole area) and marks off the image's pieces
    grey_mean = np.bincount(labels.ravel(), weights=mean_grey.ravel(), minlength=n) / per_px * 255.0
    shown = panel & (areas >= MIN_PANEL_AREA * small_area) & (grey_mean >= PANEL_GREY)
    piece = ~panel & (areas >= _MIN_PIECE_AREA * small_area)
    piece[0] = False
    free = (inside == 0) & ~(piece | panel)[labels]
    graphics = (float(areas[shown].sum()) + float(marks[free].sum()) / 255.0) / small_area
    return ImageRegion(mask > 0, box, shape, box.area / float(h * w), graphics, _count_marks(px, free, f))


def _count_marks(px: Pixels, free: np.ndarray, f: int) -> int:
    """Bright marks of a character's size in the ``free`` part (reduced) of the frame: text."""
    h, w = px.grey.shape
    free_px = cv2.resize(
        free.view(np.uint8), (free.shape[1] * f, free.shape[0] * f), interpolation=cv2.INTER_NEAREST
    )
    outside = np.zeros((h, w), np.uint8)
    outside[: free_px.shape[0], : free_px.shape[1]] = free_px
    black = (px.grey <= px.black + BLACK).view(np.uint8)
    on_black = cv2.boxFilter(black, cv2.CV_32F, (9, 9), borderType=cv2.BORDER_REPLICATE) >= 0.5
    bright = ((px.grey >= MARK_GREY) | px.colour) & on_black  # text is drawn on the screen's black
    bright = bright.view(np.uint8) & outside
    if not bright.any():
        return 0
    n, _, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
    area, height = stats[1:, cv2.CC_STAT_AREA], stats[1:, cv2.CC_STAT_HEIGHT]
    return int(np.count_nonzero((area >= 8) & (area <= 0.002 * h * w) & (height >= 5) & (height <= 0.08 * h)))


def find_image_region(image: np.ndarray) -> ImageRegion | None:
    """The ultrasound image region of a frame (see the module's notes), or None when there is none."""
    return _find_region(Pixels.of(check_image(image)))


def already_cropped(region: ImageRegion) -> bool:
    """True when the frame is an exported image, not a screen (see the module's notes)."""
    if region.box_share >= _FULL_BOX:
        return True
    return (
        region.box_share >= _FULL_BOX_CLEAN
        and region.outside_graphics < _CLEAN_OUTSIDE
        and region.outside_marks < _TEXT_MARKS
    )


def _cut_and_blank(
    image: np.ndarray, px: Pixels, box: Box, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The image cut to ``box`` with pixels outside ``keep`` (box-sized) or on graphics set to black."""
    keep = keep & ~overlays(px.sub(box), image.shape[0] * image.shape[1])
    out = image[box.y0 : box.y1, box.x0 : box.x1].copy()
    out[~keep] = 0
    return out, keep


def auto_crop(image: np.ndarray, region_hint: Box | None = None) -> CropResult:
    """Find the ultrasound image and cut the frame to it (or say why the frame cannot be used)."""
    image = check_image(image)
    h, w = image.shape[:2]
    full = _full_box(image)
    if is_blank(image):
        return CropResult(full, image.copy(), None, "full", usable=False, reason="blank frame")
    px = Pixels.of(image)
    if region_hint is not None:
        hint = region_hint.clip(w, h)
        if hint.width > 0 and hint.height > 0:
            return _crop_to_hint(image, px, hint)
        log.warning(
            "ignoring the ultrasound region %s: it lies outside the %dx%d frame", region_hint.as_list(), w, h
        )
    region = _find_region(px)
    if region is None:
        return CropResult(full, image.copy(), None, "full", usable=False, reason="no ultrasound image found")
    if already_cropped(region):
        return CropResult(full, image.copy(), None, "full")
    box = region.box
    out, keep = _cut_and_blank(image, px, box, region.mask[box.y0 : box.y1, box.x0 : box.x1])
    return CropResult(box, out, keep, f"auto-{region.shape}")


def _crop_to_hint(image: np.ndarray, px: Pixels, hint: Box) -> CropResult:
    """A DICOM ultrasound region is the crop. Inside it, what lies outside the image found there is
    blanked, but only when that image does not fill the region (then the rest is screen, not tissue);
    graphics inside the image are blanked in any case."""
    keep = np.ones((hint.height, hint.width), bool)
    if min(hint.width, hint.height) >= 32:
        region = _find_region(px.sub(hint))
        if region is not None and not already_cropped(region):
            keep = region.mask
    out, keep = _cut_and_blank(image, px, hint, keep)
    return CropResult(hint, out, None if keep.all() else keep, "dicom-region")


def crop_frame(
    image: np.ndarray,
    mode: str = "auto",
    manual_box: Box | None = None,
    region_hint: Box | None = None,
) -> CropResult:
    """Crop a frame: ``auto`` (find the image), ``manual`` (``manual_box``) or ``none`` (whole frame).

    A manual box is clipped to the frame; a box that is empty after clipping is an error. A blank frame
    is unusable in every mode.
    """
    image = check_image(image)
    h, w = image.shape[:2]
    if mode == "auto":
        return auto_crop(image, region_hint=region_hint)
    if mode == "none":
        box = _full_box(image)
    elif mode == "manual":
        if manual_box is None:
            raise ValueError("manual cropping needs a box (x0, y0, x1, y1): draw one, or crop automatically")
        box = manual_box.clip(w, h)
        if box.width <= 0 or box.height <= 0:
            raise ValueError(
                f"the manual crop box {manual_box.as_list()} is empty or lies outside the {w}x{h} frame: "
                "draw a box over the ultrasound image"
            )
    else:
        raise ValueError(f"unknown crop mode '{mode}': use one of {', '.join(CROP_MODES)}")
    cut = image[box.y0 : box.y1, box.x0 : box.x1].copy()
    blank = is_blank(cut) if min(cut.shape[:2]) >= 2 else True
    return CropResult(box, cut, None, mode, usable=not blank, reason="blank frame" if blank else None)
