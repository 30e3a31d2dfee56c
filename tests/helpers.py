"""Assertions shared by several test modules (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from semgan.checkpoint import load_checkpoint
from semgan.config import RunConfig, apply_overrides
from semgan.train import train


def assert_same_state(a: Any, b: Any, where: str = "checkpoint") -> None:
    """Two checkpoints (of any family) are the same, bit for bit: every network, optimizer state, RNG state and
    plain value, under the same keys; ``where`` names the first difference."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), f"{where}: keys differ ({sorted(set(a) ^ set(b), key=str)})"
        for k in a:
            assert_same_state(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    elif torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), f"{where} differs"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def straight_and_resumed(cfg: RunConfig, tmp_path: Path,
                         split: int = 10) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """Train ``cfg`` in one go and as ``split`` steps plus a resume; both final checkpoints and the resumed run."""
    straight = train(cfg, tmp_path / "straight", progress=False)
    half = train(apply_overrides(cfg, {"train.steps": split}), tmp_path / "split", progress=False)
    resumed = train(cfg, half, resume=True, progress=False)
    return (load_checkpoint(straight / "checkpoints" / "latest.pt"),
            load_checkpoint(resumed / "checkpoints" / "latest.pt"), resumed)


PAIR_COLORS = [[0, 0, 0], [200, 30, 30], [30, 200, 30]]
PAIR_SIZE, PAIR_COUNT = 32, 10


def write_pairs(root: Path, colors: list[list[int]] = PAIR_COLORS, n: int = PAIR_COUNT) -> tuple[Path, Path]:
    """A folder dataset of ``n`` 32 px index maps (blocks of K classes) and photos that follow the maps."""
    maps, photos = root / "maps", root / "photos"
    maps.mkdir(parents=True)
    photos.mkdir()
    names = [f"c{i}" for i in range(len(colors))]
    (maps / "classes.json").write_text(json.dumps({"names": names, "colors": colors}))
    rng = np.random.default_rng(0)
    for i in range(n):
        blocks = rng.integers(0, len(colors), (4, 4), dtype=np.uint8)
        labels = np.kron(blocks, np.ones((8, 8), dtype=np.uint8))  # (32, 32)
        Image.fromarray(labels, mode="L").save(maps / f"m{i:02d}.png")
        noise = rng.integers(0, 60, (PAIR_SIZE, PAIR_SIZE, 3), np.uint8)
        photo = np.asarray(PAIR_COLORS * 3, dtype=np.uint8)[labels] // 2 + noise
        Image.fromarray(photo.astype(np.uint8)).save(photos / f"m{i:02d}.png")
    return maps, photos
