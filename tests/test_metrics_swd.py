"""SWD (ProGAN variant): pyramid and full metric against an independent numpy/scipy transcription, properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from semgan.errors import SemGANError
from semgan.metrics import swd as swd_mod
from semgan.metrics._reference import laplacian_pyramid, normalize_descriptors, pyr_down, pyr_up, sliced_wasserstein
from semgan.metrics.swd import draw_patch_centres, extract_descriptors, pyramid_resolutions, swd

# ----------------------------------------------------------------------------------------------- numpy reference
# A plain transcription of metrics.md section 1, steps 1-6, in float64 (scipy 'mirror' = reflect-101).

_K = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float64) / 256.0


def np_pyr_down(x: np.ndarray) -> np.ndarray:
    return ndimage.convolve(x, _K[None, None], mode="mirror")[:, :, ::2, ::2]


def np_pyr_up(x: np.ndarray) -> np.ndarray:
    res = np.zeros((x.shape[0], x.shape[1], 2 * x.shape[2], 2 * x.shape[3]), x.dtype)
    res[:, :, ::2, ::2] = x
    return ndimage.convolve(res, 4 * _K[None, None], mode="mirror")


def np_laplacian(x: np.ndarray, num_levels: int) -> list[np.ndarray]:
    pyramid = [x.astype(np.float64)]
    for _ in range(1, num_levels):
        pyramid.append(np_pyr_down(pyramid[-1]))
        pyramid[-2] -= np_pyr_up(pyramid[-1])
    return pyramid


def np_descriptors(level: np.ndarray, centres: np.ndarray, size: int = 7) -> np.ndarray:
    r = size // 2
    out = [
        level[n, :, y - r : y + r + 1, x - r : x + r + 1]  # (C, s, s)
        for n in range(centres.shape[0])
        for y, x in centres[n]
    ]
    return np.stack(out)  # (M, C, s, s)


def np_normalize(desc: np.ndarray) -> np.ndarray:
    desc = desc - desc.mean(axis=(0, 2, 3), keepdims=True)
    desc = desc / desc.std(axis=(0, 2, 3), keepdims=True)
    return desc.reshape(desc.shape[0], -1)


def np_sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: np.ndarray) -> float:
    results = []
    for dirs in directions:  # (F, D) per repeat
        dirs = dirs / np.sqrt(np.sum(np.square(dirs), axis=0, keepdims=True))
        pa = np.sort(a @ dirs, axis=0)
        pb = np.sort(b @ dirs, axis=0)
        results.append(np.mean(np.abs(pa - pb)))
    return float(np.mean(results))


def np_swd(real: np.ndarray, fake: np.ndarray, centres: list, directions: list) -> list[float]:
    L = len(centres)
    pyr = [np_laplacian(real, L), np_laplacian(fake, L)]
    dist = []
    for level in range(L):
        da = np_normalize(np_descriptors(pyr[0][level], centres[level][0]))
        db = np_normalize(np_descriptors(pyr[1][level], centres[level][1]))
        dist.append(np_sliced_wasserstein(da, db, directions[level]) * 1e3)
    return dist + [float(np.mean(dist))]


# ----------------------------------------------------------------------------------------------- test data


def render_rectangles(n: int, seed: int, size: int = 64, blur: bool = False) -> torch.Tensor:
    """(n, 3, size, size) uint8 renders of 3 random rectangles on black with a 4-colour palette."""
    g = torch.Generator().manual_seed(seed)
    palette = torch.tensor([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.uint8)
    labels = torch.zeros(n, size, size, dtype=torch.long)
    for k in range(1, 4):
        hw = torch.randint(size // 8, size // 2, (n, 2), generator=g)
        y0 = (torch.rand(n, generator=g) * (size - hw[:, 0])).long()
        x0 = (torch.rand(n, generator=g) * (size - hw[:, 1])).long()
        ii = torch.arange(size).view(1, size, 1)
        jj = torch.arange(size).view(1, 1, size)
        inside = (
            (ii >= y0.view(-1, 1, 1))
            & (ii < (y0 + hw[:, 0]).view(-1, 1, 1))
            & (jj >= x0.view(-1, 1, 1))
            & (jj < (x0 + hw[:, 1]).view(-1, 1, 1))
        )
        labels[inside] = k
    images = palette[labels].permute(0, 3, 1, 2).contiguous()
    if blur:  # 3x3 box blur: soft, off-palette boundaries
        x = torch.nn.functional.avg_pool2d(images.float(), 3, stride=1, padding=1, count_include_pad=False)
        images = x.round().to(torch.uint8)
    return images


# ----------------------------------------------------------------------------------------------- pyramid


def test_resolutions() -> None:
    assert pyramid_resolutions(128) == [128, 64, 32, 16]
    assert pyramid_resolutions(64) == [64, 32, 16]
    assert pyramid_resolutions(16) == [16]


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (2, 3, 15, 9), (1, 2, 6, 6)])
def test_pyr_down_up_match_scipy(shape: tuple[int, int, int, int]) -> None:
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 255
    np.testing.assert_allclose(pyr_down(x).numpy(), np_pyr_down(x.numpy()), atol=1e-9)
    np.testing.assert_allclose(pyr_up(x).numpy(), np_pyr_up(x.numpy()), atol=1e-9)


@pytest.mark.parametrize(("height", "width"), [(64, 64), (64, 32), (32, 48)])
def test_laplacian_pyramid_matches_scipy(height: int, width: int) -> None:
    images = torch.randint(0, 256, (3, 3, height, width), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    L = len(pyramid_resolutions(height))
    ours = laplacian_pyramid(images, L)
    ref = np_laplacian(images.numpy(), L)
    assert len(ours) == L
    for level, (a, b) in enumerate(zip(ours, ref, strict=True)):
        assert a.dtype == torch.float32
        assert a.shape == (3, 3, height >> level, width >> level)
        np.testing.assert_allclose(a.numpy(), b, atol=2e-3)


# ----------------------------------------------------------------------------------------------- pieces


def test_extract_descriptors_layout_and_bounds() -> None:
    level = torch.arange(2 * 3 * 10 * 12, dtype=torch.float32).view(2, 3, 10, 12)
    centres = torch.tensor([[[3, 3], [6, 8]], [[5, 4], [3, 8]]])
    desc = extract_descriptors(level, centres)
    assert desc.shape == (4, 147)
    expected = level[1, :, 5 - 3 : 5 + 4, 4 - 3 : 4 + 4].reshape(-1)  # image 1, centre 0: (channel, y, x)
    assert torch.equal(desc[2], expected)
    np.testing.assert_array_equal(desc.view(4, 3, 7, 7).numpy(), np_descriptors(level.numpy(), centres.numpy()))
    with pytest.raises(ValueError, match="centres must lie"):
        extract_descriptors(level, torch.tensor([[[2, 3]], [[3, 3]]]))
    with pytest.raises(ValueError, match="centres must lie"):
        extract_descriptors(level, torch.tensor([[[3, 9]], [[3, 3]]]))


def test_patch_centres_range() -> None:
    c = draw_patch_centres(64, 16, 20, generator=torch.Generator().manual_seed(0))
    assert c.shape == (64, 128, 2)
    assert int(c[..., 0].min()) == 3 and int(c[..., 0].max()) == 12
    assert int(c[..., 1].min()) == 3 and int(c[..., 1].max()) == 16


def test_normalize_descriptors_matches_numpy() -> None:
    desc = torch.rand(50, 3, 7, 7, generator=torch.Generator().manual_seed(0)) * 255
    ours = normalize_descriptors(desc.view(50, -1))
    np.testing.assert_allclose(ours.numpy(), np_normalize(desc.double().numpy()), atol=1e-5)
    # A constant channel is centred, not divided by zero.
    desc[:, 1] = 7.0
    assert torch.isfinite(normalize_descriptors(desc.view(50, -1))).all()


def test_sliced_wasserstein_matches_numpy_and_is_symmetric() -> None:
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(500, 147, generator=g), torch.randn(500, 147, generator=g) * 1.2 + 0.1
    dirs = torch.randn(4, 147, 32, generator=g)
    ref = np_sliced_wasserstein(a.double().numpy(), b.double().numpy(), dirs.double().numpy())
    ab = sliced_wasserstein(a, b, dirs)
    assert ab == pytest.approx(ref, rel=1e-5)
    assert sliced_wasserstein(b, a, dirs) == ab  # exactly symmetric for fixed directions
    # Chunked projection and the torch sort give the same value.
    assert sliced_wasserstein(a, b, dirs, buffer_bytes=3 * 2 * 4 * 500) == pytest.approx(ab, rel=1e-6)
    assert sliced_wasserstein(a, b, dirs, sort_backend="torch") == pytest.approx(ab, rel=1e-6)
    with pytest.raises(SemGANError, match="equal shape"):
        sliced_wasserstein(a, b[:-1], dirs)


# ----------------------------------------------------------------------------------------------- full metric


def _injected(n: int, height: int, width: int, seed: int, repeats: int = 4, dirs: int = 128) -> tuple[list, list]:
    g = torch.Generator().manual_seed(seed)
    centres, directions = [], []
    for level in range(len(pyramid_resolutions(height))):
        h, w = height >> level, width >> level
        centres.append((draw_patch_centres(n, h, w, generator=g), draw_patch_centres(n, h, w, generator=g)))
        directions.append(torch.randn(repeats, 147, dirs, generator=g))
    return centres, directions


@pytest.mark.parametrize(("height", "width"), [(64, 64), (32, 48)])
def test_swd_matches_numpy_transcription(height: int, width: int) -> None:
    real = render_rectangles(12, seed=0, size=64)[:, :, :height, :width].contiguous()
    fake = render_rectangles(12, seed=1, size=64, blur=True)[:, :, :height, :width].contiguous()
    centres, directions = _injected(12, height, width, seed=5)
    ours = swd(real, fake, generator=torch.Generator(), patch_centres=centres, directions=directions)
    ref = np_swd(
        real.numpy(),
        fake.numpy(),
        [(c[0].numpy(), c[1].numpy()) for c in centres],
        [d.double().numpy() for d in directions],
    )
    keys = [str(r) for r in pyramid_resolutions(height)] + ["avg"]
    assert list(ours) == keys
    np.testing.assert_allclose([ours[k] for k in keys], ref, rtol=1e-4)


def test_swd_noise_floor_and_blur() -> None:
    real = render_rectangles(256, seed=10)
    same = render_rectangles(256, seed=11)
    blurred = render_rectangles(256, seed=11, blur=True)
    floor = swd(real, same, generator=torch.Generator().manual_seed(0))
    blur = swd(real, blurred, generator=torch.Generator().manual_seed(0))
    self_dist = swd(real, real, generator=torch.Generator().manual_seed(0))
    assert set(floor) == {"64", "32", "16", "avg"}
    assert all(v > 0 for v in floor.values())
    assert floor["64"] < 15
    # Soft, off-palette boundaries show up at the finest level (metrics.md section 4: ~20x the floor at
    # N = 2048; here N = 256 raises the floor to ~13 and blur gives ~63).
    assert blur["64"] > 3 * floor["64"]
    assert blur["avg"] > floor["avg"]
    # A set against itself with independent patch draws sits at or below the noise floor.
    assert self_dist["64"] < 1.5 * floor["64"]


def test_swd_batch_size_independent_and_seeded() -> None:
    real, fake = render_rectangles(40, seed=2), render_rectangles(40, seed=3)
    a = swd(real, fake, generator=torch.Generator().manual_seed(7), batch_size=256)
    b = swd(real, fake, generator=torch.Generator().manual_seed(7), batch_size=7)
    c = swd(real, fake, generator=torch.Generator().manual_seed(8), batch_size=7)
    assert a == pytest.approx(b, rel=1e-6)
    assert a != c


def test_swd_roughly_symmetric() -> None:
    real, fake = render_rectangles(128, seed=4), render_rectangles(128, seed=5, blur=True)
    ab = swd(real, fake, generator=torch.Generator().manual_seed(0))
    ba = swd(fake, real, generator=torch.Generator().manual_seed(0))
    # Different patch draws per role: equal up to sampling noise, and exactly equal with swapped injections.
    assert ab["64"] == pytest.approx(ba["64"], rel=0.15)
    centres, directions = _injected(16, 64, 64, seed=1, repeats=1, dirs=16)
    x = swd(real[:16], fake[:16], generator=torch.Generator(), patch_centres=centres, directions=directions)
    swapped = [(f, r) for r, f in centres]
    y = swd(fake[:16], real[:16], generator=torch.Generator(), patch_centres=swapped, directions=directions)
    assert x == pytest.approx(y, rel=1e-6)


def test_swd_torch_sort_backend_matches_numpy() -> None:
    real, fake = render_rectangles(16, seed=6), render_rectangles(16, seed=7)
    a = swd(real, fake, generator=torch.Generator().manual_seed(0), sort_backend="numpy")
    b = swd(real, fake, generator=torch.Generator().manual_seed(0), sort_backend="torch")
    assert a == pytest.approx(b, rel=1e-5)


def test_swd_refuses_bad_inputs() -> None:
    real = render_rectangles(4, seed=0)
    g = torch.Generator()
    with pytest.raises(SemGANError, match="4 real and 3 fake"):
        swd(real, real[:3], generator=g)
    with pytest.raises(SemGANError, match="at least 16 px"):
        swd(real[:, :, :8, :8], real[:, :, :8, :8], generator=g)
    with pytest.raises(SemGANError, match="divisible by 4"):
        swd(real[:, :, :, :62], real[:, :, :, :62], generator=g)
    with pytest.raises(SemGANError, match="uint8"):
        swd(real.float(), real.float(), generator=g)
    with pytest.raises(SemGANError, match="same size"):
        swd(real, real[:, :, :32, :32].contiguous(), generator=g)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_swd_cuda_matches_cpu() -> None:
    real, fake = render_rectangles(32, seed=8), render_rectangles(32, seed=9, blur=True)
    cpu = swd(real, fake, generator=torch.Generator().manual_seed(0))
    gpu = swd(real.cuda(), fake.cuda(), generator=torch.Generator().manual_seed(0))
    assert gpu == pytest.approx(cpu, rel=1e-4)


def test_module_constants() -> None:
    assert (swd_mod.NHOOD_SIZE, swd_mod.NHOODS_PER_IMAGE, swd_mod.DIR_REPEATS, swd_mod.DIRS_PER_REPEAT) == (
        7,
        128,
        4,
        128,
    )


def test_swd_level_grouping_does_not_change_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    real, fake = render_rectangles(24, seed=12), render_rectangles(24, seed=13, blur=True)
    together = swd(real, fake, generator=torch.Generator().manual_seed(3))
    monkeypatch.setattr(swd_mod, "DESCRIPTOR_BUDGET_BYTES", 1)  # one level per pass over the images
    apart = swd(real, fake, generator=torch.Generator().manual_seed(3))
    assert apart == pytest.approx(together, rel=1e-6)
