"""The manifest of a model bundle: its format, the ``Bundle`` it describes, validation and reading.

``manifest.json`` names the architecture, the classes (order = output order), the input spec, each
fold's file, sha256 and calibration temperature, and describes the model for people (training,
metrics, data, intended use, limitations). Reading a manifest reads no weights;
``fetalcns_core.bundle`` loads and writes the weights and re-exports the public names of this module.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fetalcns_core.exam import BundleInfo
from fetalcns_core.model_card import UNTRAINED_NOTE
from fetalcns_core.preprocess import InputSpec
from fetalcns_core.weight_codec import WEIGHT_DTYPES

FORMAT = "fetalcns-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_CARD = "MODEL_CARD.md"
ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "resnet50-v1")
# fmt: off
OOD_METHODS = ("msp", "energy", "feature-centroid")
CORE_KEYS = frozenset({"format", "format_version", "bundle_id", "architecture", "classes", "class_names",
                       "normal_class", "input", "cam_layer", "folds", "weights_dtype", "trained"})
_REQUIRED = {"bundle_id": str, "architecture": str, "classes": list, "folds": list, "normal_class": str,
             "input": dict}
# fmt: on


class BundleError(Exception):
    """A model bundle cannot be used: missing, incomplete, damaged or of an unknown format."""


@dataclass(frozen=True)
class FoldSpec:
    file: str
    sha256: str
    temperature: float = 1.0


@dataclass
class Bundle:
    """A validated manifest and where it lies. Weights are loaded by ``load_fold_models``."""

    path: Path
    manifest: dict[str, Any]
    bundle_id: str
    architecture: str
    classes: list[str]
    class_names: list[str]
    normal_class: str
    input_spec: InputSpec
    cam_layer: str
    folds: list[FoldSpec]
    trained: bool
    ood: dict[str, Any] | None
    sha256: str  # of manifest.json, which holds every fold file's sha256
    weights_dtype: str = "float16"
    label_map: dict[str, Any] | None = field(default=None)

    @property
    def title(self) -> str:
        """The bundle's name for people; an untrained bundle says so."""
        return self.bundle_id if self.trained else f"{self.bundle_id} ({UNTRAINED_NOTE})"

    def info(self) -> BundleInfo:
        return BundleInfo(
            bundle_id=self.bundle_id,
            sha256=self.sha256,
            classes=list(self.classes),
            class_names=list(self.class_names),
            normal_class=self.normal_class,
            trained=self.trained,
            architecture=self.architecture,
        )


def _fail(path: Path, what: str) -> BundleError:
    return BundleError(f"model bundle '{path}' is not usable: {what} — reinstall it or choose another bundle")


def validate_manifest(data: Any, path: Path) -> None:
    """Raise ``BundleError`` naming the first problem of the manifest ``data`` of the bundle at ``path``."""
    if not isinstance(data, dict):
        raise _fail(path, "manifest.json is not a JSON object")
    if data.get("format", FORMAT) != FORMAT:
        raise _fail(path, f"manifest format is '{data.get('format')}', expected '{FORMAT}'")
    version = data.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise _fail(path, "manifest has no valid 'format_version'")
    if version > FORMAT_VERSION:
        raise BundleError(
            f"model bundle '{path}' has format version {version}, newer than this program reads "
            f"({FORMAT_VERSION}): update FetalCNS to use it"
        )
    for key, kind in _REQUIRED.items():
        if not isinstance(data.get(key), kind):
            raise _fail(path, f"manifest field '{key}' is missing or not a {kind.__name__}")
    classes = data["classes"]
    if not classes or not all(isinstance(c, str) and c for c in classes) or len(set(classes)) != len(classes):
        raise _fail(path, "'classes' must be a non-empty list of distinct names")
    names = data.get("class_names", classes)
    if not isinstance(names, list) or len(names) != len(classes):
        raise _fail(path, f"'class_names' must list {len(classes)} display names, one per class")
    if data["normal_class"] not in classes:
        raise _fail(path, f"normal class '{data['normal_class']}' is not one of the classes {classes}")
    if data["architecture"] not in ARCHITECTURES:
        raise _fail(path, f"architecture '{data['architecture']}' is unknown (supported: {ARCHITECTURES})")
    if data.get("weights_dtype", "float32") not in WEIGHT_DTYPES:
        raise _fail(path, f"weights_dtype '{data.get('weights_dtype')}' is not one of {WEIGHT_DTYPES}")
    if not data["folds"]:
        raise _fail(path, "the manifest lists no folds")
    for i, fold in enumerate(data["folds"]):
        ok = isinstance(fold, dict) and all(isinstance(fold.get(k), str) for k in ("file", "sha256"))
        if not ok or Path(fold["file"]).name != fold["file"] or fold["file"].startswith("."):
            raise _fail(path, f"fold {i} needs a plain 'file' name inside the bundle and its 'sha256'")
        temp = fold.get("temperature", 1.0)
        if not isinstance(temp, int | float) or not temp > 0:
            raise _fail(path, f"fold {i} has temperature {temp!r}; it must be a positive number")
    ood = data.get("ood")
    if ood is not None and (not isinstance(ood, dict) or ood.get("method", "msp") not in OOD_METHODS):
        raise _fail(path, f"'ood' must be an object with a method of {OOD_METHODS} (and a threshold)")


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read and validate ``manifest.json`` of the bundle folder ``path`` (weights are not read yet)."""
    path = Path(path)
    manifest_path = path / MANIFEST if path.is_dir() or not path.name.endswith(".json") else path
    path = manifest_path.parent
    try:
        raw = manifest_path.read_bytes()
    except OSError as exc:
        raise BundleError(
            f"no model bundle at '{path}' ({MANIFEST} cannot be read: {exc.strerror or exc}) — "
            "choose a folder that holds manifest.json"
        ) from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"manifest.json is not valid JSON ({exc})") from exc
    validate_manifest(data, path)
    try:
        spec = InputSpec.from_dict(data["input"])
    except ValueError as exc:
        raise _fail(path, str(exc)) from exc
    return Bundle(
        path=path,
        manifest=data,
        bundle_id=data["bundle_id"],
        architecture=data["architecture"],
        classes=list(data["classes"]),
        class_names=[str(n) for n in data.get("class_names", data["classes"])],
        normal_class=data["normal_class"],
        input_spec=spec,
        cam_layer=str(data.get("cam_layer", "layer4")),
        folds=[
            FoldSpec(f["file"], f["sha256"].lower(), float(f.get("temperature", 1.0))) for f in data["folds"]
        ],
        trained=bool(data.get("trained", True)),
        ood=data.get("ood"),
        sha256=hashlib.sha256(raw).hexdigest(),
        weights_dtype=data.get("weights_dtype", "float32"),
        label_map=data.get("label_map"),
    )
