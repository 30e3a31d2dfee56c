"""Shared fixtures: tiny configurations that train in seconds on a CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from semgan.config import RunConfig, apply_overrides, get_preset


@pytest.fixture
def tiny_cfg() -> RunConfig:
    """A few-second SemGAN configuration on Colored Shapes (no logging cost worth mentioning)."""
    return apply_overrides(get_preset("tiny"), {"train.device": "cpu"})


@pytest.fixture
def shared_data() -> Path:
    """Root of the real datasets, from SEMGAN_DATA; tests that need it skip without it."""
    root = os.environ.get("SEMGAN_DATA")
    if not root:
        pytest.skip("real data not available: set SEMGAN_DATA to the folder holding cmp_facade_base/")
    return Path(root)
