"""Group splits: no group in two of train / validation / test, every group tested exactly once."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from fetalcns_core.training.dataset import LabelMap
from fetalcns_core.training.splits import (
    FoldSplit,
    SplitError,
    assignment,
    check_splits,
    group_labels,
    held_out_folds,
    make_splits,
    validation_groups,
)

CLASSES = ["normal", "a", "b"]


def toy_groups(seed: int = 0, sizes: tuple[int, ...] = (12, 7, 5)) -> dict[str, str]:
    rng = random.Random(seed)
    out = {}
    for cls, n in zip(CLASSES, sizes, strict=True):
        for i in range(n):
            out[f"{cls}-p{i:02d}-{rng.randint(0, 999)}"] = cls
    return out


def assert_disjoint(splits: list[FoldSplit], groups: set[str]) -> None:
    tested = Counter()
    for s in splits:
        train, val, test = set(s.train), set(s.val), set(s.test)
        assert not train & val and not train & test and not val & test
        assert train | val | test == groups
        tested.update(test)
    assert set(tested) == groups and set(tested.values()) == {1}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_folds", [2, 3, 5])
def test_kfold_keeps_every_group_in_one_role_per_fold(seed: int, n_folds: int) -> None:
    groups = toy_groups(seed)
    splits = make_splits(groups, CLASSES, "kfold", n_folds, val_fraction=0.2, seed=seed)
    assert len(splits) == n_folds
    assert_disjoint(splits, set(groups))


def test_kfold_is_stratified_by_group_label() -> None:
    groups = toy_groups(sizes=(10, 5, 5))
    folds = held_out_folds(groups, CLASSES, "kfold", 5, seed=1)
    for fold in folds:
        per_class = Counter(groups[g] for g in fold)
        assert per_class == {"normal": 2, "a": 1, "b": 1}


def test_logo_holds_out_one_group_per_fold() -> None:
    groups = toy_groups(sizes=(4, 3, 3))
    splits = make_splits(groups, CLASSES, "logo", val_fraction=0.3, seed=0)
    assert len(splits) == len(groups)
    assert all(len(s.test) == 1 for s in splits)
    assert_disjoint(splits, set(groups))


def test_validation_takes_groups_of_each_class_but_leaves_one_for_training() -> None:
    groups = {
        "n1": "normal",
        "n2": "normal",
        "n3": "normal",
        "n4": "normal",
        "n5": "normal",
        "a1": "a",
        "a2": "a",
        "b1": "b",
    }
    val = validation_groups(sorted(groups), groups, CLASSES, fraction=0.2, seed=0)
    per_class = Counter(groups[g] for g in val)
    assert per_class == {"normal": 1, "a": 1}  # b has one group: it stays in training


def test_splits_are_reproducible_from_the_seed() -> None:
    groups = toy_groups()
    a = make_splits(groups, CLASSES, "kfold", 3, seed=7)
    b = make_splits(groups, CLASSES, "kfold", 3, seed=7)
    c = make_splits(groups, CLASSES, "kfold", 3, seed=8)
    assert a == b and a != c
    record = json.loads(json.dumps(assignment(a)))
    assert record["group_test_fold"] == {g: s.fold for s in a for g in s.test}
    assert [FoldSplit.from_dict(s.to_dict()) for s in a] == a


def test_a_leak_is_detected() -> None:
    leaky = [FoldSplit(0, ("a", "b"), ("c",), ("b", "d")), FoldSplit(1, ("b", "c"), ("a",), ("d",))]
    with pytest.raises(SplitError, match="train and test"):
        check_splits(leaky, "abcd")
    twice = [FoldSplit(0, ("a", "b"), ("c",), ("d",)), FoldSplit(1, ("a", "b"), ("c",), ("d",))]
    with pytest.raises(SplitError, match="exactly once"):
        check_splits(twice, "abcd")


def test_group_label_prefers_non_augmented_files() -> None:
    pairs = [("g1", "a", True), ("g1", "a", True), ("g1", "b", False), ("g2", "normal", True)]
    assert group_labels(pairs, CLASSES) == {"g1": "b", "g2": "normal"}


def test_real_manifest_with_five_class_map_splits_cleanly(shared_data: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    mapping = LabelMap.load(root / "resources/label-maps/fetal-brain-us-5class.json").mapping
    with (shared_data / "fetal-brain-us" / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    classes = sorted(set(mapping.values()))
    groups = group_labels(((r["group"], mapping[r["label"]], r["augmented"] == "1") for r in rows), classes)
    splits = make_splits(groups, classes, "kfold", 5, seed=0)
    assert_disjoint(splits, set(groups))
    for s in splits:  # every class is tested in every fold
        assert {groups[g] for g in s.test} == set(classes)
