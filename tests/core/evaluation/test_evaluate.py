"""evaluate_predictions: image and exam level against scikit-learn and hand computation, intervals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from fetalcns_core.evaluation import PredictionTableError, evaluate_predictions
from fetalcns_core.evaluation.bootstrap import group_resample_counts, percentile_interval
from fetalcns_core.exam import FrameRecord, diagnose

from .conftest import CLASSES, HAND_ROWS, make_rows, random_rows


def _arrays(rows, augmented=False):
    kept = [r for r in rows if augmented or not r["augmented"]]
    y = np.array([CLASSES.index(r["label"]) for r in kept])
    p = np.array([[r[f"prob_{c}"] for c in CLASSES] for r in kept])
    return y, p


def test_image_level_figures_match_sklearn(hand_rows):
    res = evaluate_predictions(hand_rows, CLASSES, "normal", n_bootstrap=0)
    img = res["image_level"]
    y, p = _arrays(hand_rows)
    pred = p.argmax(axis=1)
    assert img["n"] == 9 and res["data"]["n_augmented_excluded"] == 1
    assert img["accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, pred))
    assert img["balanced_accuracy"]["value"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert img["macro_precision"]["value"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert img["macro_recall"]["value"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert img["macro_f1"]["value"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert img["roc_auc"]["macro"]["value"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
    assert img["roc_auc"]["micro"]["value"] == pytest.approx(
        skm.roc_auc_score(y, p, multi_class="ovr", average="micro")
    )
    onehot = np.eye(3)[y]
    assert img["pr_auc"]["macro"]["value"] == pytest.approx(skm.average_precision_score(onehot, p))
    assert img["pr_auc"]["micro"]["value"] == pytest.approx(
        skm.average_precision_score(onehot, p, average="micro")
    )
    for k, cls in enumerate(CLASSES):
        assert img["per_class"][cls]["roc_auc"]["value"] == pytest.approx(skm.roc_auc_score(y == k, p[:, k]))
        assert img["per_class"][cls]["n"] == int((y == k).sum())
    assert img["confusion_matrix"]["counts"] == skm.confusion_matrix(y, pred).tolist()
    nva = img["normal_vs_abnormal"]
    assert nva["auroc"]["value"] == pytest.approx(skm.roc_auc_score(y != 0, 1 - p[:, 0]))
    called = (1 - p[:, 0]) >= 0.5
    assert nva["sensitivity"]["value"] == pytest.approx(skm.recall_score(y != 0, called))
    assert nva["specificity"]["value"] == pytest.approx(skm.recall_score(y == 0, ~called))
    assert "optimistic" in nva["youden"]["note"]


def test_exam_level_is_the_mean_of_frames_and_majority_vote_by_hand(hand_rows):
    res = evaluate_predictions(hand_rows, CLASSES, "normal", n_bootstrap=0)
    exm = res["exam_level"]
    # exams in group order a1, a2, b1, b2, n1, n2 (b1's augmented copy left out)
    mean = {
        "a1": np.mean([[0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3]], axis=0),  # a 0.4 -> a
        "a2": np.array([0.5, 0.4, 0.1]),  # -> normal
        "b1": np.array([0.1, 0.1, 0.8]),  # -> b
        "b2": np.array([0.2, 0.5, 0.3]),  # -> a
        "n1": np.mean([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1]], axis=0),  # 0.55 -> normal
        "n2": np.array([0.6, 0.3, 0.1]),  # -> normal
    }
    y = np.array([1, 1, 2, 2, 0, 0])
    p = np.array([mean[g] for g in ("a1", "a2", "b1", "b2", "n1", "n2")])
    assert exm["n"] == 6 and exm["counts_per_class"] == {"normal": 2, "a": 2, "b": 2}
    assert exm["confusion_matrix"]["counts"] == [[2, 0, 0], [1, 1, 0], [0, 1, 1]]
    assert exm["accuracy"]["value"] == pytest.approx(4 / 6)
    assert exm["roc_auc"]["macro"]["value"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
    assert exm["normal_vs_abnormal"]["auroc"]["value"] == pytest.approx(
        skm.roc_auc_score(y != 0, 1 - p[:, 0])
    )
    # majority vote: a1 frames vote a, b, a -> a; n1 votes normal, a -> tie, higher mean (normal 0.55) wins
    vote = exm["majority_vote"]
    assert vote["confusion_matrix"]["counts"] == [[2, 0, 0], [1, 1, 0], [0, 1, 1]]
    assert "roc_auc" not in vote


def test_exam_rule_agrees_with_the_apps_diagnosis(hand_rows):
    res = evaluate_predictions(hand_rows, CLASSES, "normal", n_bootstrap=0)
    frames = [
        FrameRecord(r["file"], r["file"], probs=[r[f"prob_{c}"] for c in CLASSES]) for r in hand_rows[:2]
    ]
    dx = diagnose(frames, CLASSES, "normal")
    # n1 is the 5th exam: predicted normal by the mean and by the vote, as the app says
    assert dx.top_class == "normal" and dx.majority_class == "normal"
    assert res["exam_level"]["confusion_matrix"]["counts"][0][0] == 2
    assert dx.abnormal_score == pytest.approx(1 - 0.55)


def test_threshold_is_applied_with_greater_or_equal(hand_rows):
    # abnormal scores of the images: 0.3, 0.6, 0.4 (normals); 0.8, 0.9, 0.7, 0.5, 0.9, 0.8 (abnormal)
    res = evaluate_predictions(hand_rows, CLASSES, "normal", threshold=0.5, n_bootstrap=0)
    nva = res["image_level"]["normal_vs_abnormal"]
    assert nva["counts"] == {"true_positive": 6, "false_negative": 0, "true_negative": 2, "false_positive": 1}
    res = evaluate_predictions(hand_rows, CLASSES, "normal", threshold=0.65, n_bootstrap=0)
    nva = res["image_level"]["normal_vs_abnormal"]
    assert nva["threshold"] == 0.65
    assert nva["counts"] == {"true_positive": 5, "false_negative": 1, "true_negative": 3, "false_positive": 0}
    assert nva["sensitivity"]["value"] == pytest.approx(5 / 6) and nva["specificity"]["value"] == 1.0


def test_augmented_copies_are_left_out_unless_asked(hand_rows):
    res = evaluate_predictions(hand_rows, CLASSES, "normal", n_bootstrap=0, include_augmented=True)
    assert res["image_level"]["n"] == 10 and res["data"]["n_augmented_excluded"] == 0
    assert res["data"]["n_augmented_included"] == 1


def test_bootstrap_interval_contains_the_value_and_is_reproducible():
    rows = random_rows(n_groups=30, seed=1)
    a = evaluate_predictions(rows, CLASSES, "normal", n_bootstrap=300, seed=7)
    b = evaluate_predictions(rows, CLASSES, "normal", n_bootstrap=300, seed=7)
    c = evaluate_predictions(rows, CLASSES, "normal", n_bootstrap=300, seed=8)
    for level in ("image_level", "exam_level"):
        for fig in (a[level]["accuracy"], a[level]["roc_auc"]["macro"], a[level]["macro_f1"]):
            assert fig["ci_low"] <= fig["value"] <= fig["ci_high"]
            assert fig["ci_low"] < fig["ci_high"]
            assert fig["n_valid_resamples"] == 300
    assert a["image_level"]["accuracy"] == b["image_level"]["accuracy"]
    assert a["image_level"]["accuracy"]["ci_low"] != c["image_level"]["accuracy"]["ci_low"]
    assert a["bootstrap"]["resamples"] == 300 and a["bootstrap"]["seed"] == 7


def test_group_resampling_and_percentile_interval():
    counts = group_resample_counts(5, 1000, seed=0)
    assert counts.shape == (1000, 5) and (counts.sum(axis=1) == 5).all()
    assert (group_resample_counts(5, 1000, seed=0) == counts).all()
    # each group is drawn 1 time per resample on average
    assert counts.mean() == pytest.approx(1.0, abs=0.05)
    values = np.r_[np.arange(101.0), np.nan]
    low, high, n = percentile_interval(values)
    assert (low, high, n) == (pytest.approx(2.5), pytest.approx(97.5), 101)


def test_undefined_resamples_are_skipped_and_counted():
    # one group only of class b: about a third of the resamples lack it
    spec = [r for r in HAND_ROWS if r[1] != "b2" and not r[3]]
    res = evaluate_predictions(make_rows(spec), CLASSES, "normal", n_bootstrap=500, seed=0)
    auc_b = res["exam_level"]["per_class"]["b"]["roc_auc"]
    assert 0 < auc_b["n_valid_resamples"] < 500 and "ci_note" in auc_b
    macro = res["exam_level"]["roc_auc"]["macro"]
    assert macro["n_valid_resamples"] <= auc_b["n_valid_resamples"]
    assert res["exam_level"]["accuracy"]["n_valid_resamples"] == 500


def test_absent_class_gives_null_auc_with_a_reason_never_a_number():
    classes = ["normal", "a", "b", "c"]
    rows = random_rows(n_groups=12, seed=2, classes=classes, absent=("c",))
    res = evaluate_predictions(rows, classes, "normal", n_bootstrap=50)
    for level in ("image_level", "exam_level"):
        c = res[level]["per_class"]["c"]
        assert c["roc_auc"]["value"] is None and c["roc_auc"]["ci_low"] is None
        assert "no " in c["roc_auc"]["reason"] and "of this class" in c["roc_auc"]["reason"]
        assert c["pr_auc"]["value"] is None and c["recall"]["value"] is None
        macro = res[level]["roc_auc"]["macro"]
        assert macro["classes_excluded"] == ["c"]
        y, p = _arrays(rows)
        if level == "image_level":
            expected = np.mean([skm.roc_auc_score(y == k, p[:, k]) for k in range(3)])
            assert macro["value"] == pytest.approx(expected)
    json.dumps(res, allow_nan=False)


def test_missing_normal_class_reports_why(hand_rows):
    res = evaluate_predictions(hand_rows, CLASSES, "healthy", n_bootstrap=0)
    nva = res["image_level"]["normal_vs_abnormal"]
    assert nva["value"] is None and "healthy" in nva["reason"]
    assert any("healthy" in w for w in res["warnings"])


def test_mixed_label_group_is_split_into_one_exam_per_label(hand_rows):
    hand_rows[3]["group"] = "n2"  # an 'a' image in the normal group n2
    res = evaluate_predictions(hand_rows, CLASSES, "normal", n_bootstrap=0)
    assert res["data"]["mixed_label_groups"] == ["n2"]
    assert res["exam_level"]["n"] == 7 and res["data"]["n_groups"] == 6


def test_bad_predictions_are_refused_with_the_reason(hand_rows):
    rows = [dict(r) for r in hand_rows]
    rows[0]["label"] = "c"
    with pytest.raises(PredictionTableError, match="not among the classes"):
        evaluate_predictions(rows, CLASSES, "normal", n_bootstrap=0)
    rows = [dict(r) for r in hand_rows]
    rows[1]["prob_b"] = 0.5
    with pytest.raises(PredictionTableError, match="sum to"):
        evaluate_predictions(rows, CLASSES, "normal", n_bootstrap=0)
    with pytest.raises(PredictionTableError, match="augmented"):
        evaluate_predictions([r for r in hand_rows if r["augmented"]], CLASSES, "normal", n_bootstrap=0)
    with pytest.raises(PredictionTableError, match="do not match"):
        evaluate_predictions(hand_rows, ["normal", "a"], "normal", n_bootstrap=0)


class _FrameLike:
    """A stand-in for a pandas DataFrame: evaluate_predictions reads it through to_dict('records')."""

    def __init__(self, rows):
        self.rows = rows

    def to_dict(self, orient):
        assert orient == "records"
        return self.rows


def test_a_data_frame_and_a_table_give_the_same_figures(hand_rows):
    from fetalcns_core.evaluation import table_from_records

    a = evaluate_predictions(_FrameLike(hand_rows), CLASSES, "normal", n_bootstrap=20)
    b = evaluate_predictions(table_from_records(hand_rows), CLASSES, "normal", n_bootstrap=20)
    assert a["exam_level"]["roc_auc"] == b["exam_level"]["roc_auc"]
    assert a["image_level"]["per_class"] == b["image_level"]["per_class"]


def test_random_tied_scores_match_sklearn_at_both_levels():
    rng = np.random.default_rng(11)
    spec = []
    for g in range(30):
        label = CLASSES[g % 3]
        for i in range(int(rng.integers(1, 4))):
            counts = rng.multinomial(10, [0.5 if c == label else 0.25 for c in CLASSES])
            spec.append((f"g{g}-{i}", f"g{g}", label, 0, None, tuple(counts / 10)))
    rows = make_rows(spec)
    res = evaluate_predictions(rows, CLASSES, "normal", n_bootstrap=0)
    y, p = _arrays(rows)
    groups = np.array([r["group"] for r in rows])
    order = sorted(set(groups))
    ey = np.array([y[groups == g][0] for g in order])
    ep = np.array([p[groups == g].mean(axis=0) for g in order])
    for level, (yy, pp) in (("image_level", (y, p)), ("exam_level", (ey, ep))):
        block = res[level]
        pred = pp.argmax(axis=1)
        onehot = np.eye(3)[yy]
        assert block["macro_f1"]["value"] == pytest.approx(skm.f1_score(yy, pred, average="macro"))
        assert block["balanced_accuracy"]["value"] == pytest.approx(skm.balanced_accuracy_score(yy, pred))
        assert block["roc_auc"]["macro"]["value"] == pytest.approx(
            skm.roc_auc_score(yy, pp, multi_class="ovr")
        )
        assert block["roc_auc"]["micro"]["value"] == pytest.approx(
            skm.roc_auc_score(yy, pp, multi_class="ovr", average="micro")
        )
        assert block["pr_auc"]["macro"]["value"] == pytest.approx(skm.average_precision_score(onehot, pp))
        assert block["pr_auc"]["micro"]["value"] == pytest.approx(
            skm.average_precision_score(onehot, pp, average="micro")
        )
        nva = block["normal_vs_abnormal"]["auroc"]["value"]
        assert nva == pytest.approx(skm.roc_auc_score(yy != 0, 1 - pp[:, 0]))
