"""The eval transform is torchvision's Resize(256) + CenterCrop(224); the view box maps it back."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T1
from torchvision.transforms import v2

from fetalcns_core.exam import Box
from fetalcns_core.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    InputSpec,
    PhotometricJitter,
    eval_transform,
    eval_view_box,
    to_batch,
    train_transform,
)


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(img.astype(np.int16) + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)


def torchvision_eval(spec: InputSpec) -> v2.Compose:
    return v2.Compose(
        [
            v2.Resize(spec.resize, antialias=True),
            v2.CenterCrop(spec.size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(spec.mean), list(spec.std)),
        ]
    )


@pytest.mark.parametrize("shape", [(540, 800), (800, 540), (300, 301), (120, 90), (256, 256), (1080, 1920)])
def test_eval_transform_equals_torchvision_resize_and_centre_crop(shape):
    spec = InputSpec()
    img = smooth_image(*shape, seed=shape[0])
    ours = eval_transform(spec)(img)
    ref = torchvision_eval(spec)(torch.from_numpy(img).permute(2, 0, 1).contiguous())
    assert ours.shape == (3, 224, 224) and ours.dtype == torch.float32
    assert (ours - ref).abs().max().item() < 1e-5


def test_eval_transform_is_within_a_grey_level_of_the_classic_pil_pipeline():
    spec = InputSpec()
    img = smooth_image(540, 800, seed=3)
    classic = T1.Compose(
        [T1.Resize(256), T1.CenterCrop(224), T1.ToTensor(), T1.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )
    ref = classic(Image.fromarray(img))
    ours = eval_transform(spec)(img)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    diff_grey = ((ours - ref).abs() * std * 255.0).flatten()
    assert diff_grey.mean().item() < 0.5
    assert diff_grey.max().item() <= 3.0


def test_to_batch_is_channels_last_float_and_handles_mixed_sizes_and_empty_input():
    imgs = [smooth_image(200, 300), smooth_image(310, 240, seed=1)]
    batch = to_batch(imgs)
    assert batch.shape == (2, 3, 224, 224) and batch.dtype == torch.float32
    assert batch.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(batch[1], eval_transform()(imgs[1]))
    assert to_batch([]).shape == (0, 3, 224, 224)


def test_a_square_image_of_the_resize_size_shows_its_centre_crop():
    assert eval_view_box(256, 256) == Box(16, 16, 240, 240)


@pytest.mark.parametrize("shape", [(540, 800), (800, 540), (120, 90), (1080, 1920)])
def test_view_box_marks_the_pixels_the_network_sees(shape):
    h, w = shape
    box = eval_view_box(h, w)
    side = 224 / 256 * min(h, w)
    px = 1 + min(h, w) / 256  # one pixel of the resized image, in this image's pixels
    assert abs(box.width - side) <= px and abs(box.height - side) <= px
    assert abs((box.x0 + box.x1) / 2 - w / 2) <= px and abs((box.y0 + box.y1) / 2 - h / 2) <= px
    # white inside the box, black outside: the network sees white (and the reverse: black), up to the
    # edge pixels that bilinear resizing blends
    img = np.zeros((h, w, 3), np.uint8)
    img[box.y0 : box.y1, box.x0 : box.x1] = 255
    for frame, inside in ((img, 255), (255 - img, 0)):
        seen = v2.functional.resize(torch.from_numpy(frame).permute(2, 0, 1), [256])
        inner = v2.functional.center_crop(seen, [224])[:, 2:-2, 2:-2].int()
        assert (inner - inside).abs().max().item() < 60


def test_input_spec_round_trips_and_rejects_a_crop_larger_than_the_resize():
    spec = InputSpec(size=192, resize=220, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert InputSpec.from_dict(spec.to_dict()) == spec
    assert InputSpec.from_dict({}) == InputSpec()
    with pytest.raises(ValueError, match="size <= resize"):
        InputSpec(size=256, resize=224)
    with pytest.raises(ValueError, match="malformed"):
        InputSpec.from_dict({"mean": 3})


def test_a_greyscale_or_float_image_is_refused_with_the_expected_format():
    with pytest.raises(ValueError, match="H x W x 3 uint8 RGB"):
        eval_transform()(np.zeros((100, 100), np.uint8))
    with pytest.raises(ValueError, match="H x W x 3 uint8 RGB"):
        to_batch([np.zeros((100, 100, 3), np.float32)])


def test_train_transform_crops_flips_and_is_repeatable_with_seeds():
    img = smooth_image(300, 400, seed=5)
    torch.manual_seed(0)
    a = train_transform(seed=1)(img)
    torch.manual_seed(0)
    b = train_transform(seed=1)(img)
    torch.manual_seed(1)
    c = train_transform(seed=2)(img)
    assert a.shape == (3, 224, 224) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = a * std + mean
    assert pixels.min().item() >= -1e-6 and pixels.max().item() <= 1 + 1e-6


def test_photometric_jitter_changes_grey_levels_alike_in_all_channels_and_keeps_the_range():
    img = torch.linspace(0, 1, 64 * 64).view(1, 64, 64).repeat(3, 1, 1)
    jitter = PhotometricJitter(p=1.0, rng=random.Random(0))
    outs = [jitter(img) for _ in range(5)]
    for out in outs:
        assert out.min().item() >= 0.0 and out.max().item() <= 1.0
        assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
        # a monotone ramp stays monotone: jitter never moves pixels
        assert (out[0].flatten().diff() >= -1e-6).all()
    assert any((out - img).abs().max().item() > 0.02 for out in outs)
    assert torch.equal(PhotometricJitter(p=0.0)(img), img)
