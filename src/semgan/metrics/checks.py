"""The one check of an image set every metric starts with: (N, 3, H, W), uint8 unless a metric takes floats too."""

from __future__ import annotations

import torch

from semgan.errors import SemGANError


def check_images(images: torch.Tensor, what: str, *, uint8: bool = True) -> None:
    """Raise a :class:`~semgan.errors.SemGANError` naming ``what`` unless ``images`` is an RGB image batch.

    Args:
        images: the tensor to check.
        what: how the message names the set, e.g. ``"real images"`` or ``"FID fake images"``.
        uint8: also require dtype uint8 (values in [0, 255]); False where float inputs on the same scale work.
    """
    shape_ok = images.dim() == 4 and images.shape[1] == 3
    if not shape_ok or (uint8 and images.dtype != torch.uint8):
        expected = "(N, 3, H, W) uint8 RGB in [0, 255]" if uint8 else "(N, 3, H, W) RGB"
        raise SemGANError(f"{what} must be {expected}, got {images.dtype} of shape {tuple(images.shape)}")
