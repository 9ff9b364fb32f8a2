"""Class activation maps: the maths, the overlay, and the pytorch-grad-cam reference path.

For a ResNet whose head is global average pooling and one linear layer, Grad-CAM on the last block
equals CAM from the head's weights: the gradient of logit k with respect to the feature map A is
``fc.weight[k] / (h * w)`` at every position, so Grad-CAM's channel weights are ``fc.weight[k]`` up to a
positive factor that min-max normalisation removes. The ensemble therefore computes every class's map
from the one forward pass (``class_activation_maps``) and needs no backward pass; ``gradcam_reference``
keeps pytorch-grad-cam for other layers and methods, and for checking that equality.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from fetalcns_core.preprocess import InputSpec, eval_view_box

# pytorch-grad-cam class per method name; imported when first used (it pulls in a large stack)
CAM_METHODS = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "scorecam": "ScoreCAM",
    "xgradcam": "XGradCAM",
    "hirescam": "HiResCAM",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
}
COLORMAPS = {"jet": cv2.COLORMAP_JET, "turbo": cv2.COLORMAP_TURBO}


def class_activation_maps(features: torch.Tensor, fc_weight: torch.Tensor) -> torch.Tensor:
    """CAM_k = sum_c fc_weight[k, c] * A_c for every class: (N, C, h, w), (K, C) to (N, K, h, w).

    Un-normalised and signed; take ``relu`` before averaging, as Grad-CAM does.
    """
    if features.ndim != 4 or fc_weight.ndim != 2 or features.shape[1] != fc_weight.shape[1]:
        raise ValueError(
            f"features (N, C, h, w) and fc weight (K, C) do not match: {tuple(features.shape)}, "
            f"{tuple(fc_weight.shape)}"
        )
    # (N, h, w, C) @ (C, K): a plain matrix product, cheap on channels_last features
    maps = features.permute(0, 2, 3, 1) @ fc_weight.t().to(features.dtype)
    return maps.permute(0, 3, 1, 2)


def normalise_cam(cam: np.ndarray | torch.Tensor) -> np.ndarray:
    """Min-max normalise each map (the last two axes) to [0, 1], as pytorch-grad-cam's ``scale_cam_image``."""
    arr = cam.detach().float().cpu().numpy() if isinstance(cam, torch.Tensor) else np.asarray(cam, np.float32)
    arr = arr - arr.min(axis=(-2, -1), keepdims=True)
    return (arr / (1e-7 + arr.max(axis=(-2, -1), keepdims=True))).astype(np.float32, copy=False)


def upsample_cam(cam: np.ndarray, width: int, height: int) -> np.ndarray:
    """One (h, w) map resized to ``width`` x ``height`` (bilinear, as pytorch-grad-cam does)."""
    return cv2.resize(np.asarray(cam, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def cam_on_image(
    image: np.ndarray,
    cam: np.ndarray,
    spec: InputSpec | None = None,
    alpha: float = 0.45,
    colormap: str = "jet",
) -> np.ndarray:
    """Blend a colour-mapped CAM (h, w in [0, 1]) over the part of ``image`` that the network saw.

    The map is stretched over ``eval_view_box`` (the eval transform's centre crop); pixels outside that
    box are shown unblended. Returns a new RGB uint8 image of the same size.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 RGB image, got {image.shape} {image.dtype}")
    if np.asarray(cam).ndim != 2:
        raise ValueError(f"expected one (h, w) map, got shape {np.shape(cam)}: pick a class, e.g. cams[k]")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap '{colormap}': choose one of {sorted(COLORMAPS)}")
    box = eval_view_box(image.shape[0], image.shape[1], spec or InputSpec())
    out = image.copy()
    if box.area == 0:
        return out
    heat = np.clip(upsample_cam(cam, box.width, box.height), 0.0, 1.0)
    colour = cv2.applyColorMap(np.round(heat * 255.0).astype(np.uint8), COLORMAPS[colormap])
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    region = np.ascontiguousarray(out[box.y0 : box.y1, box.x0 : box.x1])
    out[box.y0 : box.y1, box.x0 : box.x1] = cv2.addWeighted(region, 1.0 - alpha, colour, alpha, 0.0)
    return out


def resolve_layer(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    """A sub-module by dotted name ("layer4", "layer4.2", "layer3.0.conv2") or as given."""
    if isinstance(layer, nn.Module):
        return layer
    try:
        return model.get_submodule(layer)
    except AttributeError as exc:
        raise ValueError(
            f"the network has no layer '{layer}': give a name such as 'layer4' or 'layer3.1'"
        ) from exc


def gradcam_reference(
    model: nn.Module,
    target_layer: nn.Module | str,
    input_tensor: torch.Tensor,
    class_index: int | Sequence[int],
    method: str = "gradcam",
) -> np.ndarray:
    """pytorch-grad-cam's map for one class per image: (N, H, W) in [0, 1] at the input's size.

    ``method`` is one of ``CAM_METHODS``. Runs a forward and (for gradient methods) a backward pass
    per call; the gradients it leaves on the parameters are cleared afterwards.
    """
    if method not in CAM_METHODS:
        raise ValueError(f"unknown CAM method '{method}': choose one of {sorted(CAM_METHODS)}")
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam_class = getattr(pytorch_grad_cam, CAM_METHODS[method])
    layer = resolve_layer(model, target_layer)
    n = input_tensor.shape[0]
    indices = [int(class_index)] * n if isinstance(class_index, int) else [int(k) for k in class_index]
    if len(indices) != n:
        raise ValueError(f"got {len(indices)} class indices for {n} images")
    device = next(model.parameters()).device
    with torch.inference_mode(False), torch.enable_grad():
        x = input_tensor.detach().clone().to(device)
        try:
            with cam_class(model=model, target_layers=[layer]) as cam:
                return cam(input_tensor=x, targets=[ClassifierOutputTarget(k) for k in indices])
        finally:
            model.zero_grad(set_to_none=True)
