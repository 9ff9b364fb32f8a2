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
