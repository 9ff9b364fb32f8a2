"""Splits by group (patient or exam) only: test folds, and inside each fold a validation set of groups.

Each fold has three disjoint sets of groups: ``train`` (fits the weights), ``val`` (drives early
stopping, the choice of the fold's best epoch and the temperature) and ``test`` (held out: only ever
predicted, to give the out-of-fold predictions). No group of the test fold can reach the choice of
the model, so the best epoch can never be picked on the held-out patients.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

SCHEMES = ("kfold", "logo")


class SplitError(ValueError):
    """The splits are impossible or leak a group between train, validation and test."""


@dataclass(frozen=True)
class FoldSplit:
    fold: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def role(self, group: str) -> str | None:
        """'train', 'val', 'test', or None for a group outside this fold."""
        for name in ("train", "val", "test"):
            if group in getattr(self, name):
                return name
        return None

    def to_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> FoldSplit:
        return cls(int(data["fold"]), *(tuple(data[k]) for k in ("train", "val", "test")))  # type: ignore[arg-type]


def group_labels(pairs: Iterable[tuple[str, str, bool]], classes: Sequence[str]) -> dict[str, str]:
    """The label of each group from ``(group, label, augmented)``: the most common among its
    non-augmented files (all files when it has none); ties go to the earlier class."""
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    votes_aug: dict[str, Counter[str]] = defaultdict(Counter)
    for group, label, augmented in pairs:
        (votes_aug if augmented else votes)[group][label] += 1
    out = {}
    for group in sorted(set(votes) | set(votes_aug)):
        count = votes.get(group) or votes_aug[group]
        out[group] = max(count, key=lambda c: (count[c], -classes.index(c)))
    return out


def _by_class(group_label: Mapping[str, str], classes: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {c: [] for c in classes}
    for group in sorted(group_label):
        out[group_label[group]].append(group)
    return out


def held_out_folds(
    group_label: Mapping[str, str],
    classes: Sequence[str],
    scheme: str = "kfold",
    n_folds: int = 5,
    seed: int = 0,
) -> list[list[str]]:
    """The test groups of each fold.

    ``kfold``: stratified grouped K-fold; each class's groups, shuffled with ``seed``, are dealt round
    the folds, each class starting where the previous one stopped, so folds get alike numbers of groups
    of every class. ``logo``: leave one group out, one fold per group (the study's scheme).
    """
    if scheme == "logo":
        return [[g] for g in sorted(group_label)]
    if scheme != "kfold":
        raise SplitError(f"unknown split scheme '{scheme}': use one of {SCHEMES}")
    if n_folds < 2:
        raise SplitError(f"K-fold needs at least 2 folds, got {n_folds}")
    if len(group_label) < n_folds:
        raise SplitError(f"{len(group_label)} groups cannot fill {n_folds} folds: use fewer folds")
    rng = random.Random(seed)
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    slot = 0
    by_class = _by_class(group_label, classes)
    for cls in classes:
        groups = by_class[cls]
        rng.shuffle(groups)
        for group in groups:
            folds[slot % n_folds].append(group)
            slot += 1
    return [sorted(f) for f in folds]


def validation_groups(
    train_groups: Sequence[str],
    group_label: Mapping[str, str],
    classes: Sequence[str],
    fraction: float,
    seed: int,
) -> list[str]:
    """Groups moved from training to validation: about ``fraction`` of each class's groups, at least one
    when the class has two or more, none when it has one (that group must stay in training)."""
    if not 0 < fraction < 1:
        raise SplitError(f"the validation fraction must be in (0, 1), got {fraction}")
    rng = random.Random(seed)
    chosen: list[str] = []
    by_class = _by_class({g: group_label[g] for g in train_groups}, classes)
    for cls in classes:
        groups = by_class[cls]
        if len(groups) < 2:
            continue
        n_val = min(max(1, round(fraction * len(groups))), len(groups) - 1)
        chosen += rng.sample(groups, n_val)
    return sorted(chosen)


def make_splits(
    group_label: Mapping[str, str],
    classes: Sequence[str],
    scheme: str = "kfold",
    n_folds: int = 5,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> list[FoldSplit]:
    """Every fold's train / validation / test groups; checked with :func:`check_splits`."""
    splits = []
    everything = sorted(group_label)
    for k, test in enumerate(held_out_folds(group_label, classes, scheme, n_folds, seed)):
        held = set(test)
        rest = [g for g in everything if g not in held]
        val = validation_groups(rest, group_label, classes, val_fraction, seed=seed * 100_003 + k)
        train = [g for g in rest if g not in set(val)]
        splits.append(FoldSplit(k, tuple(train), tuple(val), tuple(sorted(test))))
    check_splits(splits, everything)
    return splits


def check_splits(splits: Sequence[FoldSplit], groups: Iterable[str]) -> None:
    """Raise ``SplitError`` unless, in every fold, no group is in two of train / validation / test, and
    the test folds together hold every group exactly once."""
    everything = set(groups)
    tested: Counter[str] = Counter()
    for s in splits:
        train, val, test = set(s.train), set(s.val), set(s.test)
        for a, b, name in (
            (train, val, "train and validation"),
            (train, test, "train and test"),
            (val, test, "validation and test"),
        ):
            if a & b:
                raise SplitError(f"fold {s.fold}: group(s) {sorted(a & b)[:3]} are in both {name}")
        if (train | val | test) != everything:
            raise SplitError(f"fold {s.fold} does not cover every group exactly")
        if not train:
            raise SplitError(f"fold {s.fold} has no training groups")
        tested.update(test)
    if set(tested) != everything or any(n != 1 for n in tested.values()):
        raise SplitError("the test folds must hold every group exactly once")


def assignment(splits: Sequence[FoldSplit]) -> dict[str, object]:
    """For run.json: each group's test fold, and each fold's validation groups."""
    return {
        "group_test_fold": {g: s.fold for s in splits for g in s.test},
        "validation_groups": {str(s.fold): list(s.val) for s in splits},
    }
