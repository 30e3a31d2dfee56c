"""Device names: ``auto``, ``cpu``, ``cuda``, ``cuda:1``; one resolver for every command."""

from __future__ import annotations

import torch

from semgan.errors import SemGANError


def resolve_device(name: str, *, key: str = "train.device") -> torch.device:
    """The device ``name`` stands for: ``auto`` is CUDA when available, else the CPU.

    Raises:
        SemGANError: for a name that is not a device, or a CUDA device this machine does not have.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise SemGANError(f"{key}={name!r} is not a device name (e.g. cpu, cuda, cuda:1, auto)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SemGANError(f"{key}={name!r} but CUDA is not available on this machine; use cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SemGANError(f"{key}={name!r} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise SemGANError(f"{key}={name!r}: semgan trains on cpu or cuda devices")
    return device
