"""Checkpoints: state dicts + config + step + package version, written atomically, read with weights_only.

A checkpoint is a plain dict of tensors and primitives (no pickled classes), so ``torch.load(...,
weights_only=True)`` can read it and a file handed over by someone else cannot run code on load.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

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
    except pickle.UnpicklingError:
        # torch's message goes on to say how to load it unsafely; we never suggest that for a file handed to us
        raise SemGANError(
            f"refused checkpoint {path}: it holds pickled Python objects other than tensors and plain values "
            "(classes or code), which semgan never unpickles; only semgan checkpoints are accepted"
        ) from None
    except Exception as exc:  # other read errors come in many types; none of them is a bug of ours
        raise SemGANError(
            f"cannot load checkpoint {path}: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            " (only semgan checkpoints, which hold tensors and plain values, are accepted)"
        ) from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        raise SemGANError(f"{path} is not a semgan checkpoint (expected keys {', '.join(REQUIRED_KEYS)})")
    if ckpt["format"] > FORMAT:
        raise SemGANError(
            f"{path} has checkpoint format {ckpt['format']} (semgan {ckpt['version']}); "
            f"this semgan ({__version__}) reads format {FORMAT} and older"
        )
    return ckpt


M = TypeVar("M", bound=nn.Module)


def build_with_weights(build: Callable[[], M], weights: dict[str, Any], source: str | Path, what: str,
                       hint: str = "") -> M:
    """``build()`` a network and load ``weights`` into it, on the CPU, in eval mode.

    The network is first built on the meta device, so that its shapes are checked against the weights before any
    memory is allocated (a config cannot make us allocate what no file holds), and the weights must be finite.

    Args:
        build: makes the network from its config (no weights needed).
        weights: its state dict, as read from a checkpoint or an exported model.
        source: the file they came from, named in errors.
        what: the network in words, e.g. ``"generator"``.
        hint: appended to the non-finite error (e.g. which other checkpoints exist).
    """
    bad = [k for k, v in weights.items() if torch.is_tensor(v) and v.is_floating_point() and not v.isfinite().all()]
    if bad:
        raise SemGANError(f"{source} holds non-finite {what} weights ({', '.join(bad[:4])}"
                          f"{', ...' if len(bad) > 4 else ''}); it cannot be used.{hint}")
    with torch.device("meta"):
        net = build()
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in weights.items() if torch.is_tensor(v)}
    if got != expected:
        wrong = sorted(set(got) ^ set(expected)) or [k for k in expected if got[k] != expected[k]]
        raise SemGANError(f"{source}: the {what} weights do not fit its own config ({', '.join(wrong[:4])})")
    net = net.to_empty(device="cpu")
    net.load_state_dict(weights)
    return net.eval()
