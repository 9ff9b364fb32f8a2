"""Find what is burned into an ultrasound image: marks, text, callipers, cross-hairs, bars and panels.

Graphics inside the image are blanked before a frame reaches the network (``overlay_mask``): small
colour marks and marker dots, bright marks on screen black or exactly flat ones on dark tissue (ticks,
text, dotted callipers), thin vertical lines (cross-hairs), grey-scale bars and flat panels of one grey
level holding text (measurement boxes). Marks drawn over bright tissue are not found.

``fetalcns_core.crop`` finds the image region with the same per-pixel measures (``Pixels``),
``flat_runs`` and the thresholds named without a leading underscore, and re-exports ``overlay_mask``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fetalcns_core.exam import Box

_MAX_BLACK = 20  # the darkest grey a screen's black may have (video in limited range: 16)
BLACK = 4  # grey levels above the screen's black that still count as background
MIN_PANEL_AREA = 0.001  # a panel smaller than this share of the frame is not counted as drawn
PANEL_GREY = 24  # ... nor one darker than this (dim, smooth tissue at a fan's edge)
MARK_GREY = 100  # marks (text, ticks, lines) are bright ...
_MARK_SAT, _MARK_VALUE = 130, 80  # ... or coloured
_TINT_SAT, _SPOT_CONTRAST = 60, 150  # a marker dot: this saturated, this much above its surroundings
_MAX_MARK_AREA = 0.005  # a colour mark is smaller than this share of the frame (Doppler is larger)
_ON_BLACK = 0.65  # share of screen black around a bright pixel that makes it a mark ...
_DARK_AROUND = 40  # ... or the mean grey around a bright, exactly flat one
_PANEL_BOX_FILL = 0.45  # a measurement panel fills this much of its box ...
_PANEL_ONE_LEVEL = 0.4  # ... and this share of it is one grey level
_LINE_LENGTH = 0.04  # a drawn vertical line is at least this share of the frame's height long ...
_LINE_CONTRAST = 60  # ... and this much brighter than the pixels 3 columns to either side
_BAR_LENGTH = 0.1  # a grey-scale bar is at least this share of the frame's height tall ...
_BAR_WIDTH = 0.03  # ... and at most this share of its width wide
_BAR_RANGE = 100  # ... and runs through at least this many grey levels
_MAX_PANEL = 0.05  # a measurement panel is at most this share of the frame ...
_TEXT_CONTRAST, _PANEL_TEXT = 100, 0.03  # ... and holds text: this share of it this far from its level
_SMOOTH_IMAGE = 0.3  # share of flat-run pixels above which an image is too smooth to find panels in


@dataclass
class Pixels:
    """The per-pixel measures every step uses, computed once."""

    grey: np.ndarray
    colour: np.ndarray  # bool: saturated colour
    tinted: np.ndarray  # bool: some colour (a pale marker after video chroma subsampling)
    black: int  # the screen's black level

    @classmethod
    def of(cls, image: np.ndarray) -> Pixels:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        colour = (hsv[..., 1] >= _MARK_SAT) & (hsv[..., 2] >= _MARK_VALUE)
        tinted = hsv[..., 1] >= _TINT_SAT
        sample = grey[::2, ::2]
        hist = np.bincount(sample.ravel(), minlength=256)[: _MAX_BLACK + 1]
        level = int(hist.argmax())  # the most common dark level, when it is common
        black = level if hist[level] >= 0.05 * sample.size else 0
        return cls(grey, colour, tinted, black)

    def sub(self, box: Box) -> Pixels:
        s = np.s_[box.y0 : box.y1, box.x0 : box.x1]
        return Pixels(self.grey[s], self.colour[s], self.tinted[s], self.black)


def check_image(image: np.ndarray) -> np.ndarray:
    """The image itself when it is an H x W x 3 uint8 array of at least 8 x 8 pixels; else ValueError."""
    shape = getattr(image, "shape", None)
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"crop expects an H x W x 3 uint8 RGB image, got {getattr(image, 'dtype', '')} {shape}"
        )
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ValueError(f"an image of {image.shape[1]} x {image.shape[0]} pixels is too small to crop")
    return image


def flat_runs(g: np.ndarray) -> np.ndarray:
    """Pixels inside a run of three equal grey levels, across or down (drawn graphics are made of them)."""
    runs = np.zeros(g.shape, bool)
    runs[:, 1:-1] = (g[:, 1:-1] == g[:, :-2]) & (g[:, 1:-1] == g[:, 2:])
    runs[1:-1, :] |= (g[1:-1, :] == g[:-2, :]) & (g[1:-1, :] == g[2:, :])
    return runs


def _flat_panels(g: np.ndarray, black: int) -> np.ndarray:
    """Rectangles mostly of one exact grey level (with text in them): uint8 mask of their boxes."""
    h, w = g.shape
    flat = np.zeros((h, w), bool)  # equal to all four neighbours: panel interiors, seldom tissue
    c = g[1:-1, 1:-1]
    flat[1:-1, 1:-1] = (c == g[1:-1, :-2]) & (c == g[1:-1, 2:]) & (c == g[:-2, 1:-1]) & (c == g[2:, 1:-1])
    flat &= (g > black + BLACK) & (g < 250)
    out = np.zeros((h, w), np.uint8)
    if flat.sum() < MIN_PANEL_AREA * h * w * _PANEL_ONE_LEVEL:
        return out
    closed = cv2.morphologyEx(flat.view(np.uint8), cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    for i in np.nonzero(stats[:, cv2.CC_STAT_AREA] >= MIN_PANEL_AREA * h * w)[0][1:] if n > 1 else []:
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if area < _PANEL_BOX_FILL * bw * bh or min(bw, bh) < 8:
            continue
        values = g[y : y + bh, x : x + bw][labels[y : y + bh, x : x + bw] == i]
        counts = np.bincount(values, minlength=256)
        level = int(counts.argmax())
        if counts[level] < _PANEL_ONE_LEVEL * values.size or level < PANEL_GREY or area > _MAX_PANEL * h * w:
            continue  # not one level, a dark fill, or the size of a screen
        # the panel with the text it encloses: the component with its holes filled
        part = (labels[y : y + bh, x : x + bw] == i).view(np.uint8)
        contours, _ = cv2.findContours(part, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(part, contours, -1, 1, thickness=cv2.FILLED)
        text = np.abs(g[y : y + bh, x : x + bw].astype(np.int16) - level) >= _TEXT_CONTRAST
        if text[part > 0].mean() >= _PANEL_TEXT:
            out |= _panel_extent(g, level, Box(x, y, x + bw, y + bh))
    return cv2.dilate(out, np.ones((5, 5), np.uint8))  # the rim, where a pixel has outside neighbours


def _panel_extent(g: np.ndarray, level: int, core: Box) -> np.ndarray:
    """The whole panel around ``core``: its background level runs between the letters to its edges,
    so the box of the connected pixels of that exact level is the panel (unless that spreads far)."""
    h, w = g.shape
    m = max(core.width, core.height)
    win = Box(core.x0 - m, core.y0 - m, core.x1 + m, core.y1 + m).clip(w, h)
    same = (g[win.y0 : win.y1, win.x0 : win.x1] == level).view(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(same, connectivity=8)
    seen = np.unique(labels[core.y0 - win.y0 : core.y1 - win.y0, core.x0 - win.x0 : core.x1 - win.x0])
    seen = seen[(seen > 0) & (stats[seen, cv2.CC_STAT_AREA] >= 0.2 * stats[seen, cv2.CC_STAT_AREA].max())]
    x0, y0, x1, y1 = core.x0, core.y0, core.x1, core.y1
    if seen.size:
        gx0, gy0 = int(stats[seen, 0].min()) + win.x0, int(stats[seen, 1].min()) + win.y0
        gx1 = int((stats[seen, 0] + stats[seen, 2]).max()) + win.x0
        gy1 = int((stats[seen, 1] + stats[seen, 3]).max()) + win.y0
        if (gx1 - gx0) * (gy1 - gy0) <= 2 * core.area:
            x0, y0, x1, y1 = min(x0, gx0), min(y0, gy0), max(x1, gx1), max(y1, gy1)
    out = np.zeros((h, w), np.uint8)
    out[y0:y1, x0:x1] = 1
    return out


def overlays(px: Pixels, frame_area: int) -> np.ndarray:
    """Burned-in graphics (bool mask) in ``px``, part of a frame of ``frame_area`` pixels."""
    grey = px.grey
    h, w = grey.shape
    out = np.zeros((h, w), np.uint8)
    colour = px.colour.view(np.uint8)
    n_colour = int(np.count_nonzero(colour))
    if n_colour > _MAX_MARK_AREA * frame_area:  # some of it may be a colour-Doppler box: keep those
        n, labels, stats, _ = cv2.connectedComponentsWithStats(colour, connectivity=8)
        small = stats[:, cv2.CC_STAT_AREA] <= _MAX_MARK_AREA * frame_area
        small[0] = False
        colour = small[labels].view(np.uint8)
    if n_colour:
        out |= cv2.dilate(colour, np.ones((5, 5), np.uint8))
    bright = grey >= MARK_GREY
    if bright.any():
        black = (grey <= px.black + BLACK).view(np.uint8)
        around = cv2.boxFilter(black, cv2.CV_32F, (9, 9), borderType=cv2.BORDER_REPLICATE)
        on_black = (bright & (around >= _ON_BLACK)).view(np.uint8)
        if on_black.any():
            out |= on_black | (cv2.dilate(on_black, np.ones((3, 3), np.uint8)) & (1 - black))
    out |= _vertical_lines(grey)
    # marker dots: a few pixels far brighter than all around them, with some colour
    k7 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    spots = (cv2.morphologyEx(grey, cv2.MORPH_TOPHAT, k7) >= _SPOT_CONTRAST) & px.tinted
    if spots.any():
        out |= cv2.dilate(spots.view(np.uint8), np.ones((5, 5), np.uint8))
    # panels and bars are told from tissue by exactly equal grey levels: not in an image so smooth (or
    # upscaled) that its own pixels often are
    nonblack = grey > px.black + BLACK
    runs = flat_runs(grey)
    if nonblack.any() and runs[nonblack].mean() < _SMOOTH_IMAGE:
        # ticks over dim tissue at a fan's edge: bright, exactly flat, in dark surroundings (not
        # clipped white, which a strong echo can be)
        dark = cv2.boxFilter(grey, cv2.CV_32F, (9, 9), borderType=cv2.BORDER_REPLICATE) <= _DARK_AROUND
        ticks = (bright & runs & dark & (grey < 250)).view(np.uint8)
        out |= cv2.dilate(ticks, np.ones((3, 3), np.uint8))
        out |= _flat_panels(grey, px.black)
        out |= _scale_bars(grey, px.black)
    return out > 0


def _scale_bars(grey: np.ndarray, black: int) -> np.ndarray:
    """Grey-scale bars: a tall stack of rows that are each exactly constant over five pixels or more.

    Scan-converted tissue has short constant runs here and there, never a tall aligned stack of them.
    """
    h, w = grey.shape
    g = grey
    run = np.zeros((h, w), bool)
    run[:, 2:-2] = (g[:, 2:-2] == g[:, :-4]) & (g[:, 2:-2] == g[:, 1:-3]) & (g[:, 2:-2] == g[:, 3:-1])
    run[:, 2:-2] &= g[:, 2:-2] == g[:, 4:]
    run &= g > black + BLACK
    length = max(20, int(round(_BAR_LENGTH * h)))
    if run.sum() < 5 * length:
        return np.zeros((h, w), np.uint8)
    bars = cv2.morphologyEx(run.view(np.uint8), cv2.MORPH_OPEN, np.ones((length, 1), np.uint8))
    out = np.zeros((h, w), np.uint8)
    if not bars.any():
        return out
    bx, by, bw, bh = cv2.boundingRect(bars)  # label only where there are any
    n, labels, stats, _ = cv2.connectedComponentsWithStats(bars[by : by + bh, bx : bx + bw], connectivity=8)
    for i in range(1, n):
        x, y, cw, ch, _area = (int(v) for v in stats[i])
        if cw > max(16, _BAR_WIDTH * w):
            continue  # a wide flat area is image fill
        part = labels[y : y + ch, x : x + cw] == i
        levels = g[by + y : by + y + ch, bx + x : bx + x + cw][part]
        if int(levels.max()) - int(levels.min()) >= _BAR_RANGE:  # a scale runs through many grey levels
            out[by + y : by + y + ch, bx + x : bx + x + cw] |= part.view(np.uint8)
    return cv2.dilate(out, np.ones((3, 5), np.uint8))


def _vertical_lines(grey: np.ndarray) -> np.ndarray:
    """Thin vertical lines much brighter than both sides (cross-hairs, scan lines drawn over the image).

    Only vertical ones: a bright horizontal line is a strong reflector across the beam, i.e. anatomy.
    """
    h, w = grey.shape
    length = max(15, int(round(_LINE_LENGTH * h)))
    g = grey.astype(np.int16)
    sides = np.maximum(np.roll(g, 3, axis=1), np.roll(g, -3, axis=1))
    line = ((g - sides) >= _LINE_CONTRAST).view(np.uint8)
    if line.sum() < length:
        return np.zeros((h, w), np.uint8)
    line = cv2.morphologyEx(line, cv2.MORPH_OPEN, np.ones((length, 1), np.uint8))
    return cv2.dilate(line, np.ones((3, 5), np.uint8))


def overlay_mask(image: np.ndarray, within: np.ndarray | None = None) -> np.ndarray:
    """Burned-in graphics inside an image region: pixels to blank (bool, frame shape).

    Small saturated colour marks (callipers, cross-hair centres, badges; a colour-Doppler box is large
    and is kept: it is image content); bright marks whose surroundings are mostly screen black (ticks,
    text, cross-hair tips); flat panels of one grey level holding measurement text (speckle never is).
    ``within`` limits the result (bool, frame shape).
    """
    image = check_image(image)
    mask = overlays(Pixels.of(image), image.shape[0] * image.shape[1])
    return mask & within if within is not None else mask
