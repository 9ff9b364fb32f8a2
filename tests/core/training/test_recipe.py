"""The study's recipe: class weights, warm-up + cosine per step, early stopping, temperature, ECE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fetalcns_core.training.calibration import expected_calibration_error, fit_temperature
from fetalcns_core.training.engine import EarlyStopping, class_weights, softmax, warmup_cosine


def test_class_weights_are_n_over_k_times_class_count() -> None:
    labels = [0] * 6 + [1] * 3 + [2] * 1
    w = class_weights(labels, 3)
    assert torch.allclose(w, torch.tensor([10 / (3 * 6), 10 / (3 * 3), 10 / (3 * 1)]))
    counts = np.bincount(labels)
    assert np.allclose(counts * w.numpy(), 10 / 3)  # each class weighs the same in total


def test_a_class_absent_from_training_gets_no_weight() -> None:
    w = class_weights([0, 0, 2], 3)
    assert w[1] == 0 and torch.allclose(w[[0, 2]], torch.tensor([3 / (2 * 2), 3 / (2 * 1)]))


def test_schedule_warms_up_linearly_over_the_first_epoch_then_decays_as_a_cosine() -> None:
    steps_per_epoch, epochs, lr = 10, 5, 5e-4
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(steps_per_epoch, steps_per_epoch * epochs))
    seen = []
    for _ in range(steps_per_epoch * epochs):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen[0] == pytest.approx(lr / 10)
    assert np.allclose(np.diff(seen[:10]), lr / 10)  # linear ramp
    assert seen[9] == pytest.approx(lr)
    total = steps_per_epoch * (epochs - 1)
    for step in (10, 20, 30, 49):
        expected = lr * 0.5 * (1 + math.cos(math.pi * (step - 10) / total))
        assert seen[step] == pytest.approx(expected)
    assert all(a >= b for a, b in zip(seen[10:], seen[11:], strict=False))


def test_early_stopping_keeps_the_best_epoch_and_stops_after_patience() -> None:
    stop = EarlyStopping(patience=2, mode="max")
    for epoch, score in enumerate([0.5, 0.7, 0.7, 0.6]):
        stop.step(score, epoch)
    assert stop.best_epoch == 1 and stop.best == 0.7 and stop.should_stop
    copy = EarlyStopping()
    copy.load_state_dict(stop.state_dict())
    assert copy == stop
    loss = EarlyStopping(patience=5, mode="min")
    loss.step(1.0, 0)
    assert loss.step(0.5, 1) and not loss.step(0.6, 2) and loss.best_epoch == 1


def test_temperature_recovers_an_overconfident_scale() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 1.5, (4000, 4))
    labels = np.array([rng.choice(4, p=p) for p in softmax(true_logits)])
    overconfident = true_logits * 3.0
    t = fit_temperature(overconfident, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(softmax(overconfident), labels)
    after = expected_calibration_error(softmax(overconfident, t), labels)
    assert after < before / 2


def test_ece_of_perfectly_calibrated_and_of_confidently_wrong_predictions() -> None:
    probs = np.array([[0.9, 0.1]] * 10)
    labels = np.array([0] * 9 + [1])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)
    assert expected_calibration_error(np.array([[1.0, 0.0]] * 4), np.ones(4, int)) == pytest.approx(1.0)
    assert math.isnan(expected_calibration_error(np.zeros((0, 2)), np.zeros(0, int)))
