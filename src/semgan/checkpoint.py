"""Checkpoints: state dicts + config + step + package version, written atomically, read with weights_only.

A checkpoint is a plain dict of tensors and primitives (no pickled classes), so ``torch.load(...,
weights_only=True)`` can read it and a file handed over by someone else cannot run code on load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from semgan import __version__
from semgan.errors import SemGANError
from semgan.io import atomic_write

# Bump when the layout of the dict changes. 2: the model family ("family") and the engine's state; the
# family's own entries (G, D, ...) sit at the top level as in format 1, which is still read.
FORMAT = 2
REQUIRED_KEYS = ("format", "version", "step", "config")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plus format and version) to ``path`` atomically: temp file, fsync, rename.

    A crash at any point leaves either the old file or the new one, never a torn file.
    """
    payload = {"format": FORMAT, "version": __version__, **state}
    try:
        atomic_write(path, lambda f: torch.save(payload, f), durable=True)
    except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as RuntimeError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise SemGANError(f"cannot write checkpoint {path}: {reason}. Nothing was replaced: the previous "
                          "checkpoints are kept. Free some space or fix the folder's permissions, then resume") from exc


def verify_checkpoint(path: str | Path, step: int) -> None:
    """Read a just-written checkpoint back (memory-mapped: no second copy of the weights) and check its step.

    Raises:
        SemGANError: when it does not load or holds another step; the file is deleted, so a partial or damaged
            file never stands where a valid one is expected.
    """
    path = Path(path)
    try:
        got = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        ok = isinstance(got, dict) and all(k in got for k in REQUIRED_KEYS) and int(got["step"]) == step
        fault = "" if ok else f"it does not hold step {step}"
    except Exception as exc:  # unpickling errors come in many types
        fault = f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if fault:
        path.unlink(missing_ok=True)
        raise SemGANError(f"checkpoint {path} did not read back after writing ({fault}); the disk may be full or "
                          "failing. The previous checkpoints are kept")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; refuse anything that is not one of ours."""
    path = Path(path)
    if not path.is_file():
        raise SemGANError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors come in many types; none of them is a bug of ours
        raise SemGANError(
            f"cannot load checkpoint {path}: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            " (only semgan checkpoints, which hold tensors and plain values, are accepted)"
        ) from exc
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        raise SemGANError(f"{path} is not a semgan checkpoint (expected keys {', '.join(REQUIRED_KEYS)})")
    if ckpt["format"] > FORMAT:
        raise SemGANError(
            f"{path} has checkpoint format {ckpt['format']} (semgan {ckpt['version']}); "
            f"this semgan ({__version__}) reads format {FORMAT} and older"
        )
    return ckpt
