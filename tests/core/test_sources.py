"""Sources: still images in every common form, videos streamed frame by frame, folders as exams, and
clear errors for files that cannot be read."""

from __future__ import annotations

import hashlib
import io
import logging
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fetalcns_core.exam import SourceFile
from fetalcns_core.sources import (
    SourceError,
    count_frames,
    expand_paths,
    iter_frames,
    probe,
    read_frame,
    sha256_file,
)

# --------------------------------------------------------------------------- helpers


def pattern(h: int = 40, w: int = 60) -> np.ndarray:
    """An RGB image whose corners differ, so orientation and channel order can be checked."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (255, 0, 0)  # top-left red
    img[: h // 2, w // 2 :] = (0, 255, 0)  # top-right green
    img[h // 2 :, : w // 2] = (0, 0, 255)  # bottom-left blue
    img[h // 2 :, w // 2 :] = (255, 255, 255)
    return img


def only_frame(path: Path) -> np.ndarray:
    frames = list(iter_frames(probe(path)))
    assert len(frames) == 1 and frames[0].index == 0 and frames[0].time_s is None
    image = frames[0].image
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    return image


def write_video(path: Path, n: int, fps: float = 10.0, size: tuple[int, int] = (64, 48)) -> None:
    """Frame i is grey level (3 * i) % 256 with a white mark, so frames can be told apart."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for i in range(n):
        frame = np.full((h, w, 3), (3 * i) % 256, np.uint8)
        frame[:4, :4] = 255
        writer.write(frame)
    writer.release()


def level(frame: np.ndarray) -> float:
    return float(frame[8:, 8:].mean())


_REAL_CAPTURE = cv2.VideoCapture


class RecordingCapture:
    """Wraps cv2.VideoCapture to record releases and, optionally, hide the frame count."""

    instances: list[RecordingCapture] = []

    def __init__(self, path: str, hide_count: bool = False) -> None:
        self.cap = _REAL_CAPTURE(path)
        self.hide_count = hide_count
        self.released = False
        RecordingCapture.instances.append(self)

    def get(self, prop: int) -> float:
        if self.hide_count and prop == cv2.CAP_PROP_FRAME_COUNT:
            return 0.0
        return self.cap.get(prop)

    def release(self) -> None:
        self.released = True
        self.cap.release()

    def __getattr__(self, name: str):  # isOpened, grab, retrieve, read, set
        return getattr(self.cap, name)


# --------------------------------------------------------------------------- still images


def test_png_rgb_grey_and_palette_become_rgb(tmp_path: Path) -> None:
    rgb = pattern()
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert np.array_equal(only_frame(tmp_path / "rgb.png"), rgb)
    grey = np.arange(40 * 60, dtype=np.uint32).reshape(40, 60) % 256
    Image.fromarray(grey.astype(np.uint8), mode="L").save(tmp_path / "grey.png")
    out = only_frame(tmp_path / "grey.png")
    assert np.array_equal(out[..., 0], grey) and np.array_equal(out[..., 1], out[..., 2])
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(tmp_path / "pal.png")
    assert np.array_equal(only_frame(tmp_path / "pal.png"), rgb)


def test_transparent_pixels_are_composited_on_black(tmp_path: Path) -> None:
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, :5, 3] = 255
    rgba[:, 5:, 3] = 0
    rgba[0, 0, 3] = 128
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = only_frame(tmp_path / "a.png")
    assert (out[1:, :5] == 200).all() and (out[:, 5:] == 0).all()
    assert abs(int(out[0, 0, 0]) - 100) <= 1
    pal = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.info["transparency"] = 1
    pal.save(tmp_path / "p.png", transparency=1)
    out = only_frame(tmp_path / "p.png")
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 1].tolist() == [0, 0, 0]


@pytest.mark.parametrize(("top", "shift"), [(4095, 4), (65535, 8), (200, 0)])
def test_16_bit_images_are_shifted_to_8_bits_by_their_depth(tmp_path: Path, top: int, shift: int) -> None:
    grey = np.linspace(0, top, 64 * 32).reshape(32, 64).astype(np.uint16)
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), grey)  # a 16-bit PNG
    out = only_frame(path)
    assert np.array_equal(out[..., 1], (grey >> shift).astype(np.uint8))
    tif = tmp_path / "deep.tif"
    Image.fromarray(grey).save(tif)
    assert np.array_equal(only_frame(tif)[..., 0], (grey >> shift).astype(np.uint8))


def test_bmp_and_jpeg_are_read(tmp_path: Path) -> None:
    rgb = pattern()
    Image.fromarray(rgb).save(tmp_path / "x.bmp")
    assert np.array_equal(only_frame(tmp_path / "x.bmp"), rgb)
    Image.fromarray(rgb).save(tmp_path / "x.jpg", quality=95)
    assert np.abs(only_frame(tmp_path / "x.jpg").astype(int) - rgb).mean() < 6


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    rgb = pattern(40, 60)
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to view
    Image.fromarray(rgb).save(tmp_path / "turned.jpg", exif=exif.tobytes(), quality=95)
    out = only_frame(tmp_path / "turned.jpg")
    assert out.shape == (60, 40, 3)
    # after a clockwise turn the bottom-left (blue) corner is at the top-left
    assert out[5, 5].argmax() == 2 and out[5, 34].argmax() == 0


# --------------------------------------------------------------------------- broken input


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        (
            "random.png",
            bytes(range(256)) * 8,
            "cannot read image 'random.png': file is damaged or not an image",
        ),
        ("notes.jpg", b"hello, this is text", "file is damaged or not an image — re-export it"),
        ("empty.avi", b"", "the file is empty"),
        ("garbage.avi", b"RIFF" + bytes(500), "cannot read video 'garbage.avi'"),
        ("garbage.mp4", bytes(1000), "convert it to MP4"),
    ],
)
def test_damaged_files_give_a_clear_source_error(
    tmp_path: Path, name: str, payload: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(SourceError, match=message):
        probe(path)


def test_a_truncated_jpeg_is_damaged(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(pattern(200, 300)).save(buf, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(SourceError, match="cannot read image 'cut.jpg': file is damaged"):
        probe(path)


def test_missing_unsupported_and_folder_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file not found"):
        probe(tmp_path / "gone.png")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(SourceError, match="not a supported image, video or DICOM file"):
        probe(tmp_path / "notes.txt")
    with pytest.raises(SourceError, match="is a folder"):
        probe(tmp_path)


# --------------------------------------------------------------------------- folders and provenance


def test_a_folder_is_its_supported_files_sorted_and_recursive(tmp_path: Path, caplog) -> None:
    exam = tmp_path / "exam"
    (exam / "b").mkdir(parents=True)
    (exam / ".cache").mkdir()
    for rel in ["b/2.png", "a.jpg", "b/1.avi", "c.DCM", ".cache/x.png", "._a.jpg"]:
        (exam / rel).write_bytes(b"x")
    (exam / "notes.txt").write_text("ignored")
    (exam / "IM0001").write_bytes(bytes(128) + b"DICM" + bytes(10))  # DICOM with no extension
    with caplog.at_level(logging.INFO, logger="fetalcns_core.sources"):
        paths = expand_paths([exam, tmp_path / "named.txt"])
    rel = [p.relative_to(tmp_path).as_posix() for p in paths]
    assert rel == ["exam/IM0001", "exam/a.jpg", "exam/b/1.avi", "exam/b/2.png", "exam/c.DCM", "named.txt"]
    assert any("notes.txt" in r.getMessage() for r in caplog.records)


def test_provenance_names_the_file_and_its_sha256(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    Image.fromarray(pattern()).save(path)
    src = probe(path)
    assert src.kind == "image" and src.n_frames == 1 and src.fps is None and src.path == str(path)
    assert src.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == sha256_file(path)
    assert sha256_file(path, chunk=7) == src.sha256
    frame = next(iter_frames(src))
    assert frame.source is src and count_frames(src) == 1


def test_read_frame_refuses_a_file_changed_since_analysis(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    Image.fromarray(pattern()).save(path)
    src = probe(path)
    assert np.array_equal(read_frame(src, 0).image, pattern())
    Image.fromarray(pattern()[::-1].copy()).save(path)
    with pytest.raises(SourceError, match="has changed since it was analysed"):
        read_frame(src, 0)
    with pytest.raises(SourceError, match="still image"):
        read_frame(probe(path), 3)


# --------------------------------------------------------------------------- videos


def test_video_keeps_every_nth_frame_with_index_and_time(tmp_path: Path) -> None:
    path = tmp_path / "loop.avi"
    write_video(path, 200, fps=10.0)
    src = probe(path)
    assert src.kind == "video" and src.n_frames == 200 and src.fps == pytest.approx(10.0)
    frames = list(iter_frames(src))  # the default: every 80th frame, as in the study
    assert [f.index for f in frames] == [0, 80, 160]
    assert [f.time_s for f in frames] == pytest.approx([0.0, 8.0, 16.0])
    assert [level(f.image) for f in frames] == pytest.approx([0, 240, (480 % 256)], abs=3)
    assert count_frames(src) == 3
    by_time = list(iter_frames(src, every=80, fps=2.0))  # 2 per second overrides every
    assert [f.index for f in by_time][:4] == [0, 5, 10, 15] and count_frames(src, fps=2.0) == len(
        by_time
    ) == 40


def test_read_frame_seeks_to_the_same_frame_as_streaming(tmp_path: Path) -> None:
    path = tmp_path / "loop.avi"
    write_video(path, 60)
    src = probe(path)
    streamed = {f.index: f.image for f in iter_frames(src, every=1)}
    for index in (0, 37, 59):
        again = read_frame(src, index)
        assert again.index == index and again.time_s == pytest.approx(index / 10.0)
        assert np.array_equal(again.image, streamed[index])
    with pytest.raises(SourceError, match="shorter or damaged"):
        read_frame(src, 500)


def test_a_ten_minute_clip_streams_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.avi"
    write_video(path, 2400, fps=4.0, size=(96, 72))  # 10 minutes at 4 frames per second
    src = probe(path)
    assert src.n_frames == 2400
    tracemalloc.start()
    try:
        it = iter_frames(src, every=1)
        first = next(it)  # the first frame comes before the rest is read
        assert first.index == 0
        n = 1 + sum(1 for _ in it)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 2400
    all_frames = 2400 * 96 * 72 * 3
    assert peak < all_frames / 20, f"peak {peak} bytes while streaming; all frames are {all_frames}"


def test_cancel_stops_the_stream_and_releases_the_capture(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "loop.avi"
    write_video(path, 100)
    src = probe(path)
    RecordingCapture.instances.clear()
    monkeypatch.setattr(cv2, "VideoCapture", RecordingCapture)
    seen: list[int] = []
    for frame in iter_frames(src, every=5, cancel=lambda: len(seen) >= 3):
        seen.append(frame.index)
    assert seen == [0, 5, 10]
    assert RecordingCapture.instances and all(c.released for c in RecordingCapture.instances)
    # a consumer that stops early (closes the generator) also releases it
    RecordingCapture.instances.clear()
    stream = iter_frames(src, every=5)
    next(stream)
    stream.close()
    assert all(c.released for c in RecordingCapture.instances)


def test_a_video_without_a_frame_count_still_works(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "loop.avi"
    write_video(path, 45)
    monkeypatch.setattr(cv2, "VideoCapture", lambda p: RecordingCapture(p, hide_count=True))
    src = probe(path)
    assert src.n_frames is None
    assert count_frames(src, every=10) == 5
    assert [f.index for f in iter_frames(src, every=10)] == [0, 10, 20, 30, 40]
    unknown = SourceFile(path=str(path), sha256=src.sha256, kind="video", n_frames=None, fps=None)
    assert [f.time_s for f in iter_frames(unknown, every=20)] == [None, None, None]


def test_bad_sampling_settings_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.avi"
    write_video(path, 10)
    src = probe(path)
    with pytest.raises(ValueError, match="every"):
        list(iter_frames(src, every=0))
    with pytest.raises(ValueError, match="positive"):
        count_frames(src, fps=0)


def test_the_real_cine_loop(shared_data: Path) -> None:
    src = probe(shared_data / "video" / "fetal-echo-cine.avi")
    assert src.kind == "video" and src.n_frames == 66 and src.fps == pytest.approx(13.0, abs=0.1)
    assert [f.index for f in iter_frames(src)] == [0]
    frames = list(iter_frames(src, every=20))
    assert [f.index for f in frames] == [0, 20, 40, 60] and count_frames(src, every=20) == 4
    assert frames[0].image.shape == (614, 1112, 3)
    again = read_frame(src, 40)
    assert np.abs(again.image.astype(int) - frames[2].image).max() <= 2
