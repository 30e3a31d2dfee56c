"""ProGAN's SWD steps one at a time, kept so the tests can check each step of the fast path; not used by semgan.

:func:`semgan.metrics.swd.swd` runs the whole metric in a few fused passes (all levels per pass over the images,
z-scoring folded into the projection directions), so its intermediate results are never materialised. The
functions here compute them separately, step by step (pyramid filters, Laplacian pyramid, per-set z-scoring,
sliced Wasserstein distance of two descriptor sets), with the same helpers as the fast path, so that
``tests/test_metrics_swd.py`` can compare each step against a plain numpy/scipy transcription of ProGAN.
Nothing in the ``semgan`` package imports this module.
"""

from __future__ import annotations

import torch

from semgan.errors import SemGANError
from semgan.metrics.swd import (
    DIR_REPEATS,
    DIRS_PER_REPEAT,
    PROJECTION_BUFFER_BYTES,
    _down_1d,
    _laplacian_levels,
    _mean_std,
    _projected_distance,
    _unit_rows,
    _up_1d,
    descriptor_moments,
    draw_directions,
)

# ----------------------------------------------------------------------------------------------- pyramid


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """cv2 ``pyrDown``: (N, C, H, W) float -> (N, C, ceil(H/2), ceil(W/2)), binomial 5x5 blur then decimation."""
    return _down_1d(_down_1d(x, 2), 3)


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    """cv2 ``pyrUp``: (N, C, H, W) float -> (N, C, 2H, 2W), zero insertion and the 5x5 binomial kernel x 4."""
    return _up_1d(_up_1d(x, 2), 3)


def laplacian_pyramid(images: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid of (N, C, H, W) images, finest first (``pyr_down`` / ``pyr_up`` as in cv2).

    Args:
        images: (N, C, H, W) uint8 or float; converted to float32 without rescaling (0..255 stays 0..255).
        num_levels: number of levels L; H and W must be divisible by 2**(L-1).

    Returns:
        L float32 tensors of shape (N, C, H / 2**l, W / 2**l); levels 0..L-2 are band-pass
        (G_l - pyr_up(G_l+1)), the last is the Gaussian low-pass residual.
    """
    H, W = images.shape[-2:]
    if num_levels < 1 or H % (1 << (num_levels - 1)) or W % (1 << (num_levels - 1)):
        raise ValueError(f"{num_levels} pyramid levels need H and W divisible by {1 << max(0, num_levels - 1)}")
    return [lap for _, lap in _laplacian_levels(images, range(num_levels), num_levels)]


# ----------------------------------------------------------------------------------------------- descriptors


def normalize_descriptors(desc: torch.Tensor, channels: int = 3) -> torch.Tensor:
    """Z-score (M, C * s * s) descriptors per channel over the whole set (ProGAN step 4).

    Mean and std (ddof=0) are taken over (M, s, s) for each channel; a channel with zero variance is only centred.
    Returns a new float32 tensor.
    """
    total, total_sq = descriptor_moments(desc, channels)
    mean, std = _mean_std(total, total_sq, desc.shape[0] * (desc.shape[1] // channels))
    d = desc.float().view(desc.shape[0], channels, -1)  # (M, C, s*s)
    return ((d - mean.float().view(1, -1, 1)) / std.float().view(1, -1, 1)).view(desc.shape)


# ----------------------------------------------------------------------------------------------- projections


def sliced_wasserstein(
    desc_a: torch.Tensor,
    desc_b: torch.Tensor,
    directions: torch.Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
    dir_repeats: int = DIR_REPEATS,
    dirs_per_repeat: int = DIRS_PER_REPEAT,
    buffer_bytes: int = PROJECTION_BUFFER_BYTES,
    sort_backend: str = "auto",
) -> float:
    """Sliced Wasserstein distance between two equally sized descriptor sets (ProGAN step 5).

    Each direction is normalised to unit L2 norm; both sets are projected, each projection is sorted, and the
    mean |sorted a - sorted b| is taken over descriptors and directions (= the mean over repeats, since every
    repeat has D directions).

    Args:
        desc_a: (M, F) float32 descriptors (already normalised).
        desc_b: (M, F) float32 descriptors; same shape as ``desc_a``.
        directions: (R, F, D) or (F, D) raw directions; drawn from ``generator`` when None.
        generator: source of the directions when they are not given.
        dir_repeats: R when drawing.
        dirs_per_repeat: D when drawing.
        buffer_bytes: bound on the two projection buffers; directions are processed in chunks that fit.
        sort_backend: "numpy" (CPU only), "torch" or "auto" (numpy on CPU, torch elsewhere).

    Returns:
        The distance as a Python float (not scaled by 1e3).
    """
    if desc_a.shape != desc_b.shape or desc_a.dim() != 2:
        raise SemGANError(
            f"sliced Wasserstein needs two (M, F) descriptor sets of equal shape (equal real and fake counts), "
            f"got {tuple(desc_a.shape)} and {tuple(desc_b.shape)}"
        )
    if directions is None:
        if generator is None:
            raise ValueError("pass either directions or a generator")
        directions = draw_directions(
            desc_a.shape[1], generator=generator, dir_repeats=dir_repeats, dirs_per_repeat=dirs_per_repeat
        )
    rows = _unit_rows(directions, desc_a.shape[1], desc_a.device)
    return _projected_distance(
        desc_a.float(), desc_b.float(), rows, None, None, buffer_bytes=buffer_bytes, sort_backend=sort_backend
    )
