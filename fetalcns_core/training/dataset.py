"""The training data: which files, which label, which group (patient or exam), in a fixed class order.

Two layouts are read:

- folders, as the study's: ``ROOT/<class>/<patient-or-exam>/<images, videos or DICOM>`` (files may lie
  in sub-folders of the patient folder; every file below one patient folder is one group);
- a CSV manifest with columns ``file, label, group`` and optional ``gestational_age_weeks`` and
  ``augmented``; ``file`` is relative to the CSV's folder unless absolute.

A label map (JSON) renames, merges or drops labels and may fix the class order and display names.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """The training data cannot be used as given; the message says what to change."""


@dataclass(frozen=True)
class Sample:
    """One file of the training data."""

    file: str  # as named in the manifest (or relative to the folder root): the id in every table
    path: Path  # where it lies
    label: str  # after the label map
    group: str  # patient or exam: the unit of every split
    augmented: bool = False
    gestational_age_weeks: float | None = None
    original_label: str = ""


@dataclass
class LabelMap:
    """Renames (``old -> new``), drops (``old -> None``), class order and display names."""

    mapping: dict[str, str | None] = field(default_factory=dict)
    order: list[str] | None = None
    names: dict[str, str] = field(default_factory=dict)
    normal: str | None = None

    def apply(self, label: str) -> str | None:
        return self.mapping.get(label, label)

    def to_dict(self) -> dict[str, Any]:
        return {
            "map": dict(self.mapping),
            "order": self.order,
            "names": dict(self.names),
            "normal": self.normal,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "label map") -> LabelMap:
        """``{"map": {...}, "order": [...], "names": {...}, "normal": "..."}`` or a plain ``{old: new}``."""
        if not isinstance(data, Mapping):
            raise DatasetError(f"{where}: expected a JSON object")
        structured = set(data) <= {"map", "order", "names", "normal"} and "map" in data
        mapping = data["map"] if structured else data
        if not isinstance(mapping, Mapping) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in mapping.items()
        ):
            raise DatasetError(f"{where}: 'map' must map label names to a new name or null (to drop)")
        order = data.get("order") if structured else None
        if order is not None and (not isinstance(order, list) or not all(isinstance(c, str) for c in order)):
            raise DatasetError(f"{where}: 'order' must be a list of class names")
        names = data.get("names", {}) if structured else {}
        return cls(dict(mapping), order, dict(names), data.get("normal") if structured else None)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LabelMap:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"cannot read label map '{path}': {exc}") from exc
        return cls.from_dict(data, where=f"label map '{path}'")


@dataclass
class ClassCount:
    images: int = 0
    non_augmented: int = 0
    groups: int = 0


@dataclass
class DatasetIndex:
    """The samples, their class order, and where they came from."""

    samples: list[Sample]
    classes: list[str]
    class_names: list[str]
    normal_class: str
    label_map: LabelMap
    source: str  # the folder or CSV that was read
    dropped: dict[str, int] = field(default_factory=dict)  # original label -> files dropped by the map

    def label_index(self, sample: Sample) -> int:
        return self.classes.index(sample.label)

    def groups(self) -> list[str]:
        return sorted({s.group for s in self.samples})

    def counts(self) -> dict[str, ClassCount]:
        out = {c: ClassCount() for c in self.classes}
        groups: dict[str, set[str]] = defaultdict(set)
        for s in self.samples:
            out[s.label].images += 1
            out[s.label].non_augmented += not s.augmented
            groups[s.label].add(s.group)
        for c in self.classes:
            out[c].groups = len(groups[c])
        return out

    def report(self) -> str:
        """The table printed before training: images, groups and non-augmented images per class."""
        counts = self.counts()
        width = max([len("class")] + [len(c) for c in self.classes])
        lines = [f"{'class':<{width}}  {'images':>7}  {'non-aug':>7}  {'groups':>6}"]
        for c in self.classes:
            n = counts[c]
            lines.append(f"{c:<{width}}  {n.images:>7}  {n.non_augmented:>7}  {n.groups:>6}")
        total = ClassCount(len(self.samples), sum(not s.augmented for s in self.samples), len(self.groups()))
        lines.append(f"{'total':<{width}}  {total.images:>7}  {total.non_augmented:>7}  {total.groups:>6}")
        if self.dropped:
            lines.append(
                "dropped by the label map: "
                + ", ".join(f"{k} ({v})" for k, v in sorted(self.dropped.items()))
            )
        return "\n".join(lines)


def _parse_flag(value: str | None, where: str) -> bool:
    text = (value or "").strip().lower()
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    raise DatasetError(f"{where}: 'augmented' must be 0 or 1, not '{value}'")


def _parse_ga(value: str | None, where: str) -> float | None:
    text = (value or "").strip()
    if not text:
        return None
    try:
        ga = float(text)
    except ValueError as exc:
        raise DatasetError(f"{where}: gestational_age_weeks '{value}' is not a number") from exc
    return None if math.isnan(ga) else ga


def read_manifest(csv_path: str | os.PathLike[str]) -> list[Sample]:
    """Samples of a CSV manifest (labels not yet mapped)."""
    csv_path = Path(csv_path)
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise DatasetError(f"cannot read manifest '{csv_path}': {exc}") from exc
    if not rows:
        raise DatasetError(f"manifest '{csv_path}' has no rows")
    missing = {"file", "label", "group"} - set(rows[0])
    if missing:
        raise DatasetError(
            f"manifest '{csv_path}' lacks the column(s) {sorted(missing)}: it needs file, label, group "
            "(and optionally gestational_age_weeks, augmented)"
        )
    samples = []
    for line, row in enumerate(rows, start=2):
        where = f"{csv_path.name} line {line}"
        file, label, group = (row.get(k, "").strip() for k in ("file", "label", "group"))
        if not file or not label or not group:
            raise DatasetError(f"{where}: file, label and group must all be given")
        path = Path(file) if Path(file).is_absolute() else csv_path.parent / file
        samples.append(
            Sample(
                file,
                path,
                label,
                group,
                _parse_flag(row.get("augmented"), where),
                _parse_ga(row.get("gestational_age_weeks"), where),
                label,
            )
        )
    return samples


def read_folders(root: str | os.PathLike[str]) -> list[Sample]:
    """Samples of ``ROOT/<class>/<patient-or-exam>/...`` (labels not yet mapped). The files of a patient
    folder are what the app would open from it (``sources.expand_paths``: recursive, hidden files
    skipped, DICOM without an extension recognised)."""
    from fetalcns_core.sources import SUPPORTED, expand_paths

    root = Path(root)
    samples: list[Sample] = []
    loose: list[Path] = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for entry in sorted(class_dir.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_file():
                if entry.suffix.lower() in SUPPORTED:
                    loose.append(entry)
                continue
            for path in expand_paths([entry]):
                rel = path.relative_to(root).as_posix()
                # the folder name alone is the group: one patient id under two classes stays one group
                samples.append(Sample(rel, path, class_dir.name, entry.name, original_label=class_dir.name))
    if loose:
        raise DatasetError(
            f"{len(loose)} file(s) lie directly in a class folder with no patient or exam folder (e.g. "
            f"'{loose[0]}'): move each into ROOT/<class>/<patient-or-exam>/ so that splits can keep a "
            "patient's images together"
        )
    if not samples:
        raise DatasetError(
            f"no images, videos or DICOM files found under '{root}': expected ROOT/<class>/<patient>/<files>"
        )
    return samples


def build_index(
    data: str | os.PathLike[str],
    label_map: LabelMap | None = None,
    normal_class: str | None = None,
    check_files: bool = True,
) -> DatasetIndex:
    """Read a folder tree or a CSV manifest, apply the label map, and fix the class order."""
    data = Path(data)
    label_map = label_map or LabelMap()
    if data.is_dir():
        raw = read_folders(data)
    elif data.is_file():
        raw = read_manifest(data)
    else:
        raise DatasetError(
            f"training data '{data}' does not exist: give a class folder tree or a CSV manifest"
        )
    unknown = set(label_map.mapping) - {s.label for s in raw}
    if unknown:
        log.warning("label map names labels that the data does not have: %s", sorted(unknown))
    samples, dropped = [], Counter()
    for s in raw:
        new = label_map.apply(s.label)
        if new is None:
            dropped[s.label] += 1
            continue
        samples.append(Sample(s.file, s.path, new, s.group, s.augmented, s.gestational_age_weeks, s.label))
    if not samples:
        raise DatasetError("the label map drops every file: nothing is left to train on")
    present = sorted({s.label for s in samples})
    classes = _class_order(present, label_map)
    if check_files:
        absent = [s for s in samples if not s.path.is_file()]
        if absent:
            raise DatasetError(
                f"{len(absent)} file(s) named by the data do not exist, e.g. '{absent[0].path}': "
                "fix the manifest's paths (relative to the CSV's folder) or restore the files"
            )
    labels_of_group: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        labels_of_group[s.group].add(s.label)
    mixed = {g: sorted(v) for g, v in labels_of_group.items() if len(v) > 1}
    if mixed:
        log.warning("%d group(s) hold more than one label, e.g. %s", len(mixed), next(iter(mixed.items())))
    normal = normal_class or label_map.normal or ("normal" if "normal" in classes else classes[0])
    if normal not in classes:
        raise DatasetError(f"normal class '{normal}' is not one of the classes {classes}: set --normal-class")
    names = [label_map.names.get(c, c.replace("-", " ").replace("_", " ").capitalize()) for c in classes]
    return DatasetIndex(samples, classes, names, normal, label_map, str(data), dict(dropped))


def _class_order(present: list[str], label_map: LabelMap) -> list[str]:
    if label_map.order is None:
        return present
    missing = [c for c in present if c not in label_map.order]
    if missing:
        raise DatasetError(f"the label map's 'order' lacks the class(es) {missing}: list every class once")
    empty = [c for c in label_map.order if c not in present]
    if empty:
        raise DatasetError(f"the label map's 'order' lists class(es) with no files: {empty}")
    return list(label_map.order)


def check_groups(index: DatasetIndex, min_groups: int, scheme: str) -> None:
    """Refuse (``DatasetError`` with the reason) if a class has too few groups for the split."""
    short = {c: n.groups for c, n in index.counts().items() if n.groups < min_groups}
    if short:
        detail = ", ".join(f"{c} ({n})" for c, n in sorted(short.items()))
        raise DatasetError(
            f"every class needs at least {min_groups} groups (patients/exams) for {scheme}; "
            f"too few: {detail}. Merge or drop these classes with --label-map, or use fewer folds (--folds)"
        )


def check_duplicates(samples: list[Sample], sha256: Mapping[str, str]) -> None:
    """Refuse byte-identical files in different groups: a group split could not keep them apart."""
    seen: dict[str, Sample] = {}
    for s in samples:
        digest = sha256[s.file]
        first = seen.setdefault(digest, s)
        if first.group != s.group:
            raise DatasetError(
                f"'{first.file}' (group {first.group}) and '{s.file}' (group {s.group}) are the same file: "
                "a test patient would be seen in training. Remove one copy or give both the same group"
            )
