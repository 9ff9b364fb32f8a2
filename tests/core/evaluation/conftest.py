"""Hand-made prediction rows for the evaluation tests."""

from __future__ import annotations

import numpy as np
import pytest

CLASSES = ["normal", "a", "b"]

# (file, group, label, augmented, GA weeks or None, probabilities normal/a/b)
HAND_ROWS = [
    ("n1-1.png", "n1", "normal", 0, 12.0, (0.7, 0.2, 0.1)),
    ("n1-2.png", "n1", "normal", 0, 12.0, (0.4, 0.5, 0.1)),
    ("n2-1.png", "n2", "normal", 0, 29.0, (0.6, 0.3, 0.1)),
    ("a1-1.png", "a1", "a", 0, 13.0, (0.2, 0.5, 0.3)),
    ("a1-2.png", "a1", "a", 0, 13.0, (0.1, 0.3, 0.6)),
    ("a1-3.png", "a1", "a", 0, 13.0, (0.3, 0.4, 0.3)),
    ("a2-1.png", "a2", "a", 0, 28.0, (0.5, 0.4, 0.1)),
    ("b1-1.png", "b1", "b", 0, 20.0, (0.1, 0.1, 0.8)),
    ("b1-2.png", "b1", "b", 1, 20.0, (0.1, 0.2, 0.7)),
    ("b2-1.png", "b2", "b", 0, None, (0.2, 0.5, 0.3)),
]


def make_rows(spec=HAND_ROWS, classes=CLASSES) -> list[dict]:
    rows = []
    for file, group, label, aug, ga, probs in spec:
        row = {
            "file": file,
            "group": group,
            "fold": 0,
            "label": label,
            "augmented": aug,
            "gestational_age_weeks": "" if ga is None else ga,
        }
        row.update({f"prob_{c}": p for c, p in zip(classes, probs, strict=True)})
        rows.append(row)
    return rows


def random_rows(
    n_groups: int = 40, seed: int = 0, classes=CLASSES, absent: tuple[str, ...] = ()
) -> list[dict]:
    """Groups of 1-4 images with informative, noisy probabilities and a gestational age per group."""
    rng = np.random.default_rng(seed)
    present = [c for c in classes if c not in absent]
    spec = []
    for g in range(n_groups):
        label = present[g % len(present)]
        ga = float(rng.uniform(9, 38))
        for i in range(int(rng.integers(1, 5))):
            logits = rng.normal(size=len(classes))
            logits[classes.index(label)] += 1.2
            p = np.exp(logits) / np.exp(logits).sum()
            spec.append((f"g{g}-{i}.png", f"g{g}", label, 0, ga, tuple(p)))
    return make_rows(spec, classes)


@pytest.fixture
def hand_rows() -> list[dict]:
    return make_rows()
