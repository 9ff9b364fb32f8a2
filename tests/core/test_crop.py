"""Cropping: the ultrasound image is found and kept, burned-in text and graphics are removed, exported
images are left whole, and a manual box or a DICOM region overrides the search."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from fetalcns_core.crop import CropResult, auto_crop, crop_frame, find_image_region
from fetalcns_core.exam import Box
from tests.core.synthetic import fan_screen, speckle

# --------------------------------------------------------------------------- helpers


def kept_share(result: CropResult, hand: Box) -> float:
    """Intersection of the crop box with a hand-measured box, over the hand box's area."""
    b = result.box
    inter = Box(max(b.x0, hand.x0), max(b.y0, hand.y0), min(b.x1, hand.x1), min(b.y1, hand.y1))
    return inter.area / hand.area


def surviving(result: CropResult, region: Box, frame: np.ndarray, min_grey: int = 1) -> int:
    """How many pixels of ``region`` (frame coordinates) that were at least ``min_grey`` in the frame
    are still non-black in the crop's output."""
    b = result.box
    x0, y0 = max(region.x0, b.x0), max(region.y0, b.y0)
    x1, y1 = min(region.x1, b.x1), min(region.y1, b.y1)
    if x1 <= x0 or y1 <= y0:
        return 0
    out = result.image[y0 - b.y0 : y1 - b.y0, x0 - b.x0 : x1 - b.x0].max(axis=2)
    src = frame[y0:y1, x0:x1].max(axis=2)
    return int(np.count_nonzero((out > 0) & (src >= min_grey)))


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def cine_frame(path: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    try:
        for _ in range(index + 1):
            ok, frame = cap.read()
            assert ok
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


# --------------------------------------------------------------------------- synthetic screens


@pytest.mark.parametrize("shape", ["fan", "rect"])
def test_synthetic_screen_keeps_the_image_and_removes_text_and_graphics(shape: str) -> None:
    screen = fan_screen(shape=shape, seed=3)
    result = auto_crop(screen.image)
    assert result.usable and result.method == f"auto-{shape}"
    ys, xs = np.nonzero(screen.image_mask)
    truth = Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    assert kept_share(result, truth) >= 0.97
    assert result.box.area <= 1.05 * truth.area
    # the output, put back into the frame: no text or graphics pixel survives
    back = np.zeros(screen.image.shape[:2], bool)
    b = result.box
    back[b.y0 : b.y1, b.x0 : b.x1] = result.image.max(axis=2) > 0
    assert not (back & screen.text_mask).any()
    assert not (back & screen.graphics_mask).any()
    # and the image itself is kept, apart from its rim
    inner = cv2.erode(screen.image_mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert (back[inner]).mean() >= 0.99
    assert result.mask is not None and result.mask.shape == result.image.shape[:2]


def test_a_coloured_marker_inside_the_image_is_blanked() -> None:
    screen = fan_screen(seed=1)
    image = screen.image.copy()
    cy, cx = 300, 556
    cv2.drawMarker(image, (cx, cy), (255, 255, 0), cv2.MARKER_CROSS, 12, 2)
    result = auto_crop(image)
    b = result.box
    patch = result.image[cy - 6 - b.y0 : cy + 7 - b.y0, cx - 6 - b.x0 : cx + 7 - b.x0]
    rgb = patch.astype(int)
    assert not ((rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 80)).any()


def test_an_exported_image_is_kept_whole() -> None:
    tex = speckle(540, 800, seed=5)
    image = np.repeat(tex[..., None], 3, axis=2)
    result = auto_crop(image)
    assert result.method == "full" and result.usable
    assert result.box == Box(0, 0, 800, 540)
    assert np.array_equal(result.image, image)
    assert result.mask is None


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((480, 640, 3), np.uint8),
        np.full((480, 640, 3), 128, np.uint8),
        np.random.default_rng(0).integers(0, 4, (480, 640, 3)).astype(np.uint8),
    ],
    ids=["black", "grey", "faint-noise"],
)
def test_a_blank_frame_is_unusable(image: np.ndarray) -> None:
    for mode in ("auto", "none"):
        result = crop_frame(image, mode=mode)
        assert not result.usable and result.reason == "blank frame"
        assert result.box == Box(0, 0, 640, 480)


def test_a_frame_of_text_only_has_no_ultrasound_image() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    for row in range(40, 440, 30):
        cv2.putText(
            image, "Patient ID 0042 GA 20w3d", (20, row), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255,) * 3, 1
        )
    cv2.rectangle(image, (500, 50), (600, 90), (60, 60, 60), -1)
    result = auto_crop(image)
    assert not result.usable and result.reason == "no ultrasound image found"
    assert result.box == Box(0, 0, 640, 480)


# --------------------------------------------------------------------------- modes and overrides


def test_manual_box_overrides_and_is_clipped() -> None:
    screen = fan_screen(seed=2)
    result = crop_frame(screen.image, mode="manual", manual_box=Box(500, 100, 5000, 400))
    assert result.method == "manual" and result.box == Box(500, 100, 1112, 400)
    assert np.array_equal(result.image, screen.image[100:400, 500:1112])


@pytest.mark.parametrize("box", [None, Box(2000, 10, 3000, 50), Box(10, 10, 10, 50), Box(50, 50, 20, 20)])
def test_an_empty_or_missing_manual_box_is_a_clear_error(box: Box | None) -> None:
    with pytest.raises(ValueError, match="box"):
        crop_frame(fan_screen().image, mode="manual", manual_box=box)


def test_mode_none_keeps_the_whole_frame_and_unknown_modes_are_refused() -> None:
    screen = fan_screen(seed=4)
    result = crop_frame(screen.image, mode="none")
    assert result.method == "none" and result.box == Box(0, 0, 1112, 614) and result.usable
    assert np.array_equal(result.image, screen.image)
    with pytest.raises(ValueError, match="unknown crop mode"):
        crop_frame(screen.image, mode="smart")


def test_a_dicom_region_is_the_crop_and_graphics_inside_it_are_blanked() -> None:
    screen = fan_screen(seed=6)
    hint = Box(100, 20, 1000, 600)
    result = crop_frame(screen.image, region_hint=hint)
    assert result.method == "dicom-region" and result.box == hint
    back = np.zeros(screen.image.shape[:2], bool)
    back[hint.y0 : hint.y1, hint.x0 : hint.x1] = result.image.max(axis=2) > 0
    assert not (back & (screen.text_mask | screen.graphics_mask)).any()
    assert back[screen.image_mask].mean() >= 0.97


def test_a_dicom_region_outside_the_frame_is_ignored() -> None:
    screen = fan_screen(seed=7)
    result = crop_frame(screen.image, region_hint=Box(3000, 3000, 3100, 3100))
    assert result.method == "auto-fan"


def test_a_dicom_region_over_an_exported_image_keeps_it_whole() -> None:
    image = np.repeat(speckle(400, 600, seed=8)[..., None], 3, axis=2)
    result = crop_frame(image, region_hint=Box(0, 0, 600, 400))
    assert result.method == "dicom-region" and result.mask is None
    assert np.array_equal(result.image, image)


def test_bad_input_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="RGB"):
        auto_crop(np.zeros((100, 100), np.uint8))
    with pytest.raises(ValueError, match="too small"):
        auto_crop(np.zeros((4, 4, 3), np.uint8))


def test_auto_crop_is_fast_enough_for_a_video_frame() -> None:
    image = fan_screen(height=614, width=1112, seed=9).image
    auto_crop(image)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        auto_crop(image)
        times.append(time.perf_counter() - start)
    assert min(times) < 0.05, f"auto_crop took {min(times) * 1000:.1f} ms on a 1112x614 frame"


# --------------------------------------------------------------------------- real frames

# Fan boxes measured by hand on zoomed views with a 10-pixel grid (x0, y0, x1, y1, half-open).
HAND_FAN = {
    "4CH.png": Box(60, 74, 899, 733),
    "ABDOMINAL.png": Box(50, 74, 893, 733),
    "RVOT.png": Box(55, 74, 906, 733),
}
# The GE header: probe, depth, frequency, MI/TIs, date and time, logo; all above row 73.
HEADER = Box(0, 12, 975, 73)
# The parameter text at the right of 3VV ("Cardiac" ... "SRI II 5 / CRI 1"), on black beside the fan.
SIDE_TEXT_3VV = [Box(880, 76, 960, 135), Box(846, 140, 960, 192)]
HAND_CINE = {0: Box(275, 63, 837, 580), 40: Box(271, 0, 840, 600)}


@pytest.mark.parametrize("name", sorted(HAND_FAN))
def test_scanner_frame_keeps_the_fan_and_drops_the_header(shared_data: Path, name: str) -> None:
    frame = read_rgb(shared_data / "scanner-frames" / name)
    result = auto_crop(frame)
    assert result.usable and result.method.startswith("auto-")
    assert kept_share(result, HAND_FAN[name]) >= 0.95
    assert result.box.area <= 1.1 * HAND_FAN[name].area
    assert surviving(result, HEADER, frame) == 0


def test_all_scanner_frames_lose_their_header_and_side_text(shared_data: Path) -> None:
    for path in sorted((shared_data / "scanner-frames").glob("*.png")):
        frame = read_rgb(path)
        result = auto_crop(frame)
        assert result.usable and result.method.startswith("auto-"), path.name
        assert surviving(result, HEADER, frame) == 0, path.name
        assert result.box.area >= 0.6 * 975 * 735, path.name
    frame = read_rgb(shared_data / "scanner-frames" / "3VV.png")
    result = auto_crop(frame)
    for box in SIDE_TEXT_3VV:
        assert surviving(result, box, frame, min_grey=100) == 0


@pytest.mark.parametrize("index", sorted(HAND_CINE))
def test_cine_frame_is_cut_to_its_fan(shared_data: Path, index: int) -> None:
    frame = cine_frame(shared_data / "video" / "fetal-echo-cine.avi", index)
    result = auto_crop(frame)
    assert result.usable and result.method == "auto-fan"
    hand = HAND_CINE[index]
    assert kept_share(result, hand) >= 0.95
    assert result.box.area <= 1.1 * hand.area
    # the orange cross-hair arms and the depth ticks lie outside the fan: gone
    assert result.box.x0 > 80 and result.box.x1 < 1030


HC18_SAMPLE = [
    "000_HC.png",
    "001_HC.png",
    "042_HC.png",
    "060_HC.png",
    "371_HC.png",
    "754_HC.png",
    "799_HC.png",
]


@pytest.mark.parametrize("name", HC18_SAMPLE)
def test_hc18_images_are_left_whole(shared_data: Path, name: str) -> None:
    frame = read_rgb(shared_data / "hc18" / "images" / name)
    result = auto_crop(frame)
    assert result.usable and result.method == "full"
    assert result.box.area >= 0.95 * frame.shape[0] * frame.shape[1]


def test_an_hc18_image_with_a_burned_in_cine_bar_loses_the_bar_only(shared_data: Path) -> None:
    frame = read_rgb(shared_data / "hc18" / "images" / "024_HC.png")
    result = auto_crop(frame)
    assert result.usable and result.method == "auto-fan"
    assert result.box.y1 <= 519  # the bar ("15 sec") fills rows 519..539
    assert kept_share(result, Box(20, 0, 780, 519)) >= 0.95


def test_fetal_brain_images_are_left_whole(shared_data: Path) -> None:
    root = shared_data / "fetal-brain-us"
    with (root / "manifest.csv").open(newline="") as fh:
        originals = [row["file"] for row in csv.DictReader(fh) if row["augmented"] == "0"]
    sample = sorted(originals)[::15]
    assert len(sample) >= 20
    for rel in sample:
        frame = read_rgb(root / rel)
        result = auto_crop(frame)
        assert result.usable, rel
        assert result.box.area >= 0.95 * frame.shape[0] * frame.shape[1], rel


def test_real_frames_region_search_is_deterministic(shared_data: Path) -> None:
    frame = read_rgb(shared_data / "scanner-frames" / "FEMUR.png")
    first, second = find_image_region(frame), find_image_region(frame)
    assert first is not None and second is not None and first.box == second.box
