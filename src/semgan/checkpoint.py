"""Checkpoints: state dicts + config + step + package version, written atomically, read with weights_only.

A checkpoint is a plain dict of tensors and primitives (no pickled classes), so ``torch.load(...,
weights_only=True)`` can read it and a file handed over by someone else cannot run code on load.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from semgan import __version__
from semgan.errors import SemGANError

FORMAT = 1  # bump when the layout of the dict changes
REQUIRED_KEYS = ("format", "version", "step", "config", "G", "D")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plus format and version) to ``path`` atomically: temp file, fsync, rename.

    A crash at any point leaves either the old file or the new one, never a torn file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": __version__, **state}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Make the rename itself durable (best effort: not every platform can fsync a directory).
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


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
