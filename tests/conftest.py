"""Shared fixtures: tiny configurations that train in seconds on a CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import write_pairs

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


@pytest.fixture
def pix_cfg(tmp_path: Path) -> RunConfig:
    maps, photos = write_pairs(tmp_path / "data")
    return apply_overrides(get_preset("pix2pix-tiny"), {
        "data.name": "folder", "data.root": str(maps), "data.photos": str(photos), "data.size": 0,
        "train.device": "cpu", "model.holdout": 0.2, "eval.metrics": "l1", "eval.every": 10})
