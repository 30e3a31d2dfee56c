"""MS-SSIM (ProGAN variant) against a numpy/scipy transcription of metrics.md section 3."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from semgan.errors import SemGANError
from semgan.metrics.ms_ssim import ms_ssim, ms_ssim_pairs

# ----------------------------------------------------------------------------------------------- numpy reference
# NHWC float64, fftconvolve 'valid' with a (1, s, s, 1) window, channels pooled, clip at 0, product per image.


def np_fspecial_gauss(size: int, sigma: float) -> np.ndarray:
    radius = size // 2
    offset, start, stop = 0.0, -radius, radius + 1
    if size % 2 == 0:
        offset, stop = 0.5, stop - 1
    x, y = np.mgrid[offset + start : stop, offset + start : stop]
    g = np.exp(-((x**2 + y**2) / (2.0 * sigma**2)))
    return g / g.sum()


def np_ssim_cs(img1: np.ndarray, img2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, height, width, _ = img1.shape
    size = min(11, height, width)
    sigma = size * 1.5 / 11
    window = np_fspecial_gauss(size, sigma).reshape(1, size, size, 1)
    mu1 = signal.fftconvolve(img1, window, mode="valid")
    mu2 = signal.fftconvolve(img2, window, mode="valid")
    s11 = signal.fftconvolve(img1 * img1, window, mode="valid") - mu1 * mu1
    s22 = signal.fftconvolve(img2 * img2, window, mode="valid") - mu2 * mu2
    s12 = signal.fftconvolve(img1 * img2, window, mode="valid") - mu1 * mu2
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    v1, v2 = 2.0 * s12 + c2, s11 + s22 + c2
    ssim = np.mean((2.0 * mu1 * mu2 + c1) * v1 / ((mu1 * mu1 + mu2 * mu2 + c1) * v2), axis=(1, 2, 3))
    return ssim, np.mean(v1 / v2, axis=(1, 2, 3))


def np_ms_ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a, b: (N, 3, H, W) uint8 -> (N,) float64."""
    weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
    im1, im2 = (x.transpose(0, 2, 3, 1).astype(np.float64) for x in (a, b))
    mssim, mcs = [], []
    for _ in range(len(weights)):
        ssim, cs = np_ssim_cs(im1, im2)
        mssim.append(ssim)
        mcs.append(cs)
        im1, im2 = ((x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]) / 4 for x in (im1, im2))
    mssim_a, mcs_a = np.clip(np.stack(mssim), 0, np.inf), np.clip(np.stack(mcs), 0, np.inf)
    return np.prod(mcs_a[:-1] ** weights[:-1, None], axis=0) * mssim_a[-1] ** weights[-1]


def blobs(n: int, size: int, seed: int) -> torch.Tensor:
    """Smooth random colour images (low-pass noise), so every scale carries structure."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size // 4, size // 4, generator=g)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (x * 255).round().to(torch.uint8)


# ----------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("size", [16, 64, 128])
def test_matches_numpy_transcription(size: int) -> None:
    a, b = blobs(4, size, seed=0), blobs(4, size, seed=1)
    noisy = (a.int() + torch.randint(-20, 21, a.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 255)
    c = noisy.to(torch.uint8)
    for x, y in ((a, b), (a, c)):
        np.testing.assert_allclose(ms_ssim(x, y).numpy(), np_ms_ssim(x.numpy(), y.numpy()), rtol=1e-6, atol=1e-9)


def test_non_square_and_odd_even_windows() -> None:
    a, b = blobs(2, 64, seed=3)[:, :, :, :48], blobs(2, 64, seed=4)[:, :, :, :48]
    np.testing.assert_allclose(ms_ssim(a, b).numpy(), np_ms_ssim(a.numpy(), b.numpy()), rtol=1e-6)


def test_identical_pairs_give_one() -> None:
    x = blobs(6, 64, seed=5)
    # exactly 1 up to float64 rounding (the reduction order of the convolutions varies between CPUs)
    torch.testing.assert_close(ms_ssim(x, x), torch.ones(6, dtype=torch.float64), rtol=0, atol=1e-12)
    assert ms_ssim_pairs(torch.cat([x[:1], x[:1], x[1:2], x[1:2]])) == pytest.approx(1.0, abs=1e-12)


def test_known_value_on_constructed_pair() -> None:
    # Constant grey vs a horizontal ramp: hand-checkable structure, value fixed by the numpy transcription.
    a = torch.full((1, 3, 32, 32), 128, dtype=torch.uint8)
    b = torch.arange(32).mul(8).clamp(max=255).to(torch.uint8).view(1, 1, 1, 32).expand(1, 3, 32, 32).contiguous()
    ours = float(ms_ssim(a, b)[0])
    assert ours == pytest.approx(float(np_ms_ssim(a.numpy(), b.numpy())[0]), rel=1e-9)
    assert 0.0 < ours < 0.5


def test_pairs_are_consecutive_and_odd_last_dropped() -> None:
    x = blobs(5, 32, seed=6)
    expected = ms_ssim(x[0:4:2], x[1:4:2]).mean().item()
    assert ms_ssim_pairs(x) == pytest.approx(expected, rel=1e-12)
    assert ms_ssim_pairs(x, batch_size=1) == pytest.approx(expected, rel=1e-12)
    # Independent random images are far less similar than near-duplicates.
    assert ms_ssim_pairs(x) < 0.5


def test_refuses_small_or_mismatched_images() -> None:
    x = blobs(2, 16, seed=7)
    with pytest.raises(SemGANError, match="at least 16x16 px.*got 15x16"):
        ms_ssim(x[:, :, :15], x[:, :, :15])
    with pytest.raises(SemGANError, match="equal shape"):
        ms_ssim(x, x[:1])
    with pytest.raises(SemGANError, match="at least 2 images"):
        ms_ssim_pairs(x[:1])
