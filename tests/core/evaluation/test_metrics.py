"""The metric functions against scikit-learn on hand-made cases (ties, absent classes, weights)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from fetalcns_core.evaluation import metrics as M

# four classes; class 3 is never the truth, class 2 is never predicted; ties in the scores
Y = np.array([0, 0, 1, 1, 1, 2, 2, 0, 1, 2])
P = np.array(
    [
        [0.7, 0.1, 0.1, 0.1],
        [0.4, 0.4, 0.1, 0.1],
        [0.2, 0.6, 0.1, 0.1],
        [0.1, 0.3, 0.2, 0.4],
        [0.4, 0.4, 0.1, 0.1],
        [0.3, 0.2, 0.25, 0.25],
        [0.1, 0.5, 0.3, 0.1],
        [0.25, 0.25, 0.25, 0.25],
        [0.1, 0.7, 0.1, 0.1],
        [0.5, 0.1, 0.3, 0.1],
    ]
)
PRED = P.argmax(axis=1)
ONES = np.ones((1, len(Y)))


def test_label_metrics_match_sklearn_with_absent_and_unpredicted_classes():
    cm = M.confusion(ONES, Y, PRED, 4)
    assert cm[0].astype(int).tolist() == skm.confusion_matrix(Y, PRED, labels=[0, 1, 2, 3]).tolist()
    got = {k: v[0] for k, v in M.from_confusion(cm).items() if v.ndim == 1}
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(Y, PRED))
    with pytest.warns(UserWarning):
        assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(Y, PRED))
    for avg_key, fn in (
        ("macro_precision", skm.precision_score),
        ("macro_recall", skm.recall_score),
        ("macro_f1", skm.f1_score),
    ):
        assert got[avg_key] == pytest.approx(fn(Y, PRED, average="macro", zero_division=0)), avg_key


def test_per_class_precision_recall_f1_match_sklearn_where_defined():
    label = M.from_confusion(M.confusion(ONES, Y, PRED, 4))
    p, r, f, support = skm.precision_recall_fscore_support(Y, PRED, labels=[0, 1, 2, 3], zero_division=0)
    assert label["recall"][0][:3] == pytest.approx(r[:3])
    assert np.isnan(label["recall"][0][3])  # class 3 is never the truth
    assert np.isnan(label["precision"][0][2])  # class 2 is never predicted
    assert label["precision"][0][[0, 1, 3]] == pytest.approx(p[[0, 1, 3]])
    assert label["f1"][0] == pytest.approx(f)
    tn = (
        len(Y)
        - support
        - (PRED[:, None] == np.arange(4)).sum(axis=0)
        + np.diag(skm.confusion_matrix(Y, PRED))
    )
    assert label["specificity"][0] == pytest.approx(tn / (len(Y) - support))


@pytest.mark.parametrize("k", [0, 1, 2])
def test_per_class_auc_and_average_precision_match_sklearn_with_ties(k):
    pos = np.equal(Y, k)
    assert M.roc_auc(pos, P[:, k]) == pytest.approx(skm.roc_auc_score(pos, P[:, k]), abs=1e-12)
    assert M.average_precision(pos, P[:, k]) == pytest.approx(
        skm.average_precision_score(pos, P[:, k]), abs=1e-12
    )


def test_auc_of_an_absent_class_is_nan():
    assert np.isnan(M.roc_auc(Y == 3, P[:, 3]))
    assert np.isnan(M.average_precision(Y == 3, P[:, 3]))
    assert np.isnan(M.roc_auc(np.ones(4, bool), [0.1, 0.2, 0.3, 0.4]))


def test_macro_and_micro_auc_match_sklearn_when_every_class_is_present():
    y = np.array([0, 1, 2, 2, 1, 0, 2, 1])
    p = np.array(
        [
            [0.6, 0.3, 0.1],
            [0.2, 0.5, 0.3],
            [0.1, 0.2, 0.7],
            [0.3, 0.3, 0.4],
            [0.3, 0.3, 0.4],
            [0.5, 0.25, 0.25],
            [0.2, 0.6, 0.2],
            [0.4, 0.4, 0.2],
        ]
    )
    onehot = label_binarize(y, classes=[0, 1, 2]).astype(bool)
    macro = np.mean([M.roc_auc(onehot[:, k], p[:, k]) for k in range(3)])
    assert macro == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert M.roc_auc(onehot.ravel(), p.ravel()) == pytest.approx(
        skm.roc_auc_score(y, p, multi_class="ovr", average="micro")
    )
    ap_macro = np.mean([M.average_precision(onehot[:, k], p[:, k]) for k in range(3)])
    assert ap_macro == pytest.approx(skm.average_precision_score(onehot, p, average="macro"))
    assert M.average_precision(onehot.ravel(), p.ravel()) == pytest.approx(
        skm.average_precision_score(onehot, p, average="micro")
    )


def test_weights_equal_repeating_the_samples():
    rng = np.random.default_rng(3)
    w = rng.integers(0, 4, size=len(Y)).astype(float)
    w[[0, 2]] = [0, 3]
    rep = np.repeat(np.arange(len(Y)), w.astype(int))
    y, p = Y[rep], P[rep]
    pos = y == 1
    ranking = M.Ranking.of(P[:, 1])
    assert M.weighted_auc(w[None], Y == 1, ranking)[0] == pytest.approx(skm.roc_auc_score(pos, p[:, 1]))
    assert M.weighted_ap(w[None], Y == 1, ranking)[0] == pytest.approx(
        skm.average_precision_score(pos, p[:, 1])
    )
    label = M.from_confusion(M.confusion(w[None], Y, PRED, 4))
    assert label["accuracy"][0] == pytest.approx(skm.accuracy_score(y, p.argmax(axis=1)))
    assert label["macro_f1"][0] == pytest.approx(
        skm.f1_score(y, p.argmax(axis=1), average="macro", zero_division=0)
    )


def test_many_weight_rows_give_one_value_each():
    weights = np.vstack([np.ones(len(Y)), np.r_[np.zeros(5), np.ones(5)]])
    auc = M.weighted_auc(weights, Y == 0, M.Ranking.of(P[:, 0]))
    assert auc[0] == pytest.approx(skm.roc_auc_score(Y == 0, P[:, 0]))
    assert auc[1] == pytest.approx(skm.roc_auc_score(Y[5:] == 0, P[5:, 0]))


def test_ece_on_a_hand_case():
    # confidences 0.95 (right), 0.95 (wrong), 0.6 (right), 0.55 (right); 10 bins:
    # bin (0.9, 1]: n=2, acc 0.5, conf 0.95 -> 2/4 * 0.45
    # bin (0.5, 0.6]: n=2, acc 1, conf 0.575 -> 2/4 * 0.425
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.4, 0.6], [0.55, 0.45]])
    labels = np.array([0, 1, 1, 0])
    assert M.expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(0.5 * 0.45 + 0.5 * 0.425)
    # a confidence of exactly 0.6 belongs to the bin (0.5, 0.6]
    assert M.calibration_bin_index(np.array([0.6, 0.6000001, 0.0, 1.0]), 10).tolist() == [5, 6, 0, 9]
    bins = M.reliability_bins(probs.max(axis=1), probs.argmax(axis=1) == labels, 10)
    assert bins[9]["n"] == 2 and bins[9]["accuracy"] == 0.5 and bins[5]["confidence"] == pytest.approx(0.575)


def test_threshold_calls_and_youden_match_sklearn():
    truth = np.array([1, 1, 1, 0, 0, 0, 1, 0], dtype=bool)
    score = np.array([0.9, 0.5, 0.3, 0.5, 0.2, 0.1, 0.7, 0.6])
    got = M.binary_at_threshold(np.ones((1, 8)), truth, score >= 0.5)
    assert got["sensitivity"][0] == pytest.approx(3 / 4)  # 0.9, 0.5, 0.7 called; 0.3 missed
    assert got["specificity"][0] == pytest.approx(2 / 4)  # 0.5 and 0.6 are false positives
    assert got["ppv"][0] == pytest.approx(3 / 5) and got["npv"][0] == pytest.approx(2 / 3)
    fpr, tpr, thr = skm.roc_curve(truth, score, drop_intermediate=False)
    best = int(np.argmax(tpr - fpr))
    youden = M.youden_threshold(score, truth)
    assert youden["threshold"] == thr[best]
    assert youden["sensitivity"] == pytest.approx(tpr[best]) and youden["specificity"] == pytest.approx(
        1 - fpr[best]
    )
    assert M.youden_threshold(score, np.zeros(8, bool)) is None


def test_roc_points_match_sklearn_and_pr_points_give_the_average_precision():
    pos, score = Y == 1, P[:, 1]
    fpr, tpr, thr = skm.roc_curve(pos, score)
    got = M.roc_points(pos, score)
    assert got["fpr"] == pytest.approx(fpr.tolist()) and got["tpr"] == pytest.approx(tpr.tolist())
    assert got["thresholds"][1:] == pytest.approx(thr[1:].tolist()) and got["thresholds"][0] is None
    pr = M.pr_points(pos, score)
    area = np.sum(np.diff(np.r_[0.0, pr["recall"]]) * np.array(pr["precision"]))
    assert area == pytest.approx(skm.average_precision_score(pos, score))
    assert M.roc_points(Y == 3, P[:, 3]) is None and M.pr_points(Y == 3, P[:, 3]) is None
