"""Shared test fixtures: where the shared real data lives, and a small random-weight bundle."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    env = os.environ.get("FETALCNS_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "data")
    for cand in candidates:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data; tests that need it skip with the reason when it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared real data not found (../shared/data or $FETALCNS_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def random_bundle(tmp_path_factory: pytest.TempPathFactory):
    """An untrained 2-fold ResNet34 bundle with three classes (random weights: for tests only)."""
    from fetalcns_core.bundle import make_random_bundle

    return make_random_bundle(
        tmp_path_factory.mktemp("bundle") / "untrained-test",
        arch="resnet34",
        classes=("normal", "encephalocele", "ventriculomegaly"),
        n_folds=2,
        seed=0,
    )
