"""MS-SSIM between image pairs, ProGAN's variant (Wang et al. 2003; metrics.md section 3), for diversity.

Differences from the textbook / TF version, all ProGAN's, so that 64 and 128 px images work with 5 scales:

- the Gaussian window is ``min(11, h, w)`` wide with sigma scaled to ``size * 1.5 / 11`` (even sizes use the
  half-pixel-offset Gaussian), applied as a 'valid' convolution;
- ssim and cs are means over (C, h, w) per image, i.e. colour channels are pooled;
- 2x2 mean downsampling between scales (odd sizes drop the last row/column, where ProGAN's code would fail);
- per-scale ssim / cs are clipped at 0, the weighted product is taken per image pair, and only then averaged.

L = 255 (uint8 images), weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), not renormalised. Computed in float64.
Lower mean MS-SSIM over pairs of generated images = more diverse; report the real-pair baseline beside it.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from semgan.errors import SemGANError
from semgan.metrics.checks import check_images

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
FILTER_SIZE = 11
FILTER_SIGMA = 1.5
K1, K2 = 0.01, 0.03
MAX_VAL = 255.0
MIN_SIZE = 16


@functools.lru_cache(maxsize=64)
def _valid_gauss_operator(n: int, size: int, sigma: float) -> torch.Tensor:
    """(n - size + 1, n) float64 matrix applying the 1-D factor of ProGAN's ``_FSpecialGauss`` window ('valid').

    The 2-D window exp(-(x^2 + y^2) / 2 sigma^2) / sum is the outer product of two normalised 1-D Gaussians, so a
    2-D valid convolution is one matrix product per axis. Even sizes sample at half-integer offsets.
    """
    radius = size // 2
    offset = 0.5 if size % 2 == 0 else 0.0
    x = torch.arange(size, dtype=torch.float64) - radius + offset
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    g = g / g.sum()
    op = torch.zeros(n - size + 1, n, dtype=torch.float64)
    for i in range(n - size + 1):
        op[i, i : i + size] = g  # symmetric kernel: correlation = convolution
    return op


def _ssim_cs(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image SSIM and contrast-structure term at one scale: (N, C, H, W) float64 -> ((N,), (N,))."""
    H, W = x.shape[-2:]
    size = min(FILTER_SIZE, H, W)
    sigma = size * FILTER_SIGMA / FILTER_SIZE
    op_h = _valid_gauss_operator(H, size, sigma).to(x.device)
    op_w = _valid_gauss_operator(W, size, sigma).to(x.device)
    # The five local moments in one batch: (5, N, C, H, W) -> (5, N, C, H', W').
    stack = torch.stack([x, y, x * x, y * y, x * y])
    mu1, mu2, s11, s22, s12 = torch.matmul(torch.matmul(op_h, stack), op_w.t())
    mu11, mu22, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s11, s22, s12 = s11 - mu11, s22 - mu22, s12 - mu12
    c1, c2 = (K1 * MAX_VAL) ** 2, (K2 * MAX_VAL) ** 2
    v1 = 2.0 * s12 + c2
    v2 = s11 + s22 + c2
    ssim = ((2.0 * mu12 + c1) * v1 / ((mu11 + mu22 + c1) * v2)).mean(dim=(1, 2, 3))
    cs = (v1 / v2).mean(dim=(1, 2, 3))
    return ssim, cs


def _check_pair_images(a: torch.Tensor, what: str) -> None:
    check_images(a, f"MS-SSIM {what}", uint8=False)  # float inputs on the 0..255 scale work too
    if min(a.shape[-2:]) < MIN_SIZE:
        raise SemGANError(
            f"MS-SSIM needs images of at least {MIN_SIZE}x{MIN_SIZE} px (5 scales), got {a.shape[-2]}x{a.shape[-1]}"
        )


def ms_ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MS-SSIM of each image pair (a[i], b[i]).

    Args:
        a: (N, 3, H, W) uint8 images in [0, 255] (float inputs are taken on the same 0..255 scale).
        b: (N, 3, H, W) images, same shape as ``a``.

    Returns:
        (N,) float64 tensor, 1 for identical pairs, on the inputs' device.

    >>> x = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    >>> ms_ssim(x, x).tolist()
    [1.0, 1.0]
    """
    _check_pair_images(a, "inputs")
    if a.shape != b.shape:
        raise SemGANError(f"MS-SSIM needs pairs of equal shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    x, y = a.to(torch.float64), b.to(torch.float64)
    mcs, ssim = [], torch.zeros(0)
    for scale in range(len(WEIGHTS)):
        ssim, cs = _ssim_cs(x, y)
        mcs.append(cs)
        if scale < len(WEIGHTS) - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    # Clip at 0 before the fractional powers (a negative cs would give NaN), as ProGAN does.
    weights = torch.tensor(WEIGHTS, dtype=torch.float64, device=x.device)
    cs_all = torch.stack(mcs[:-1]).clamp_min(0)  # (S - 1, N)
    return (cs_all ** weights[:-1, None]).prod(dim=0) * ssim.clamp_min(0) ** weights[-1]


def ms_ssim_pairs(images: torch.Tensor, *, batch_size: int = 256) -> float:
    """Mean MS-SSIM over consecutive pairs (0, 1), (2, 3), ... of (N, 3, H, W) images (ProGAN's protocol).

    An odd last image is left out. Needs at least two images. Lower = more diverse.
    """
    _check_pair_images(images, "images")
    n_pairs = images.shape[0] // 2
    if n_pairs == 0:
        raise SemGANError(f"MS-SSIM over pairs needs at least 2 images, got {images.shape[0]}")
    total = 0.0
    for lo in range(0, n_pairs, batch_size):
        hi = min(n_pairs, lo + batch_size)
        total += float(ms_ssim(images[2 * lo : 2 * hi : 2], images[2 * lo + 1 : 2 * hi : 2]).sum())
    return total / n_pairs
