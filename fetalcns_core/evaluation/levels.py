"""The two levels of evaluation, images and exams, and every figure of one level as a function of weights.

An exam is a group (case) of the table; its probabilities are the mean of its images' probabilities
(the paper's rule, as ``fetalcns_core.exam.diagnose``), its majority vote the most frequent top class of
its images (ties to the class with the higher mean probability). A group whose images carry different
labels cannot be one exam with one truth: it is split into one exam per label (and reported).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from fetalcns_core.evaluation import metrics as M
from fetalcns_core.evaluation.table import PredictionTable

log = logging.getLogger(__name__)


@dataclass
class Units:
    """What one level evaluates: N units (images or exams) with truth, scores and group membership."""

    ids: list[str]
    labels: np.ndarray  # (N,) int
    probs: np.ndarray  # (N, K)
    group_index: np.ndarray  # (N,) int, index into the table's sorted group list
    ga_weeks: np.ndarray  # (N,) float, NaN unknown
    majority: np.ndarray | None = None  # (N,) int, exams only
    n_images: np.ndarray | None = None  # (N,) int, exams only
    mixed_label_groups: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, mask: np.ndarray) -> Units:
        idx = np.flatnonzero(mask)
        return Units(
            ids=[self.ids[i] for i in idx],
            labels=self.labels[idx],
            probs=self.probs[idx],
            group_index=self.group_index[idx],
            ga_weeks=self.ga_weeks[idx],
            majority=None if self.majority is None else self.majority[idx],
            n_images=None if self.n_images is None else self.n_images[idx],
        )


def group_list(table: PredictionTable) -> list[str]:
    return sorted(set(table.groups))


def image_units(table: PredictionTable, groups: list[str]) -> Units:
    where = {g: i for i, g in enumerate(groups)}
    return Units(
        ids=table.unit_ids(),
        labels=table.labels.copy(),
        probs=table.probs.copy(),
        group_index=np.array([where[g] for g in table.groups], dtype=np.int64),
        ga_weeks=table.ga_weeks.copy(),
    )


def majority_vote(probs: np.ndarray) -> int:
    """Most frequent top class of the frames; a tie goes to the class with the higher mean probability."""
    probs = np.asarray(probs, dtype=np.float64)
    votes = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1])
    mean = probs.mean(axis=0)
    return int(max(range(probs.shape[1]), key=lambda k: (votes[k], mean[k])))


def _exam_ga(values: np.ndarray, exam_id: str) -> float:
    known = values[~np.isnan(values)]
    if known.size == 0:
        return math.nan
    if np.unique(known).size > 1:
        log.warning("exam '%s' has different gestational ages %s; using their median", exam_id, known)
    return float(np.median(known))


def exam_units(table: PredictionTable, groups: list[str]) -> Units:
    """One unit per group (per group and label when a group mixes labels), mean of its images."""
    where = {g: i for i, g in enumerate(groups)}
    members: dict[tuple[str, int], list[int]] = {}
    for i, (g, y) in enumerate(zip(table.groups, table.labels, strict=True)):
        members.setdefault((g, int(y)), []).append(i)
    labels_per_group: dict[str, set[int]] = {}
    for g, y in members:
        labels_per_group.setdefault(g, set()).add(y)
    mixed = sorted(g for g, ys in labels_per_group.items() if len(ys) > 1)
    if mixed:
        log.warning(
            "%d group(s) hold images of different labels and are split into one exam per label: %s",
            len(mixed),
            mixed[:10],
        )
    ids, labels, probs, gidx, ga, vote, n_img = [], [], [], [], [], [], []
    for (g, y), rows in sorted(members.items()):
        exam_id = g if g not in mixed else f"{g} [{table.classes[y]}]"
        p = table.probs[rows]
        ids.append(exam_id)
        labels.append(y)
        probs.append(p.mean(axis=0))
        gidx.append(where[g])
        ga.append(_exam_ga(table.ga_weeks[rows], exam_id))
        vote.append(majority_vote(p))
        n_img.append(len(rows))
    return Units(
        ids=ids,
        labels=np.array(labels, dtype=np.int64),
        probs=np.array(probs, dtype=np.float64).reshape(len(ids), len(table.classes)),
        group_index=np.array(gidx, dtype=np.int64),
        ga_weeks=np.array(ga, dtype=np.float64),
        majority=np.array(vote, dtype=np.int64),
        n_images=np.array(n_img, dtype=np.int64),
        mixed_label_groups=mixed,
    )


class LevelMetrics:
    """All figures of one level as functions of the units' weights (B, N)."""

    def __init__(
        self,
        units: Units,
        classes: list[str],
        normal_index: int | None,
        threshold: float,
        n_bins: int,
        use_vote: bool = False,
        light: bool = False,
    ) -> None:
        self.units = units
        self.classes = classes
        self.K = len(classes)
        self.normal_index = normal_index
        self.threshold = threshold
        self.n_bins = n_bins
        self.scored = not use_vote
        self.light = light  # subgroups: per-class and macro ROC AUC only (no PR AUC, micro, ECE)
        y = units.labels
        if use_vote:
            if units.majority is None:
                raise ValueError("a majority vote needs exam units")
            self.pred = units.majority
        else:
            self.pred = units.probs.argmax(axis=1)
        self.onehot = y[:, None] == np.arange(self.K)[None, :]
        present = self.onehot.any(axis=0)
        self.auc_classes = [k for k in range(self.K) if present[k] and not self.onehot[:, k].all()]
        if self.scored:
            self.rank = [M.Ranking.of(units.probs[:, k]) for k in range(self.K)]
            self.micro_rank = M.Ranking.of(units.probs.ravel())
            self.confidence = units.probs[np.arange(len(y)), self.pred] if len(y) else np.zeros(0)
            self.true_prob = units.probs[np.arange(len(y)), y] if len(y) else np.zeros(0)
        if normal_index is not None:
            self.abnormal = y != normal_index
            if self.scored:
                self.abnormal_score = 1.0 - units.probs[:, normal_index]
                self.abnormal_rank = M.Ranking.of(self.abnormal_score)
                self.called = self.abnormal_score >= threshold
            else:
                self.called = self.pred != normal_index

    def weights_from(self, group_counts: np.ndarray) -> np.ndarray:
        """(B, G) resample counts of the groups → (B, N) weights of this level's units."""
        return group_counts[:, self.units.group_index].astype(np.float64)

    def compute(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Every figure for each row of weights; NaN where a figure is undefined in that row."""
        y = self.units.labels
        out: dict[str, np.ndarray] = {}
        cm = M.confusion(weights, y, self.pred, self.K)
        label = M.from_confusion(cm)
        for key in ("accuracy", "balanced_accuracy", "macro_precision", "macro_recall", "macro_f1"):
            out[key] = label[key]
        for k, cls in enumerate(self.classes):
            for key in ("precision", "recall", "f1", "specificity"):
                out[f"{key}/{cls}"] = label[key][:, k]
        if self.scored:
            aucs, aps = [], []
            for k, cls in enumerate(self.classes):
                pos_b = self.rank[k].block_sums(weights * self.onehot[:, k])
                neg_b = self.rank[k].block_sums(weights * ~self.onehot[:, k])
                out[f"roc_auc/{cls}"] = M.auc_from_blocks(pos_b, neg_b)
                aucs.append(out[f"roc_auc/{cls}"])
                if not self.light:
                    out[f"pr_auc/{cls}"] = M.ap_from_blocks(pos_b, neg_b)
                    aps.append(out[f"pr_auc/{cls}"])
            nan = np.full(weights.shape[0], np.nan)
            # macro over the classes present in these data; a resample that lacks one is undefined
            sel = self.auc_classes
            out["roc_auc_macro"] = np.mean([aucs[k] for k in sel], axis=0) if sel else nan
            out["mean_true_class_prob"] = M.ratio(weights @ self.true_prob, weights.sum(axis=1))
        if self.scored and not self.light:
            out["pr_auc_macro"] = np.mean([aps[k] for k in sel], axis=0) if sel else nan
            weights_k = np.repeat(weights, self.K, axis=1)
            flat = self.onehot.ravel()
            out["roc_auc_micro"] = M.weighted_auc(weights_k, flat, self.micro_rank)
            out["pr_auc_micro"] = M.weighted_ap(weights_k, flat, self.micro_rank)
            out["ece"] = M.ece(weights, self.confidence, self.pred == y, self.n_bins)
        if self.normal_index is not None:
            if self.scored:
                out["nva_auroc"] = M.weighted_auc(weights, self.abnormal, self.abnormal_rank)
            binary = M.binary_at_threshold(weights, self.abnormal, self.called)
            for key in ("sensitivity", "specificity", "ppv", "npv"):
                out[f"nva_{key}"] = binary[key]
        return out

    def confusion_counts(self) -> np.ndarray:
        return M.confusion(np.ones((1, len(self.units))), self.units.labels, self.pred, self.K)[0]
