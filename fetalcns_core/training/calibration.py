"""Temperature scaling (one temperature per fold, fitted on its validation groups) and the expected
calibration error that shows what it did."""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

log = logging.getLogger(__name__)

T_MIN, T_MAX = 0.2, 10.0  # beyond these, the validation set is too small or too easy to tell


def fit_temperature(logits: np.ndarray, labels: np.ndarray, max_iter: int = 200) -> float:
    """The temperature ``T`` minimising the negative log-likelihood of ``softmax(logits / T)``.

    Fitted on ``log T`` with L-BFGS and kept within [0.2, 10] (a warning says when a bound is hit);
    1.0 when there is nothing to fit on.
    """
    if len(labels) == 0:
        log.warning("no validation frames to fit a temperature on: using 1.0")
        return 1.0
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp())
    if not math.isfinite(t):
        return 1.0
    if not T_MIN <= t <= T_MAX:
        log.warning(
            "fitted temperature %.3g is outside [%g, %g] (%d validation frames, all %s): kept at the bound",
            t,
            T_MIN,
            T_MAX,
            len(labels),
            "right" if (z.argmax(1) == y).all() else "scored",
        )
    return float(min(max(t, T_MIN), T_MAX))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE with ``n_bins`` equal-width confidence bins (NaN with no items)."""
    if len(labels) == 0:
        return math.nan
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)
