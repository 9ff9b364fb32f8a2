"""Batched inference of all folds of a bundle, with every class's activation map from the same pass.

Per fold: the trunk runs once, its ``layer4`` features give both the logits (average pool + fc) and the
class activation maps (fc weights times features, see ``explain``). Probabilities are each fold's
softmax of its logits divided by its calibration temperature, then averaged over folds.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from fetalcns_core.bundle import Bundle, BundleError, load_bundle, load_fold_models
from fetalcns_core.exam import FramePrediction
from fetalcns_core.explain import class_activation_maps, normalise_cam
from fetalcns_core.manifest import OOD_METHODS
from fetalcns_core.preprocess import to_batch

log = logging.getLogger(__name__)


class DeviceError(RuntimeError):
    """The requested compute device is not available."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` is the first CUDA GPU when PyTorch sees one, else the CPU; ``cuda`` without one fails."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device '{name}' was asked for but PyTorch sees no CUDA GPU: choose 'auto' or 'cpu', "
                "or install a CUDA build of PyTorch and the GPU driver"
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"unknown device '{name}': use 'auto', 'cpu' or 'cuda'")


def _fold_bn_into_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """conv <- bn(conv(.)) in place: the weights are rescaled where they lie (no second copy)."""
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    bias = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    conv.weight.mul_(scale.view(-1, 1, 1, 1))
    conv.bias = nn.Parameter(bias.detach().clone(), requires_grad=conv.weight.requires_grad)


def fuse_batch_norms(model: nn.Module) -> nn.Module:
    """Fold every batch norm of a torchvision ResNet into the conv before it (inference only), in place."""
    pairs: list[tuple[nn.Module, str, str]] = [(model, "conv1", "bn1")]
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        for block in stage:
            pairs += [(block, f"conv{i}", f"bn{i}") for i in (1, 2, 3) if hasattr(block, f"bn{i}")]
            if block.downsample is not None:
                pairs.append((block.downsample, "0", "1"))
    with torch.no_grad():
        for parent, conv, bn in pairs:
            _fold_bn_into_conv(getattr(parent, conv), getattr(parent, bn))
            setattr(parent, bn, nn.Identity())
    return model


def _features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The ResNet trunk up to and including ``layer4``: (N, C, h, w)."""
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer4(model.layer3(model.layer2(model.layer1(x))))


def ood_scores(
    fold_logits: torch.Tensor,
    temperatures: torch.Tensor,
    method: str = "msp",
    energy_temperature: float | None = None,
) -> torch.Tensor:
    """Out-of-scope score per image from fold logits (F, N, K); higher means less like the training data.

    ``msp``: 1 - the largest ensemble probability. ``energy``: the fold mean of ``-T logsumexp(z / T)``
    with each fold's calibration temperature (or ``energy_temperature`` when given).
    """
    temps = temperatures.view(-1, 1, 1).to(fold_logits)
    if method == "msp":
        probs = torch.softmax(fold_logits / temps, dim=-1).mean(dim=0)
        return 1.0 - probs.max(dim=-1).values
    if method == "energy":
        t = temps if energy_temperature is None else torch.full_like(temps, float(energy_temperature))
        return (-t[..., 0] * torch.logsumexp(fold_logits / t, dim=-1)).mean(dim=0)
    raise ValueError(f"unknown out-of-scope method '{method}': choose one of {OOD_METHODS}")


class Ensemble:
    """All folds of a bundle on one device. Use as a context manager, or ``close()``, to free the weights."""

    def __init__(self, bundle: Bundle | str | os.PathLike[str], device: str | torch.device = "auto") -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        if self.bundle.cam_layer != "layer4":
            raise BundleError(
                f"bundle {self.bundle.bundle_id} asks for CAMs on '{self.bundle.cam_layer}'; the ensemble "
                "computes them on 'layer4' (use explain.gradcam_reference for other layers)"
            )
        dev = resolve_device(device)
        self.device = str(dev)
        self.classes = list(self.bundle.classes)
        self.spec = self.bundle.input_spec
        self.models = [fuse_batch_norms(m) for m in load_fold_models(self.bundle, dev)]
        self.temperatures = torch.tensor([f.temperature for f in self.bundle.folds], dtype=torch.float32)
        ood = self.bundle.ood or {}
        self.ood_method: str = ood.get("method", "msp")
        self.ood_threshold: float | None = None if ood.get("threshold") is None else float(ood["threshold"])
        self._energy_temperature = ood.get("temperature")
        if self.ood_method == "feature-centroid" and any(m.ood_centroids is None for m in self.models):
            raise BundleError(
                f"bundle {self.bundle.bundle_id} asks for feature-centroid out-of-scope scores but its fold "
                "files hold no 'ood.centroids': recalibrate it (tools/calibrate_ood.py) or reinstall it"
            )
        if not self.bundle.trained:
            log.warning("bundle %s", self.bundle.title)
        log.info("ensemble of %d folds on %s", len(self.models), self.device)

    @property
    def n_folds(self) -> int:
        return len(self.models)

    def close(self) -> None:
        """Drop the networks (and their GPU memory)."""
        self.models = []
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    def __enter__(self) -> Ensemble:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def forward(self, x: torch.Tensor, cams: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Normalised input (N, 3, S, S) to fold logits (F, N, K) and the un-normalised ensemble CAM.

        The CAM (N, K, h, w) is the fold mean of each fold's ReLU'd map of its calibrated logit (the map
        divided by the fold's temperature); both are float32 on the CPU.
        """
        fold_logits, cam, _ = self._run(x, cams)
        return fold_logits, cam

    def _run(
        self, x: torch.Tensor, cams: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``forward`` plus, when the folds carry centroids, the feature-centroid score (N,)."""
        if not self.models:
            raise RuntimeError("this ensemble was closed: create a new one")
        dev = torch.device(self.device)
        x = x.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last)
        amp = torch.autocast("cuda", dtype=torch.float16) if dev.type == "cuda" else contextlib.nullcontext()
        logits, cam_sum, distances = [], None, []
        with torch.inference_mode():
            for model, temp in zip(self.models, self.temperatures.tolist(), strict=True):
                with amp:
                    feats = _features(model, x)
                    pooled = torch.flatten(model.avgpool(feats), 1)
                    logits.append(model.fc(pooled).float())
                if model.ood_centroids is not None:
                    unit = torch.nn.functional.normalize(pooled.float(), dim=1)
                    sims = unit @ model.ood_centroids.to(unit).T  # (N, K) cosine similarity
                    distances.append(1.0 - sims.max(dim=1).values)
                if cams:
                    fold_cam = class_activation_maps(feats.float(), model.fc.weight.float()).relu_()
                    fold_cam.div_(temp)
                    cam_sum = fold_cam if cam_sum is None else cam_sum.add_(fold_cam)
            fold_logits = torch.stack(logits).cpu()
            cam = None if cam_sum is None else cam_sum.div_(len(self.models)).cpu()
            distance = torch.stack(distances).mean(dim=0).cpu() if distances else None
        return fold_logits, cam, distance

    def predict(
        self,
        images: Sequence[np.ndarray] | torch.Tensor,
        cams: bool = True,
        batch_size: int = 8,
        on_progress: Callable[[int, int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> list[FramePrediction]:
        """One ``FramePrediction`` per image (RGB uint8 arrays, or an already normalised (N, 3, S, S) batch).

        ``cams`` adds every class's ensemble map, min-max normalised, (K, h, w) over the eval view.
        When ``cancel()`` turns true the predictions done so far are returned.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        total = len(images)
        out: list[FramePrediction] = []
        for start in range(0, total, batch_size):
            if cancel is not None and cancel():
                log.info("prediction cancelled after %d of %d images", len(out), total)
                break
            chunk = images[start : start + batch_size]
            x = chunk if isinstance(chunk, torch.Tensor) else to_batch(chunk, self.spec)
            fold_logits, cam, distance = self._run(x, cams)
            out.extend(self._predictions(fold_logits, cam, distance))
            if on_progress is not None:
                on_progress(len(out), total)
        return out

    def _predictions(
        self, fold_logits: torch.Tensor, cam: torch.Tensor | None, distance: torch.Tensor | None = None
    ) -> list[FramePrediction]:
        temps = self.temperatures.view(-1, 1, 1)
        fold_probs = torch.softmax(fold_logits / temps, dim=-1)  # (F, N, K)
        probs = fold_probs.mean(dim=0).numpy()
        fold_probs_np = fold_probs.permute(1, 0, 2).numpy()  # (N, F, K)
        if self.ood_method == "feature-centroid" and distance is not None:
            scores = distance.numpy()
        else:
            method = "msp" if self.ood_method == "feature-centroid" else self.ood_method
            scores = ood_scores(fold_logits, self.temperatures, method, self._energy_temperature).numpy()
        maps = normalise_cam(cam) if cam is not None else None
        return [
            FramePrediction(
                probs=probs[i].copy(),
                fold_probs=fold_probs_np[i].copy(),
                cams=None if maps is None else maps[i].copy(),
                ood_score=float(scores[i]),
                out_of_scope=self.ood_threshold is not None and float(scores[i]) > self.ood_threshold,
            )
            for i in range(probs.shape[0])
        ]
