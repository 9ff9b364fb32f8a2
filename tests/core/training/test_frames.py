"""Training frames come from the app's sources + crop code, and are cached by content and settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fetalcns_core.crop import crop_frame
from fetalcns_core.sources import iter_frames, probe
from fetalcns_core.training.dataset import Sample
from fetalcns_core.training.frames import FrameSettings, extract_frames, read_frame_image


def write_video(path: Path, n_frames: int = 170, size: int = 64) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (size, size))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for i in range(n_frames):
        frame = np.full((size, size, 3), 40 + i % 200, np.uint8)
        frame[8:56, 8:56] = rng.integers(60, 200, (48, 48, 1), dtype=np.uint8)
        writer.write(frame)
    writer.release()
    return path


def sample(path: Path, group: str = "p1") -> Sample:
    return Sample(path.name, path, "normal", group)


def test_video_frames_are_sampled_and_cropped_as_the_app_does(tmp_path: Path) -> None:
    video = write_video(tmp_path / "loop.avi")
    settings = FrameSettings(every=80, crop="auto")
    items, report = extract_frames([sample(video)], settings, tmp_path / "cache")
    source = probe(video)
    expected = [
        (f.index, crop_frame(f.image, mode="auto", region_hint=f.region_hint)) for f in iter_frames(source)
    ]
    assert [it.index for it in items] == [i for i, c in expected if c.usable] == [0, 80, 160]
    for item, (_, crop) in zip(items, expected, strict=True):
        assert np.array_equal(read_frame_image(item.image_path), crop.image)  # the same pixels, losslessly
        assert list(item.crop_box) == crop.box.as_list()
    assert report.decoded == 1 and report.sha256[video.name] == source.sha256


def test_cache_is_keyed_by_content_and_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    video = write_video(tmp_path / "loop.avi")
    cache = tmp_path / "cache"
    extract_frames([sample(video)], FrameSettings(every=80, crop="none"), cache)
    copy = tmp_path / "renamed.avi"
    shutil.copy(video, copy)
    _, again = extract_frames([sample(copy)], FrameSettings(every=80, crop="none"), cache)
    assert again.decoded == 0  # same bytes elsewhere: no decoding
    items, other = extract_frames([sample(video)], FrameSettings(every=50, crop="none"), cache)
    assert other.decoded == 1 and [it.index for it in items] == [0, 50, 100, 150]
    _, cropped = extract_frames([sample(video)], FrameSettings(every=80, crop="auto"), cache)
    assert cropped.decoded == 1


def test_unreadable_files_are_reported_and_left_out(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    items, report = extract_frames(
        [sample(bad), sample(good, "p2")], FrameSettings(crop="none"), tmp_path / "c"
    )
    assert [it.sample for it in items] == [1]
    assert "broken.png" in report.unreadable and "1 unreadable" in report.summary()
