"""Predictions of a model bundle over a labelled dataset, made the way the app makes them.

Each group (case) of the dataset is analysed as one exam by ``fetalcns_core.pipeline.analyse``: the
same sources, sampling, cropping and ensemble as in the app, so the figures describe what a clinician
would be shown. Every scored frame becomes one row of the predictions table (``fold = -1``); frames the
app would not score (no ultrasound image found, out of scope, unreadable file) are counted and listed,
never silently dropped. The dataset is read by the training data index (``training.dataset``), and the
bundle manifest's ``label_map`` (original label → class id, or null to drop) maps its labels.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fetalcns_core.evaluation.table import PredictionTable, PredictionTableError
from fetalcns_core.exam import AnalysisSettings

log = logging.getLogger(__name__)


@dataclass
class DatasetPredictions:
    table: PredictionTable
    normal_class: str
    source: dict[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)  # merged into the result's "data" block
    warnings: list[str] = field(default_factory=list)


def bundle_label_map(manifest: Mapping[str, Any]) -> dict[str, str | None] | None:
    """The manifest's ``label_map`` (``{old: new or null}``, or a training run's ``{"map": {...}, ...}``).

    A label mapped to something that is not a class of the bundle is treated as any unknown label."""
    raw = manifest.get("label_map")
    if raw is None:
        return None
    if isinstance(raw, Mapping) and "map" in raw and isinstance(raw["map"], Mapping):
        raw = raw["map"]
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in raw.items()
    ):
        raise PredictionTableError(
            "the bundle's 'label_map' must map each original label to a class id or null (to drop)"
        )
    return dict(raw)


def analysis_settings(
    manifest: Mapping[str, Any], crop: str | None, every: int | None, fps: float | None, device: str
) -> AnalysisSettings:
    """Sampling and cropping: the caller's, else the bundle's training record, else the app's defaults."""
    default = AnalysisSettings()
    trained = (manifest.get("training") or {}).get("frames") or {}
    if every is None and fps is None:
        every, fps = trained.get("every", default.every), trained.get("fps", default.fps)
    return AnalysisSettings(
        every=every, fps=fps, crop=crop or trained.get("crop") or default.crop, device=device
    )


def predict_dataset(
    bundle_dir: str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    include_augmented: bool = False,
    drop_unknown_labels: bool = False,
    device: str = "auto",
    crop: str | None = None,
    every: int | None = None,
    fps: float | None = None,
    batch_size: int = 8,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> DatasetPredictions:
    """Run the bundle's ensemble over the labelled dataset (a CSV manifest or a class/patient folder tree).

    Frames are sampled and cropped as the bundle was trained (its manifest's ``training.frames``) unless
    ``crop`` / ``every`` / ``fps`` say otherwise; without that record, as the app does by default.
    """
    from fetalcns_core.bundle import load_bundle
    from fetalcns_core.ensemble import Ensemble
    from fetalcns_core.pipeline import analyse
    from fetalcns_core.training.dataset import LabelMap, build_index

    bundle = load_bundle(bundle_dir)
    classes = list(bundle.classes)
    mapping = bundle_label_map(bundle.manifest)
    index = build_index(data, LabelMap(mapping) if mapping else None, normal_class=None)
    samples = list(index.samples)
    n_aug = sum(s.augmented for s in samples)
    if not include_augmented:
        samples = [s for s in samples if not s.augmented]
    unknown = Counter(s.label for s in samples if s.label not in classes)
    if unknown:
        if not drop_unknown_labels:
            raise PredictionTableError(
                f"labels of the data are not among the bundle's classes {classes}: {dict(unknown)} (label: "
                "files). Add them to the bundle's 'label_map' (a class id, or null to drop) or pass "
                "--drop-unknown-labels"
            )
        log.warning("leaving out files whose label is not a class of the bundle: %s", dict(unknown))
        samples = [s for s in samples if s.label in classes]
    if not samples:
        raise PredictionTableError("no labelled file is left to evaluate (all augmented, dropped or unknown)")
    settings = analysis_settings(bundle.manifest, crop, every, fps, device)
    ensemble = Ensemble(bundle, device=device)
    by_group: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by_group.setdefault(s.group, []).append(i)
    rows: dict[str, list[Any]] = {
        k: [] for k in ("files", "frames", "groups", "labels", "augmented", "ga", "probs")
    }
    unscored: list[dict[str, str]] = []
    done = 0
    for group, members in sorted(by_group.items()):
        if cancel is not None and cancel():
            raise KeyboardInterrupt("evaluation cancelled")
        where = {Path(samples[i].path).resolve(): i for i in members}
        exam = analyse([samples[i].path for i in members], ensemble, settings, batch_size=batch_size)
        for src in exam.sources:
            if src.failed:
                i = where.get(Path(src.path).resolve())
                unscored.append(
                    {"file": samples[i].file if i is not None else src.path, "reason": src.error or ""}
                )
        for rec in exam.frames:
            key = Path(rec.source_path).resolve()
            if key not in where:
                raise RuntimeError(f"frame of an unexpected file '{rec.source_path}' in group '{group}'")
            s = samples[where[key]]
            if not rec.scored:
                name = s.file if rec.kind == "image" else f"{s.file}#{rec.index}"
                unscored.append({"file": name, "reason": rec.unusable_reason or "not scored"})
                continue
            rows["files"].append(s.file)
            rows["frames"].append(rec.index)
            rows["groups"].append(s.group)
            rows["labels"].append(classes.index(s.label))
            rows["augmented"].append(s.augmented)
            rows["ga"].append(np.nan if s.gestational_age_weeks is None else s.gestational_age_weeks)
            rows["probs"].append(rec.probs)
        done += len(members)
        if on_progress is not None:
            on_progress(done, len(samples))
    if not rows["files"]:
        raise PredictionTableError(f"none of the {len(samples)} files could be scored: {unscored[:3]}")
    table = PredictionTable(
        classes=classes,
        files=rows["files"],
        groups=rows["groups"],
        folds=np.full(len(rows["files"]), -1),
        labels=rows["labels"],
        augmented=rows["augmented"],
        ga_weeks=rows["ga"],
        probs=np.array(rows["probs"], dtype=np.float64),
        frames=rows["frames"],
    )
    warnings = []
    if not bundle.trained:
        warnings.append("untrained test model: these figures describe random networks, not a trained model")
    trained_on = (bundle.manifest.get("data") or {}).get("source")
    if trained_on and Path(str(trained_on)).resolve() == Path(data).resolve():
        warnings.append(
            "the bundle was trained on this dataset: these figures are optimistic; report the training run's "
            "out-of-fold evaluation (fetalcns-eval RUN_DIR) or use data the bundle has not seen"
        )
    if unscored:
        warnings.append(f"{len(unscored)} frame(s) or file(s) could not be scored and are not in the figures")
    info = bundle.info()
    source = {
        "name": f"bundle {info.bundle_id} on {Path(data).name}",
        "bundle_id": info.bundle_id,
        "bundle_sha256": info.sha256,
        "bundle_trained": info.trained,
        "data": str(data),
        "device": ensemble.device,
        "frames": f"every {settings.every}th video frame"
        if settings.fps is None
        else f"{settings.fps} per s",
        "crop": settings.crop,
    }
    notes = {
        "n_augmented_excluded": 0 if include_augmented else n_aug,
        "labels_dropped_by_label_map": dict(index.dropped),
        "labels_dropped_unknown": dict(unknown) if drop_unknown_labels else {},
        "n_unscored": len(unscored),
        "unscored_reasons": dict(Counter(u["reason"] for u in unscored)),
        "unscored": unscored,
    }
    return DatasetPredictions(table, bundle.normal_class, source, notes, warnings)
