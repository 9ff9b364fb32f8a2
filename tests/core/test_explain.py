"""CAM from the fc weights equals Grad-CAM on the last block; the overlay covers the network's view."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from fetalcns_core.bundle import load_fold_models
from fetalcns_core.explain import (
    cam_on_image,
    class_activation_maps,
    gradcam_reference,
    normalise_cam,
    upsample_cam,
)
from fetalcns_core.preprocess import InputSpec, eval_view_box, to_batch


@pytest.fixture(scope="module")
def model(random_bundle) -> torch.nn.Module:
    return load_fold_models(random_bundle)[0]


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    rng = np.random.default_rng(1)
    imgs = []
    for _ in range(2):
        small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        imgs.append(cv2.resize(small, (240, 180), interpolation=cv2.INTER_CUBIC))
    return to_batch(imgs)


def fc_cams(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Every class's CAM from the fc weights, ReLU'd and normalised as pytorch-grad-cam does: (N, K, S, S)."""
    captured: list[torch.Tensor] = []
    hook = model.layer4.register_forward_hook(lambda m, i, o: captured.append(o))
    with torch.inference_mode():
        model(x)
        cams = class_activation_maps(captured[0], model.fc.weight).relu().numpy()
    hook.remove()
    n, k = cams.shape[:2]
    size = (x.shape[-1], x.shape[-2])
    flat = scale_cam_image(scale_cam_image(cams.reshape(n * k, *cams.shape[2:]), size))
    return flat.reshape(n, k, *flat.shape[1:])


def test_cam_from_fc_weights_equals_grad_cam_on_the_last_block(model, batch):
    ours = fc_cams(model, batch)
    for k in range(ours.shape[1]):
        with GradCAM(model=model, target_layers=[model.layer4[-1]]) as cam:
            ref = cam(input_tensor=batch, targets=[ClassifierOutputTarget(k)] * batch.shape[0])
        assert ref.shape == ours[:, k].shape
        assert ours[:, k].std() > 0.05  # a real map, not an empty one
        assert np.abs(ref - ours[:, k]).max() <= 1e-4
    model.zero_grad(set_to_none=True)


def test_gradcam_reference_matches_and_cleans_up_after_itself(model, batch):
    ours = fc_cams(model, batch)
    ref = gradcam_reference(model, "layer4", batch, class_index=[1, 2])
    assert ref.shape == (2, 224, 224)
    assert np.abs(ref[0] - ours[0, 1]).max() <= 1e-4 and np.abs(ref[1] - ours[1, 2]).max() <= 1e-4
    assert all(p.grad is None for p in model.parameters())
    assert not model.layer4._forward_hooks and not model.layer4._backward_hooks


def test_gradcam_reference_runs_other_methods_and_layers(model, batch):
    for method in ("gradcam++", "xgradcam"):
        out = gradcam_reference(model, "layer3", batch[:1], class_index=0, method=method)
        assert out.shape == (1, 224, 224) and out.min() >= 0.0 and out.max() <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="unknown CAM method"):
        gradcam_reference(model, "layer4", batch, 0, method="magic")
    with pytest.raises(ValueError, match="no layer 'layer9'"):
        gradcam_reference(model, "layer9", batch, 0)


def test_normalise_cam_scales_each_map_to_0_1_like_pytorch_grad_cam():
    cams = np.random.default_rng(0).normal(size=(3, 4, 7, 7)).astype(np.float32)
    out = normalise_cam(cams)
    assert out.shape == cams.shape and out.dtype == np.float32
    assert np.allclose(out, scale_cam_image(cams.reshape(12, 7, 7)).reshape(out.shape), atol=1e-7)
    assert np.allclose(out.min(axis=(2, 3)), 0) and np.allclose(out.max(axis=(2, 3)), 1, atol=1e-6)
    assert np.all(normalise_cam(np.full((7, 7), 3.0)) == 0)
    assert np.array_equal(normalise_cam(torch.from_numpy(cams)), out)


def test_class_activation_maps_weigh_channels_by_the_class_weights():
    feats = torch.randn(2, 5, 3, 4)
    weight = torch.randn(3, 5)
    expected = torch.einsum("nchw,kc->nkhw", feats, weight)
    assert torch.allclose(class_activation_maps(feats, weight), expected, atol=1e-5)
    with pytest.raises(ValueError, match="do not match"):
        class_activation_maps(feats, torch.randn(3, 4))


def test_overlay_blends_the_view_box_and_leaves_the_rest_untouched():
    image = np.full((300, 500, 3), 90, np.uint8)
    cam = np.linspace(0, 1, 49, dtype=np.float32).reshape(7, 7)
    out = cam_on_image(image, cam, InputSpec(), alpha=0.5)
    assert out.shape == image.shape and out.dtype == np.uint8
    box = eval_view_box(300, 500)
    inside = out[box.y0 : box.y1, box.x0 : box.x1]
    assert np.abs(inside.astype(int) - 90).max() > 40
    outside = np.ones(image.shape[:2], bool)
    outside[box.y0 : box.y1, box.x0 : box.x1] = False
    assert np.array_equal(out[outside], image[outside])
    # jet runs from blue (low) to red (high): the top-left of the view is blue, the bottom-right red
    assert inside[2, 2, 2] > inside[2, 2, 0] and inside[-3, -3, 0] > inside[-3, -3, 2]
    assert np.array_equal(cam_on_image(image, cam, alpha=0.0), image)
    assert cam_on_image(image, cam, colormap="turbo").shape == image.shape


def test_overlay_refuses_a_stack_of_maps_or_a_bad_alpha():
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="one \\(h, w\\) map"):
        cam_on_image(image, np.zeros((3, 7, 7), np.float32))
    with pytest.raises(ValueError, match="alpha"):
        cam_on_image(image, np.zeros((7, 7), np.float32), alpha=2.0)


def test_upsample_cam_is_bilinear_and_keeps_the_range():
    cam = normalise_cam(np.random.default_rng(2).random((7, 7)))
    up = upsample_cam(cam, 40, 30)
    assert up.shape == (30, 40) and up.min() >= 0.0 and up.max() <= 1.0
