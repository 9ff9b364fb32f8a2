"""How fold weights are stored: float32, float16, int8 with a per-output-channel scale, or mixed.

mixed stores the large conv/linear weights (at least ``MIXED_INT8_MIN`` elements: the bulk of a ResNet's
size) as int8 and every other weight as float16, so a 5-fold ResNet50 fits in about 130 MB while the
small, sensitive layers (the stem, layer1, downsampling) keep float16 precision.

int8 stores each conv/linear weight ``w`` (out_channels first) as ``round(w / s)`` in [-127, 127] with
``s = max|w| / 127`` per output channel, the scales as float32 under ``name + SCALE_SUFFIX``. Biases and
batch-norm tensors always stay float32. Decoding gives float32 again, 4-D weights channels_last.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

WEIGHT_DTYPES = ("float32", "float16", "int8", "mixed")
MIXED_INT8_MIN = 2**18
SCALE_SUFFIX = "::scale"


class WeightFileError(ValueError):
    """A fold file's tensors cannot be decoded."""


def clean_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the prefixes that DataParallel and torch.compile add to parameter names."""
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "_orig_mod."):
            key = key.removeprefix(prefix)
        out[key] = value
    return out


def encode_state(state: Mapping[str, torch.Tensor], dtype: str) -> dict[str, torch.Tensor]:
    """Conv and linear weights in ``dtype``; biases and batch-norm tensors stay float32."""
    out: dict[str, torch.Tensor] = {}
    for name, t in clean_keys(state).items():
        t = t.detach().to("cpu")
        if not t.is_floating_point():
            out[name] = t.contiguous()
            continue
        t = t.float().contiguous()
        as_int8 = dtype == "int8" or (dtype == "mixed" and t.numel() >= MIXED_INT8_MIN)
        if t.ndim >= 2 and as_int8:
            flat = t.reshape(t.shape[0], -1)
            scale = flat.abs().amax(dim=1).clamp_min(1e-12) / 127.0
            q = torch.round(flat / scale[:, None]).clamp_(-127, 127).to(torch.int8)
            out[name] = q.reshape(t.shape).contiguous()
            out[name + SCALE_SUFFIX] = scale.contiguous()
        elif t.ndim >= 2 and dtype in ("float16", "mixed"):
            half = t.half()
            if not torch.isfinite(half).all():
                raise ValueError(f"'{name}' overflows float16: write this bundle with dtype='float32'")
            out[name] = half
        else:
            out[name] = t
    return out


def decode_state(raw: Mapping[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """Float32 tensors from a fold file (dequantising int8 and half); 4-D weights channels_last."""
    out: dict[str, torch.Tensor] = {}
    for name, t in raw.items():
        if name.endswith(SCALE_SUFFIX):
            continue
        fmt = torch.channels_last if t.ndim == 4 else torch.contiguous_format
        if t.dtype == torch.int8:
            scale = raw.get(name + SCALE_SUFFIX)
            if scale is None or scale.numel() != t.shape[0]:
                raise WeightFileError(
                    f"{where}: int8 tensor '{name}' has no valid scale: the file is damaged"
                )
            shape = (-1,) + (1,) * (t.ndim - 1)
            t = torch.mul(t.to(torch.float32, memory_format=fmt), scale.to(torch.float32).view(shape))
        elif t.is_floating_point():
            t = t.to(torch.float32, memory_format=fmt, copy=True)
        else:
            t = t.clone()
        out[name] = t
    return out
