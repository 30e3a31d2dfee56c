"""Assertions shared by several test modules (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from semgan.checkpoint import load_checkpoint
from semgan.config import RunConfig, apply_overrides
from semgan.train import train


def assert_same_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two checkpoints of the semgan family hold bit-identical weights, Adam states, torch RNG and step."""
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs"
    for opt in ("opt_G", "opt_D"):
        for pid, st in a[opt]["state"].items():
            for k, v in st.items():
                assert torch.equal(v, b[opt]["state"][pid][k]), f"{opt} state {pid}.{k} differs"
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    assert a["step"] == b["step"]


def straight_and_resumed(cfg: RunConfig, tmp_path: Path,
                         split: int = 10) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """Train ``cfg`` in one go and as ``split`` steps plus a resume; both final checkpoints and the resumed run."""
    straight = train(cfg, tmp_path / "straight", progress=False)
    half = train(apply_overrides(cfg, {"train.steps": split}), tmp_path / "split", progress=False)
    resumed = train(cfg, half, resume=True, progress=False)
    return (load_checkpoint(straight / "checkpoints" / "latest.pt"),
            load_checkpoint(resumed / "checkpoints" / "latest.pt"), resumed)
