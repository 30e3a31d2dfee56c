"""Assertions shared by several test modules (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

from typing import Any

import torch


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
