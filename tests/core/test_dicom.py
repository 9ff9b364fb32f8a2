"""DICOM: single- and multi-frame ultrasound, colour spaces, compression, the ultrasound region, and
clear errors for what cannot be decoded. Files are built with pydicom in a temporary folder."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import convert_color_space
from pydicom.uid import (
    MPEG4HP41,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)

from fetalcns_core.crop import crop_frame
from fetalcns_core.exam import Box
from fetalcns_core.sources import SourceError, count_frames, expand_paths, iter_frames, probe, read_frame


def new_dataset(frames: int) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sop = UltrasoundMultiFrameImageStorage if frames > 1 else UltrasoundImageStorage
    ds.file_meta.MediaStorageSOPClassUID = sop
    ds.SOPClassUID = sop
    ds.Modality = "US"
    return ds


def write_dicom(path: Path, arr: np.ndarray, photometric: str, bits: int = 8, **elements) -> Path:
    frames = arr.shape[0] if (arr.ndim == 4 or (arr.ndim == 3 and photometric.startswith("MONO"))) else 1
    ds = new_dataset(frames)
    ds.set_pixel_data(arr, photometric, bits)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for key, value in elements.items():
        setattr(ds, key, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def colour_patches(h: int = 32, w: int = 48) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :16] = (200, 40, 40)
    img[:, 16:32] = (40, 180, 60)
    img[:, 32:] = (30, 60, 210)
    return img


def test_single_frame_rgb(tmp_path: Path) -> None:
    rgb = colour_patches()
    path = write_dicom(tmp_path / "rgb.dcm", rgb, "RGB")
    src = probe(path)
    assert src.kind == "dicom" and src.n_frames == 1 and src.fps is None
    frames = list(iter_frames(src))
    assert len(frames) == 1 and frames[0].index == 0 and frames[0].time_s is None
    assert np.array_equal(frames[0].image, rgb)
    assert np.array_equal(read_frame(src, 0).image, rgb)


def test_multi_frame_grey_is_sampled_with_time_from_frame_time(tmp_path: Path) -> None:
    stack = np.stack([np.full((24, 32), i, np.uint8) for i in range(200)])
    path = write_dicom(tmp_path / "cine.dcm", stack, "MONOCHROME2", FrameTime=50.0)
    src = probe(path)
    assert src.n_frames == 200 and src.fps == pytest.approx(20.0)
    frames = list(iter_frames(src))  # every 80th, as in the study
    assert [f.index for f in frames] == [0, 80, 160] and count_frames(src) == 3
    assert [f.time_s for f in frames] == pytest.approx([0.0, 4.0, 8.0])
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 80, 160]
    assert all(f.image.shape == (24, 32, 3) and (f.image[..., 0] == f.image[..., 2]).all() for f in frames)
    assert int(read_frame(src, 123).image[5, 5, 1]) == 123
    assert [f.index for f in iter_frames(src, fps=4.0)][:3] == [0, 5, 10]
    with pytest.raises(SourceError, match="it has 200 frame"):
        read_frame(src, 200)


def test_cine_rate_gives_the_frame_rate_when_frame_time_is_absent(tmp_path: Path) -> None:
    stack = np.zeros((3, 8, 8), np.uint8)
    src = probe(write_dicom(tmp_path / "c.dcm", stack, "MONOCHROME2", CineRate=25))
    assert src.fps == pytest.approx(25.0)


def test_cancel_stops_a_multi_frame_stream(tmp_path: Path) -> None:
    stack = np.zeros((50, 8, 8), np.uint8)
    src = probe(write_dicom(tmp_path / "c.dcm", stack, "MONOCHROME2"))
    seen: list[int] = []
    for frame in iter_frames(src, every=1, cancel=lambda: len(seen) >= 4):
        seen.append(frame.index)
    assert seen == [0, 1, 2, 3]


@pytest.mark.parametrize("photometric", ["YBR_FULL", "YBR_FULL_422"])
def test_ybr_is_read_as_rgb(tmp_path: Path, photometric: str) -> None:
    rgb = colour_patches()
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    ds = new_dataset(1)
    ds.set_pixel_data(ybr, "YBR_FULL", 8)
    if photometric == "YBR_FULL_422":  # store with the chroma shared by pixel pairs
        y, cb, cr = ybr[..., 0], ybr[..., 1], ybr[..., 2]
        packed = np.empty((ybr.shape[0], ybr.shape[1] // 2, 4), np.uint8)
        packed[..., 0], packed[..., 1] = y[:, 0::2], y[:, 1::2]
        packed[..., 2], packed[..., 3] = cb[:, 0::2], cr[:, 0::2]
        ds.PixelData = packed.tobytes()
        ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = tmp_path / "ybr.dcm"
    ds.save_as(path, enforce_file_format=True)
    out = next(iter_frames(probe(path))).image
    assert np.abs(out.astype(int) - rgb).max() <= 3


def test_jpeg_compressed_ybr_is_decoded_to_rgb(tmp_path: Path) -> None:
    rgb = colour_patches(64, 96)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95)  # YCbCr 4:2:0 inside, as scanners write
    ds = new_dataset(1)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PlanarConfiguration = 64, 96, 3, 0
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PixelData = encapsulate([buf.getvalue()])
    ds["PixelData"].VR = "OB"
    path = tmp_path / "jpeg.dcm"
    ds.save_as(path, enforce_file_format=True)
    out = next(iter_frames(probe(path))).image
    assert np.abs(out.astype(int) - rgb)[4:-4, 4:-4].mean() < 4
    assert out[32, 8].argmax() == 0 and out[32, 24].argmax() == 1 and out[32, 80].argmax() == 2


def test_monochrome1_is_inverted_and_deep_grey_is_shifted(tmp_path: Path) -> None:
    grey = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1))
    out = next(iter_frames(probe(write_dicom(tmp_path / "m1.dcm", grey, "MONOCHROME1")))).image
    assert np.array_equal(out[..., 0], 255 - grey)
    deep = (grey.astype(np.uint16) << 4) + 7  # 12 bits stored in 16
    out = next(iter_frames(probe(write_dicom(tmp_path / "m2.dcm", deep, "MONOCHROME2", bits=12)))).image
    assert np.array_equal(out[..., 1], grey)


def test_rle_compressed_frames_are_decoded(tmp_path: Path) -> None:
    stack = np.stack([colour_patches() // (i + 1) for i in range(3)])
    ds = new_dataset(3)
    ds.set_pixel_data(stack, "RGB", 8)
    ds.compress(RLELossless)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = tmp_path / "rle.dcm"
    ds.save_as(path, enforce_file_format=True)
    src = probe(path)
    frames = list(iter_frames(src, every=1))
    assert len(frames) == 3
    for i, frame in enumerate(frames):
        assert np.array_equal(frame.image, stack[i])


def region(x0: int, y0: int, x1: int, y1: int, spatial: int) -> Dataset:
    item = Dataset()
    item.RegionSpatialFormat = spatial
    item.RegionDataType = 1
    item.RegionLocationMinX0, item.RegionLocationMinY0 = x0, y0
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = x1, y1
    return item


def test_the_largest_2d_ultrasound_region_is_the_region_hint(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    img = np.zeros((120, 160, 3), np.uint8)
    img[20:90, 30:140] = rng.integers(30, 220, (70, 110, 3), dtype=np.uint8)
    regions = [region(30, 20, 139, 89, 1), region(0, 95, 159, 119, 3), region(140, 0, 150, 5, 1)]
    path = write_dicom(tmp_path / "us.dcm", img, "RGB", SequenceOfUltrasoundRegions=regions)
    frame = next(iter_frames(probe(path)))
    assert frame.region_hint == Box(30, 20, 140, 90)  # half-open: Max + 1
    result = crop_frame(frame.image, region_hint=frame.region_hint)
    assert result.method == "dicom-region" and result.box == Box(30, 20, 140, 90)


def test_an_undecodable_transfer_syntax_is_named_in_the_error(tmp_path: Path) -> None:
    ds = new_dataset(2)
    ds.file_meta.TransferSyntaxUID = MPEG4HP41
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 16, 16, 3
    ds.PhotometricInterpretation = "YBR_PARTIAL_420"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.NumberOfFrames = 2
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PixelData = encapsulate([b"\x00\x00\x00\x01" + bytes(60)])
    ds["PixelData"].VR = "OB"
    path = tmp_path / "h264.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(SourceError) as info:
        probe(path)
    message = str(info.value)
    assert "h264.dcm" in message and "MPEG-4 AVC/H.264" in message and "export it uncompressed" in message


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns while reading the damaged file
def test_damaged_and_imageless_dicom_files_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(bytes(128) + b"DICM" + b"\x02\x00\x10\x00garbage" * 3)
    with pytest.raises(SourceError, match="cannot read DICOM file 'bad.dcm'"):
        probe(bad)
    ds = new_dataset(1)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName = "Report^Only"
    ds.save_as(tmp_path / "report.dcm", enforce_file_format=True)
    with pytest.raises(SourceError, match="cannot read DICOM file .report.dcm.: it holds no image"):
        probe(tmp_path / "report.dcm")


def test_a_dicom_file_without_an_extension_is_found_in_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "exam"
    folder.mkdir()
    write_dicom(folder / "IM_0001", colour_patches(), "RGB")
    (folder / "README").write_text("not dicom")
    paths = expand_paths([folder])
    assert [p.name for p in paths] == ["IM_0001"]
    assert probe(paths[0]).kind == "dicom"
