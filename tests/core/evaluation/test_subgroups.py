"""Gestational-age subgroups: band edges, the 20-week cut and the Mann–Whitney test against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from fetalcns_core.evaluation import evaluate_predictions
from fetalcns_core.evaluation.subgroups import completed_weeks, ga_band, mann_whitney

from .conftest import CLASSES, HAND_ROWS, make_rows


@pytest.mark.parametrize(
    ("weeks", "band"),
    [(12, "≤12 weeks"), (12.9, "≤12 weeks"), (13, "13–28 weeks"), (28, "13–28 weeks"), (28.99, "13–28 weeks"),
     (29, ">28 weeks"), (40, ">28 weeks"), (None, None), (float("nan"), None)],
)  # fmt: skip
def test_band_edges_use_completed_weeks(weeks, band):
    assert ga_band(weeks) == band


def test_bands_and_cut_count_the_right_exams(hand_rows):
    # exams: n1 12 w, n2 29 w, a1 13 w, a2 28 w, b1 20 w, b2 unknown
    res = evaluate_predictions(hand_rows, CLASSES, "normal", n_bootstrap=0)
    ga = res["ga_subgroups"]
    bands = ga["trimester_bands"]
    assert bands["≤12 weeks"]["exam_level"]["n"] == 1
    assert bands["13–28 weeks"]["exam_level"]["n"] == 3  # a1 13, a2 28, b1 20
    assert bands[">28 weeks"]["exam_level"]["n"] == 1
    assert bands["13–28 weeks"]["image_level"]["n"] == 5  # 3 + 1 + 1 (b1's augmented copy left out)
    cut = ga["cut_20_weeks"]["groups"]
    assert cut["<20 weeks"]["exam_level"]["n"] == 2  # n1 12, a1 13
    assert cut["≥20 weeks"]["exam_level"]["n"] == 3  # b1 20, a2 28, n2 29
    assert ga["n_exams_unknown_ga"] == 1 and ga["n_images_unknown_ga"] == 1
    assert cut["<20 weeks"]["exam_level"]["accuracy"]["value"] == 1.0  # n1 and a1 right
    assert cut["≥20 weeks"]["exam_level"]["accuracy"]["value"] == pytest.approx(2 / 3)  # a2 wrong


def test_mann_whitney_of_true_class_probability_matches_scipy(hand_rows):
    res = evaluate_predictions(hand_rows, CLASSES, "normal", n_bootstrap=0)
    test = res["ga_subgroups"]["cut_20_weeks"]["mann_whitney_true_class_probability"]["all exams"]
    before = [np.mean([0.7, 0.4]), np.mean([0.5, 0.3, 0.4])]  # n1 normal, a1 a
    after = [0.8, 0.4, 0.6]  # b1 b, a2 a, n2 normal
    ref = mannwhitneyu(before, after, alternative="two-sided")
    assert test["p_value"] == pytest.approx(ref.pvalue) and test["u_statistic"] == pytest.approx(
        ref.statistic
    )
    assert (test["n_before"], test["n_after"]) == (2, 3)


def test_mann_whitney_on_larger_samples_and_an_empty_side():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(size=25), rng.uniform(0.2, 1.0, size=31)
    got = mann_whitney(a, b)
    ref = mannwhitneyu(a, b, alternative="two-sided")
    assert got["p_value"] == pytest.approx(ref.pvalue) and got["u_statistic"] == ref.statistic
    empty = mann_whitney(a, np.array([]))
    assert empty["p_value"] is None and "each side" in empty["reason"]


def test_no_gestational_age_gives_a_reason():
    spec = [(f, g, y, a, None, p) for f, g, y, a, _, p in HAND_ROWS]
    res = evaluate_predictions(make_rows(spec), CLASSES, "normal", n_bootstrap=0)
    assert res["ga_subgroups"] == {"value": None, "reason": "no gestational age in the data"}


def test_completed_weeks_floor():
    assert completed_weeks(np.array([19.99, 20.0, np.nan]))[:2].tolist() == [19.0, 20.0]
