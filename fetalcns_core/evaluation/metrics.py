"""Classification metrics on weighted samples, vectorised over bootstrap resamples.

Every function takes a weight matrix ``weights`` of shape (B, N): row b gives each of the N samples its
multiplicity in resample b (all ones for the data as it is). A group bootstrap is then a weight matrix,
and the figure on the data and its resamples come from the same code. Definitions follow scikit-learn:

- ROC AUC: area under the ROC curve with ties counted one half (the Mann–Whitney statistic), as
  ``roc_auc_score``;
- PR AUC: average precision, ``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds, as
  ``average_precision_score`` (no interpolation);
- macro precision/recall/F1 over the classes present in the truth or the predictions, an undefined
  ratio counting 0, as ``precision_recall_fscore_support(average="macro")``;
- balanced accuracy: mean recall over the classes present in the truth, as ``balanced_accuracy_score``.

An undefined figure is NaN here (the caller reports it as null with its reason).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ranking:
    """Samples sorted by score (ascending) with the blocks of tied scores."""

    order: np.ndarray  # (N,) indices that sort the scores ascending
    starts: np.ndarray  # (M,) start of each block of equal scores in the sorted order
    values: np.ndarray  # (M,) the score of each block

    @classmethod
    def of(cls, scores: np.ndarray) -> Ranking:
        scores = np.asarray(scores, dtype=np.float64)
        order = np.argsort(scores, kind="mergesort")
        s = scores[order]
        if s.size == 0:
            return cls(order, np.zeros(0, dtype=np.int64), s)
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        return cls(order, starts, s[starts])

    def block_sums(self, weights: np.ndarray) -> np.ndarray:
        """(B, N) per-sample weights → (B, M) summed per block of tied scores, ascending score."""
        if self.starts.size == 0:
            return np.zeros((weights.shape[0], 0))
        return np.add.reduceat(weights[:, self.order], self.starts, axis=1)


def ratio(num: np.ndarray, den: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """num / den where den > 0, else ``fill`` (NaN: undefined)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, fill, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def auc_from_blocks(pos_b: np.ndarray, neg_b: np.ndarray) -> np.ndarray:
    """ROC AUC from positive and negative weights per score block (B, M), blocks in ascending score."""
    P = pos_b.sum(axis=1)
    N = neg_b.sum(axis=1)
    neg_below = np.cumsum(neg_b, axis=1) - neg_b
    u = (pos_b * (neg_below + 0.5 * neg_b)).sum(axis=1)
    return ratio(u, P * N)


def ap_from_blocks(pos_b: np.ndarray, neg_b: np.ndarray) -> np.ndarray:
    """Average precision from weights per score block (B, M), blocks in ascending score."""
    tp = np.cumsum(pos_b[:, ::-1], axis=1)
    fp = np.cumsum(neg_b[:, ::-1], axis=1)
    P = tp[:, -1:] if tp.shape[1] else np.zeros((pos_b.shape[0], 1))
    precision = ratio(tp, tp + fp, fill=0.0)
    recall = ratio(tp, P, fill=0.0)
    d_recall = np.diff(recall, axis=1, prepend=0.0)
    ap = (d_recall * precision).sum(axis=1)
    return np.where(P[:, 0] > 0, ap, np.nan)


def weighted_auc(weights: np.ndarray, positive: np.ndarray, ranking: Ranking) -> np.ndarray:
    """ROC AUC of ``positive`` (N,) bool against the ranked scores, one value per row of weights."""
    pos = weights * positive
    neg = weights * ~positive
    return auc_from_blocks(ranking.block_sums(pos), ranking.block_sums(neg))


def weighted_ap(weights: np.ndarray, positive: np.ndarray, ranking: Ranking) -> np.ndarray:
    pos = weights * positive
    neg = weights * ~positive
    return ap_from_blocks(ranking.block_sums(pos), ranking.block_sums(neg))


def confusion(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(B, K, K) weighted confusion matrices, rows = truth, columns = prediction."""
    cell = np.asarray(y_true) * n_classes + np.asarray(y_pred)
    onehot = np.zeros((len(cell), n_classes * n_classes))
    onehot[np.arange(len(cell)), cell] = 1.0
    return (weights @ onehot).reshape(weights.shape[0], n_classes, n_classes)


def from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """The label metrics of (B, K, K) confusion matrices; per-class arrays are (B, K)."""
    tp = np.diagonal(cm, axis1=1, axis2=2)
    support = cm.sum(axis=2)  # true count per class
    predicted = cm.sum(axis=1)
    total = cm.sum(axis=(1, 2))
    fp = predicted - tp
    fn = support - tp
    tn = total[:, None] - tp - fp - fn
    recall = ratio(tp, support)
    precision = ratio(tp, predicted)
    f1 = ratio(2 * tp, 2 * tp + fp + fn)
    specificity = ratio(tn, tn + fp)
    in_truth = support > 0
    in_either = in_truth | (predicted > 0)
    n_either = in_either.sum(axis=1)
    n_truth = in_truth.sum(axis=1)

    def macro(values: np.ndarray, mask: np.ndarray, count: np.ndarray) -> np.ndarray:
        return ratio(np.where(mask, np.nan_to_num(values, nan=0.0), 0.0).sum(axis=1), count)

    return {
        "accuracy": ratio(tp.sum(axis=1), total),
        "balanced_accuracy": macro(recall, in_truth, n_truth),
        "macro_precision": macro(precision, in_either, n_either),
        "macro_recall": macro(recall, in_either, n_either),
        "macro_f1": macro(f1, in_either, n_either),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "specificity": specificity,
    }


def binary_at_threshold(
    weights: np.ndarray, positive: np.ndarray, called: np.ndarray
) -> dict[str, np.ndarray]:
    """Sensitivity, specificity, PPV and NPV of calls (N,) bool against truth (N,) bool."""
    tp = weights @ (positive & called).astype(np.float64)
    fn = weights @ (positive & ~called).astype(np.float64)
    tn = weights @ (~positive & ~called).astype(np.float64)
    fp = weights @ (~positive & called).astype(np.float64)
    return {
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "ppv": ratio(tp, tp + fp),
        "npv": ratio(tn, tn + fn),
        "tp": tp,
        "fn": fn,
        "tn": tn,
        "fp": fp,
    }


def calibration_bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bins over [0, 1]: bin m holds (m/M, (m+1)/M]; a confidence of 0 falls in the first."""
    idx = np.ceil(np.asarray(confidence, dtype=np.float64) * n_bins).astype(np.int64) - 1
    return np.clip(idx, 0, n_bins - 1)


def ece(weights: np.ndarray, confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> np.ndarray:
    """Expected calibration error of the top class: sum_m (n_m / n) |accuracy_m - confidence_m|."""
    onehot = np.zeros((len(confidence), n_bins))
    onehot[np.arange(len(confidence)), calibration_bin_index(confidence, n_bins)] = 1.0
    conf_sum = weights @ (onehot * np.asarray(confidence, dtype=np.float64)[:, None])
    acc_sum = weights @ (onehot * np.asarray(correct, dtype=np.float64)[:, None])
    return ratio(np.abs(acc_sum - conf_sum).sum(axis=1), weights.sum(axis=1))


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int
) -> list[dict[str, float | int]]:
    """Per-bin count, mean confidence and accuracy (the reliability diagram's points)."""
    idx = calibration_bin_index(confidence, n_bins)
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    out: list[dict[str, float | int]] = []
    for m in range(n_bins):
        sel = idx == m
        n = int(sel.sum())
        out.append(
            {
                "low": m / n_bins,
                "high": (m + 1) / n_bins,
                "n": n,
                "confidence": float(confidence[sel].mean()) if n else None,
                "accuracy": float(correct[sel].mean()) if n else None,
            }
        )
    return out


def youden_threshold(scores: np.ndarray, positive: np.ndarray) -> dict[str, float] | None:
    """The score threshold (call positive when score >= threshold) that maximises sensitivity +
    specificity - 1 on these data; the highest such threshold on ties. None when a class is absent."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranking = Ranking.of(scores)
    ones = np.ones((1, len(scores)))
    pos_b = ranking.block_sums(ones * positive)[0][::-1]  # descending score
    neg_b = ranking.block_sums(ones * ~positive)[0][::-1]
    tpr = np.cumsum(pos_b) / n_pos
    fpr = np.cumsum(neg_b) / n_neg
    j = tpr - fpr
    best = int(np.argmax(j))
    return {
        "threshold": float(ranking.values[::-1][best]),
        "sensitivity": float(tpr[best]),
        "specificity": float(1.0 - fpr[best]),
        "youden_j": float(j[best]),
    }


# ----------------------------------------------------------------- plain forms (one sample set, no weights)


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    positive = np.asarray(positive, dtype=bool)
    return float(weighted_auc(np.ones((1, len(positive))), positive, Ranking.of(scores))[0])


def average_precision(positive: np.ndarray, scores: np.ndarray) -> float:
    positive = np.asarray(positive, dtype=bool)
    return float(weighted_ap(np.ones((1, len(positive))), positive, Ranking.of(scores))[0])


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    probs = np.asarray(probs, dtype=np.float64)
    pred = probs.argmax(axis=1)
    conf = probs[np.arange(len(pred)), pred]
    return float(ece(np.ones((1, len(pred))), conf, pred == np.asarray(labels), n_bins)[0])


# ----------------------------------------------------------------------------------- curves for plots


def _descending_counts(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ranking = Ranking.of(scores)
    ones = np.ones((1, len(positive)))
    tps = np.cumsum(ranking.block_sums(ones * positive)[0][::-1])
    fps = np.cumsum(ranking.block_sums(ones * ~positive)[0][::-1])
    return tps, fps, ranking.values[::-1]


def roc_points(positive: np.ndarray, scores: np.ndarray) -> dict[str, list[float]] | None:
    """ROC curve corners from (0, 0) (collinear points dropped, as scikit-learn's ``drop_intermediate``);
    ``thresholds[i]`` calls positive when score >= it (the first is +inf). None when a class is absent."""
    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return None
    tps, fps, thr = _descending_counts(positive, scores)
    if len(tps) > 2:
        keep = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        tps, fps, thr = tps[keep], fps[keep], thr[keep]
    tps, fps, thr = np.r_[0.0, tps], np.r_[0.0, fps], np.r_[np.inf, thr]
    return {
        "fpr": (fps / fps[-1]).tolist(),
        "tpr": (tps / tps[-1]).tolist(),
        "thresholds": [None if not np.isfinite(t) else float(t) for t in thr],
    }


def pr_points(positive: np.ndarray, scores: np.ndarray) -> dict[str, list[float]] | None:
    """The precision-recall steps whose area is the average precision: one point per threshold at which
    recall grows, from high to low threshold. None when no sample is positive."""
    positive = np.asarray(positive, dtype=bool)
    if not positive.any():
        return None
    tps, fps, _ = _descending_counts(positive, scores)
    grows = np.diff(tps, prepend=0.0) > 0
    return {
        "recall": (tps[grows] / tps[-1]).tolist(),
        "precision": (tps[grows] / (tps[grows] + fps[grows])).tolist(),
    }
