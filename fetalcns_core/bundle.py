"""Model bundles: a folder with ``manifest.json``, one ``fold-K.safetensors`` per fold and ``MODEL_CARD.md``.

The manifest names the architecture, the classes (order = output order), the input spec, each fold's
file, sha256 and calibration temperature, and describes the model for people (training, metrics, data,
intended use, limitations); ``fetalcns_core.manifest`` validates and reads it, and its names are
re-exported here. Weights are never pickled. Every fold file is checked against its sha256 on load: a
damaged or incomplete bundle is refused, never run as a partial ensemble.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
import torchvision
from safetensors import safe_open
from safetensors.torch import save as save_safetensors
from torch import nn

from fetalcns_core import INTENDED_USE, __version__
from fetalcns_core.exam import atomic_write_bytes, now_iso
from fetalcns_core.manifest import (
    ARCHITECTURES,
    CORE_KEYS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MODEL_CARD,
    Bundle,
    BundleError,
    FoldSpec,
    load_bundle,
    validate_manifest,
)
from fetalcns_core.model_card import UNTRAINED_NOTE, model_card
from fetalcns_core.preprocess import InputSpec
from fetalcns_core.weight_codec import WEIGHT_DTYPES, WeightFileError, clean_keys, decode_state, encode_state

__all__ = [
    "ARCHITECTURES",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "MODEL_CARD",
    "Bundle",
    "BundleError",
    "FoldSpec",
    "build_network",
    "default_bundle_dir",
    "load_bundle",
    "load_fold_models",
    "make_random_bundle",
    "update_manifest",
    "write_bundle",
]

log = logging.getLogger(__name__)

OOD_PREFIX = "ood."


def build_network(arch: str, num_classes: int, device: str | torch.device = "meta") -> nn.Module:
    """A torchvision ResNet with a ``num_classes`` head; on ``meta`` it allocates nothing."""
    if arch not in ARCHITECTURES:
        raise BundleError(f"unknown architecture '{arch}': supported are {', '.join(ARCHITECTURES)}")
    with torch.device(device):
        model = getattr(torchvision.models, arch.removesuffix("-v1"))(weights=None, num_classes=num_classes)
    if arch.endswith("-v1"):
        from fetalcns_core.training.convert import move_strides_to_1x1

        move_strides_to_1x1(model)
    return model


# --------------------------------------------------------------------------- weights


def _sha256_of(file: Path) -> str:
    """sha256 of a file read through a memory map (no copy; the hash releases the GIL)."""
    with open(file, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return hashlib.sha256(mm).hexdigest()


def _read_fold(bundle: Bundle, fold: FoldSpec) -> dict[str, torch.Tensor]:
    """Check one fold file's sha256, then read and decode it to float32 tensors."""
    file = bundle.path / fold.file
    where = f"{fold.file} of bundle {bundle.bundle_id}"
    try:
        digest = _sha256_of(file)
    except FileNotFoundError as exc:
        raise BundleError(
            f"{fold.file} is missing from bundle {bundle.bundle_id} ({bundle.path}): the bundle is "
            "incomplete — reinstall it or choose another bundle"
        ) from exc
    except (OSError, ValueError) as exc:  # ValueError: an empty file cannot be mapped
        raise BundleError(f"cannot read {where}: {exc} — reinstall the bundle or choose another one") from exc
    if digest != fold.sha256:
        raise BundleError(
            f"{where} does not match its sha256 in the manifest (expected {fold.sha256[:12]}…, found "
            f"{digest[:12]}…): the file is damaged or was replaced — reinstall the bundle or choose another"
        )
    try:
        with safe_open(file, framework="pt") as st:
            raw = {key: st.get_tensor(key) for key in st.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # safetensors raises its own error types
        raise BundleError(f"{where} is not a valid safetensors file ({exc}): reinstall the bundle") from exc
    try:
        return decode_state(raw, where)
    except WeightFileError as exc:
        raise BundleError(f"{exc} — reinstall the bundle or choose another one") from exc


def load_fold_models(bundle: Bundle, device: str | torch.device = "cpu") -> list[nn.Module]:
    """Every fold's network, in eval mode and channels_last on ``device``.

    Each file's sha256 is verified first; a missing, damaged or mismatching fold raises ``BundleError``.
    Networks are built on the ``meta`` device and take the loaded tensors as they are (``assign=True``).
    """
    workers = min(len(bundle.folds), os.cpu_count() or 1, 4)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # hashing and decoding release the GIL
        futures = [pool.submit(_read_fold, bundle, fold) for fold in bundle.folds]
        # the empty networks are built while the files are read
        skeletons = [build_network(bundle.architecture, len(bundle.classes), "meta") for _ in bundle.folds]
        states = [f.result() for f in futures]
    models = []
    for fold, state, model in zip(bundle.folds, states, skeletons, strict=True):
        # tensors under "ood." describe the fold's training data (out-of-scope centroids), not weights
        extras = {key: state.pop(key) for key in [k for k in state if k.startswith(OOD_PREFIX)]}
        try:
            model.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as exc:
            raise BundleError(
                f"{fold.file} of bundle {bundle.bundle_id} does not fit a {bundle.architecture} with "
                f"{len(bundle.classes)} classes ({str(exc).splitlines()[0]}): manifest and weights disagree"
            ) from exc
        model.ood_centroids = extras.get(OOD_PREFIX + "centroids")  # (K, C) unit vectors, or None
        models.append(model.to(device=device, memory_format=torch.channels_last).eval())
    log.info("loaded %d folds of bundle %s onto %s", len(models), bundle.bundle_id, device)
    return models


def add_fold_tensors(path: str | os.PathLike[str], tensors: Sequence[Mapping[str, torch.Tensor]]) -> Bundle:
    """Store extra float tensors (names under ``ood.``) in each fold file and update its sha256."""
    bundle = load_bundle(path)
    if len(tensors) != len(bundle.folds):
        raise ValueError(f"need one mapping per fold ({len(bundle.folds)}), got {len(tensors)}")
    folds = []
    for entry, extra in zip(bundle.manifest["folds"], tensors, strict=True):
        if any(not name.startswith(OOD_PREFIX) for name in extra):
            raise ValueError(f"extra fold tensors must be named '{OOD_PREFIX}…'")
        file = bundle.path / entry["file"]
        with safe_open(file, framework="pt") as st:
            raw = {key: st.get_tensor(key) for key in st.keys()}  # noqa: SIM118 (not a dict)
            meta = st.metadata()
        raw.update({name: t.detach().to("cpu", torch.float32).contiguous() for name, t in extra.items()})
        payload = save_safetensors(raw, metadata=meta)
        _write_file(file, payload)
        folds.append({**entry, "sha256": hashlib.sha256(payload).hexdigest()})
    return _write_manifest(bundle.path, {**bundle.manifest, "folds": folds})


# --------------------------------------------------------------------------- writing


def write_bundle(
    out_dir: str | os.PathLike[str],
    state_dicts: Sequence[Mapping[str, torch.Tensor]],
    *,
    bundle_id: str,
    architecture: str = "resnet34",
    classes: Sequence[str],
    class_names: Sequence[str] | None = None,
    normal_class: str,
    input_spec: InputSpec | None = None,
    temperatures: Sequence[float] | None = None,
    dtype: str = "float16",
    trained: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> Bundle:
    """Write a bundle: ``fold-K.safetensors`` (K = 1..F), ``manifest.json`` and ``MODEL_CARD.md``.

    ``extra`` fills the descriptive fields (training, metrics, data, intended_use, limitations, ood,
    label_map ...); it cannot override the fields this function sets.
    """
    if dtype not in WEIGHT_DTYPES:
        raise ValueError(f"dtype '{dtype}' is not one of {WEIGHT_DTYPES}")
    if not state_dicts:
        raise ValueError("a bundle needs at least one fold's state dict")
    temps = [1.0] * len(state_dicts) if temperatures is None else [float(t) for t in temperatures]
    if len(temps) != len(state_dicts) or min(temps) <= 0:
        raise ValueError(f"need one positive temperature per fold ({len(state_dicts)}), got {temperatures}")
    clash = CORE_KEYS & set(extra or {})
    if clash:
        raise ValueError(f"extra may not set {sorted(clash)}: pass them as write_bundle's arguments")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folds = []
    for k, state in enumerate(state_dicts, start=1):
        probe = build_network(architecture, len(classes), device="meta")
        try:
            probe.load_state_dict(clean_keys(state), strict=True, assign=True)
        except RuntimeError as exc:
            raise ValueError(
                f"fold {k}'s state dict does not fit {architecture} with {len(classes)} classes: "
                f"{str(exc).splitlines()[0]}"
            ) from exc
        payload = save_safetensors(
            encode_state(state, dtype), metadata={"architecture": architecture, "fold": str(k)}
        )
        name = f"fold-{k}.safetensors"
        _write_file(out / name, payload)
        folds.append(
            {"file": name, "sha256": hashlib.sha256(payload).hexdigest(), "temperature": temps[k - 1]}
        )
    for stale in set(p.name for p in out.glob("fold-*.safetensors")) - {f["file"] for f in folds}:
        (out / stale).unlink()
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "bundle_id": bundle_id,
        "architecture": architecture,
        "classes": list(classes),
        "class_names": list(class_names) if class_names is not None else list(classes),
        "normal_class": normal_class,
        "input": (input_spec or InputSpec()).to_dict(),
        "cam_layer": "layer4",
        "folds": folds,
        "weights_dtype": dtype,
        "trained": trained,
        "intended_use": INTENDED_USE,
        "created_at": now_iso(),
        "fetalcns_version": __version__,
    }
    manifest.update(extra or {})
    validate_manifest(manifest, out)
    return _write_manifest(out, manifest)


def _write_file(path: Path, payload: bytes) -> None:
    """Write atomically, readable by everyone (a bundle is installed for all users of a machine)."""
    atomic_write_bytes(path, payload)
    path.chmod(0o644)


def _write_manifest(out: Path, manifest: dict[str, Any]) -> Bundle:
    text = json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    _write_file(out / MANIFEST, text.encode("utf-8"))
    _write_file(out / MODEL_CARD, model_card(manifest).encode("utf-8"))
    log.info("wrote model bundle %s to %s", manifest["bundle_id"], out)
    return load_bundle(out)


def update_manifest(path: str | os.PathLike[str], fields: Mapping[str, Any]) -> Bundle:
    """Set descriptive fields (e.g. ``ood`` after calibrating its threshold, ``metrics``) of a bundle."""
    bundle = load_bundle(path)
    clash = CORE_KEYS & set(fields)
    if clash:
        raise ValueError(f"cannot change {sorted(clash)} of an existing bundle: write a new bundle instead")
    manifest = {**bundle.manifest, **fields}
    validate_manifest(manifest, bundle.path)
    return _write_manifest(bundle.path, manifest)


# --------------------------------------------------------------------------- test bundles and discovery


def make_random_bundle(
    out_dir: str | os.PathLike[str],
    arch: str = "resnet34",
    classes: Sequence[str] = ("normal", "encephalocele", "ventriculomegaly"),
    n_folds: int = 2,
    seed: int = 0,
    dtype: str = "float16",
) -> Bundle:
    """A bundle of seeded random networks for tests: ``trained: false``, id ``untrained-test-…``.

    Batch norm statistics are set from seeded noise and the head is scaled so that the outputs vary
    from image to image instead of saturating; the networks know nothing.
    """
    calib = torch.randn(4, 3, 128, 128, generator=torch.Generator().manual_seed(seed))
    states = []
    for k in range(n_folds):
        with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
            torch.manual_seed(seed * 1000 + k)
            model = build_network(arch, len(classes), device="cpu")
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = None  # running stats = the calibration batch's stats
        model.train()
        with torch.no_grad():
            model(calib)
            model.eval()
            spread = model(calib).std().clamp_min(1e-6)
            model.fc.weight.mul_(1.5 / spread)
            model.fc.bias.zero_()
        states.append(model.state_dict())
    return write_bundle(
        out_dir,
        states,
        bundle_id=f"untrained-test-{arch}-{n_folds}f-s{seed}",
        architecture=arch,
        classes=list(classes),
        class_names=[c.replace("_", " ").capitalize() for c in classes],
        normal_class=classes[0],
        dtype=dtype,
        trained=False,
        extra={"limitations": [UNTRAINED_NOTE]},
    )


def default_bundle_dir() -> Path | None:
    """The first ``models/*/manifest.json``: ``$FETALCNS_MODELS``, the frozen app, the checkout, or share/."""
    roots = []
    if os.environ.get("FETALCNS_MODELS"):
        roots.append(Path(os.environ["FETALCNS_MODELS"]))
    if getattr(sys, "_MEIPASS", None):
        roots.append(Path(sys._MEIPASS) / "models")
    roots.append(Path(__file__).resolve().parents[1] / "models")
    roots.append(Path(sys.prefix) / "share" / "fetalcns" / "models")
    for root in roots:
        found = sorted(root.glob(f"*/{MANIFEST}")) if root.is_dir() else []
        if found:
            return found[0].parent
    return None
