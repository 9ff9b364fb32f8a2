"""Bootstrap over groups: resample the cases (not the images) with replacement, percentile intervals.

Images of one case are not independent, so the unit of resampling is the group. A resample is a vector
of counts, one per group, and every level (images, exams, subgroups) weights its units by the count of
their group: all figures of one resample see the same cases.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fetalcns_core.evaluation.levels import LevelMetrics

CI_LEVEL = 0.95
CHUNK = 200  # resamples computed at once (bounds memory: chunk x units x classes floats)


def group_resample_counts(n_groups: int, n_resamples: int, seed: int) -> np.ndarray:
    """(B, G) how often each group is drawn in each resample (G draws with replacement per resample)."""
    if n_resamples <= 0 or n_groups <= 0:
        return np.zeros((0, max(n_groups, 0)), dtype=np.int64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_groups, size=(n_resamples, n_groups))
    flat = (draws + np.arange(n_resamples)[:, None] * n_groups).ravel()
    return np.bincount(flat, minlength=n_resamples * n_groups).reshape(n_resamples, n_groups)


def bootstrap_level(level: LevelMetrics, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every figure of the level on every resample: key → (B,) values, NaN where undefined."""
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, counts.shape[0], CHUNK):
        weights = level.weights_from(counts[start : start + CHUNK])
        for key, values in level.compute(weights).items():
            parts.setdefault(key, []).append(values)
    return {key: np.concatenate(v) for key, v in parts.items()}


def percentile_interval(
    values: np.ndarray, level: float = CI_LEVEL
) -> tuple[float | None, float | None, int]:
    """Percentile interval of the defined (finite) resample values, and how many there were."""
    values = np.asarray(values, dtype=np.float64)
    valid = values[np.isfinite(values)]
    if valid.size == 0:
        return None, None, 0
    alpha = (1.0 - level) / 2.0
    low, high = np.percentile(valid, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high), int(valid.size)


def figure(
    value: float, resamples: np.ndarray | None, n_resamples: int, reason: str | None
) -> dict[str, Any]:
    """One reported figure: value with its 95% interval, or null with the reason it is undefined."""
    if value is None or not math.isfinite(value):
        return {
            "value": None,
            "ci_low": None,
            "ci_high": None,
            "n_valid_resamples": 0,
            "reason": reason or "undefined on these data",
        }
    out: dict[str, Any] = {"value": float(value), "ci_low": None, "ci_high": None, "n_valid_resamples": 0}
    if resamples is not None and n_resamples > 0:
        low, high, n_valid = percentile_interval(resamples)
        out.update(ci_low=low, ci_high=high, n_valid_resamples=n_valid)
        if n_valid < n_resamples:
            out["ci_note"] = (
                f"defined in {n_valid} of {n_resamples} resamples; the others lacked the cases it needs"
            )
    return out
