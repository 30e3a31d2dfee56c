"""Our metrics against the ecosystem's: MS-SSIM against pytorch-msssim, the Fréchet distance against torchmetrics'.

Skipped with a reason where the reference package is missing (``make install`` installs both).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semgan.metrics.fid import feature_statistics, frechet_distance
from semgan.metrics.ms_ssim import ms_ssim

pytorch_msssim = pytest.importorskip("pytorch_msssim",
                                     reason="pytorch-msssim not installed (pip install pytorch-msssim)")


def _textured(n: int, size: int, seed: int) -> torch.Tensor:
    """(n, 3, size, size) uint8: smooth random structure, so every scale has something to compare."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size // 16, size // 16, generator=g)
    x = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    x = x + 0.15 * torch.rand(n, 3, size, size, generator=g)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


@pytest.mark.parametrize("size", [192, 256])
def test_ms_ssim_matches_pytorch_msssim(size):
    """At 192 and 256 px the window is 11 at every scale and the 2x2 downsampling agrees, so the two implementations
    differ only in colour handling: pytorch-msssim takes the product over scales per channel, then averages the
    channels; ProGAN (and we) pool the channels first. Grey images (R = G = B) must therefore agree (to float32
    rounding: their window is built in float32), and
    colour ones closely."""
    a, b = _textured(4, size, 0), _textured(4, size, 1)
    b[:2] = a[:2] // 2 + b[:2] // 2  # some similar pairs, some unrelated ones
    grey_a, grey_b = a[:, :1].expand(-1, 3, -1, -1), b[:, :1].expand(-1, 3, -1, -1)
    ours = ms_ssim(grey_a, grey_b)
    ref = pytorch_msssim.ms_ssim(grey_a.double(), grey_b.double(), data_range=255, size_average=False)
    torch.testing.assert_close(ours, ref.double(), rtol=1e-5, atol=1e-9)  # their window is built in float32
    assert float(ours[:2].min()) > float(ours[2:].max()), "similar pairs score higher"
    colour = ms_ssim(a, b)
    ref_colour = pytorch_msssim.ms_ssim(a.double(), b.double(), data_range=255, size_average=False).double()
    assert (colour - ref_colour).abs().max() < 0.05  # 0.027 on these noisy textures, 2026-11-30


def test_frechet_distance_matches_torchmetrics():
    fid_mod = pytest.importorskip("torchmetrics.image.fid",
                                  reason="torchmetrics not installed (pip install torchmetrics)")
    g = torch.Generator().manual_seed(0)
    for n, dim in ((300, 32), (50, 64)):  # full-rank and rank-deficient (N < F) covariances
        f1 = torch.randn(n, dim, generator=g, dtype=torch.float64)
        f2 = 0.8 * torch.randn(n, dim, generator=g, dtype=torch.float64) + 0.3
        mu1, s1 = feature_statistics(f1)
        mu2, s2 = feature_statistics(f2)
        ours = frechet_distance(mu1, s1, mu2, s2)
        ref = float(fid_mod._compute_fid(*(torch.from_numpy(np.asarray(v)) for v in (mu1, s1, mu2, s2))))
        assert ours == pytest.approx(ref, rel=1e-6)
