"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The real public data sets live beside the repository (../shared/datasets), not in it; a fresh
# clone lacks them, and the tests that need them skip with this reason.
SHARED_DATASETS = Path(
    os.environ.get("DNATRACK_SHARED_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")
)


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """Folder of the shared real data sets; skips the test when it is absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"shared data sets not found at {SHARED_DATASETS}")
    return SHARED_DATASETS
