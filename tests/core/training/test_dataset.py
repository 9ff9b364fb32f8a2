"""Reading training data: folder layout, CSV manifest, label map, the report and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fetalcns_core.training.dataset import (
    DatasetError,
    LabelMap,
    build_index,
    check_duplicates,
    check_groups,
    read_manifest,
)
from tests.core.training.toy import make_toy_dataset


def test_folder_layout_gives_class_group_and_file(tmp_path: Path) -> None:
    root = make_toy_dataset(tmp_path / "data", groups_per_class=2, images_per_group=2)
    index = build_index(root)
    assert index.classes == ["checker", "normal", "stripes-v"]
    assert index.normal_class == "normal"
    assert len(index.samples) == 12
    s = index.samples[0]
    assert s.file == "checker/checker-patient00/img-0.png" and s.group == "checker-patient00"
    counts = index.counts()
    assert (
        counts["normal"].images == 4 and counts["normal"].groups == 2 and counts["normal"].non_augmented == 4
    )


def test_files_outside_a_patient_folder_are_refused(tmp_path: Path) -> None:
    root = make_toy_dataset(tmp_path / "data", groups_per_class=1, images_per_group=1)
    (root / "normal" / "loose.png").write_bytes((root / "normal/normal-patient00/img-0.png").read_bytes())
    with pytest.raises(DatasetError, match="patient or exam folder"):
        build_index(root)


def test_manifest_columns_and_relative_paths(tmp_path: Path) -> None:
    root = make_toy_dataset(tmp_path / "data", groups_per_class=1, images_per_group=2)
    csv_path = tmp_path / "data" / "manifest.csv"
    csv_path.write_text(
        "file,label,group,augmented,gestational_age_weeks\n"
        "normal/normal-patient00/img-0.png,normal,P1,0,21.5\n"
        "normal/normal-patient00/img-1.png,normal,P1,1,\n"
        "checker/checker-patient00/img-0.png,checker,P2,,\n"
    )
    samples = read_manifest(csv_path)
    assert [s.augmented for s in samples] == [False, True, False]
    assert samples[0].gestational_age_weeks == 21.5 and samples[1].gestational_age_weeks is None
    assert samples[0].path == root / "normal/normal-patient00/img-0.png"
    (tmp_path / "bad.csv").write_text("file,label\nx.png,normal\n")
    with pytest.raises(DatasetError, match="group"):
        read_manifest(tmp_path / "bad.csv")
    (tmp_path / "missing.csv").write_text("file,label,group\nnope.png,normal,P1\n")
    with pytest.raises(DatasetError, match="do not exist"):
        build_index(tmp_path / "missing.csv")


def test_label_map_renames_merges_drops_and_orders(tmp_path: Path) -> None:
    root = make_toy_dataset(tmp_path / "data", groups_per_class=1, images_per_group=1)
    flat = LabelMap.from_dict({"stripes-v": "pattern", "checker": "pattern"})
    assert build_index(root, flat).classes == ["normal", "pattern"]
    structured = tmp_path / "map.json"
    structured.write_text(
        json.dumps(
            {
                "map": {"checker": None, "stripes-v": "stripes"},
                "order": ["stripes", "normal"],
                "names": {"stripes": "Striped"},
            }
        )
    )
    index = build_index(root, LabelMap.load(structured))
    assert index.classes == ["stripes", "normal"] and index.class_names[0] == "Striped"
    assert index.dropped == {"checker": 1}
    assert {s.original_label for s in index.samples if s.label == "stripes"} == {"stripes-v"}
    assert "dropped by the label map: checker (1)" in index.report()
    with pytest.raises(DatasetError, match="lacks the class"):
        build_index(root, LabelMap.from_dict({"map": {}, "order": ["normal"]}))
    with pytest.raises(DatasetError, match="drops every file"):
        build_index(root, LabelMap.from_dict({c: None for c in ("normal", "checker", "stripes-v")}))


def test_too_few_groups_for_the_folds_is_refused_with_the_reason(tmp_path: Path) -> None:
    root = make_toy_dataset(tmp_path / "data", groups_per_class=3, images_per_group=1)
    index = build_index(root)
    check_groups(index, 3, "3-fold")
    with pytest.raises(
        DatasetError, match=r"at least 5 groups .* checker \(3\), normal \(3\), stripes-v \(3\)"
    ):
        check_groups(index, 5, "5-fold")


def test_the_same_file_in_two_groups_is_refused(tmp_path: Path) -> None:
    root = make_toy_dataset(tmp_path / "data", groups_per_class=2, images_per_group=1)
    index = build_index(root)
    digests = {s.file: f"sha-{i}" for i, s in enumerate(index.samples)}
    check_duplicates(index.samples, digests)
    a, b = index.samples[0], index.samples[1]
    assert a.group != b.group
    digests[b.file] = digests[a.file]
    with pytest.raises(DatasetError, match="same file"):
        check_duplicates(index.samples, digests)


def test_report_lists_images_non_augmented_and_groups(shared_data: Path) -> None:
    index = build_index(shared_data / "fetal-brain-us" / "manifest.csv", check_files=False)
    report = index.report()
    line = next(ln for ln in report.splitlines() if ln.startswith("normal "))
    assert line.split()[1:] == ["246", "174", "26"]
    with pytest.raises(DatasetError, match="holoprosencephaly"):
        check_groups(index, 5, "5-fold")
