"""Sliced Wasserstein Distance between two image sets, ProGAN's multi-scale variant (Karras et al. 2017).

Re-implemented from the ProGAN paper and a reading of its released ``metrics/sliced_wasserstein.py``
(tkarras/progressive_growing_of_gans; CC BY-NC, so not copied). Per pyramid level (finest first, down to 16 px
high):

1. a Laplacian pyramid of every image: 5x5 binomial kernel, reflect-101 borders, upsampling by zero insertion
   and the kernel times 4 (cv2 ``pyrDown``/``pyrUp``); the coarsest level is the Gaussian low-pass residual;
2. 128 random 7x7x3 neighbourhoods per image, centres drawn independently with replacement in [3, S - 4];
3. each set's descriptors z-scored per colour channel with that set's own mean and std (ddof=0);
4. 4 repeats x 128 random unit-L2 directions; project, sort each direction, mean |sorted real - sorted fake|;
5. times 1e3; the result is one value per level plus their average.

All randomness comes from the explicit ``generator``. Per level, finest first, the draws are: real patch centres
(y then x), fake patch centres (y then x), then the directions. Patch centres and directions can also be
injected, which is how the tests compare against a plain numpy transcription; the steps one at a time, for the
tests only, are in ``semgan.metrics._reference``.

Speed (2916 vs 2916 images at 64 px in ~4-5 s on 2 CPU cores): projection (a float32 GEMM, 2 x 373k descriptors
x 147 x 512 directions per level) and sorting dominate. On CPU the sort runs in numpy, whose SIMD sort is ~20x
faster than ``torch.sort``, on one thread per core over the rows of one reusable (directions, descriptors)
buffer; on other devices ``torch.sort`` is used. The rest is kept to a few large operations: the pyramid as
small matrix products, descriptors gathered by ``index_select`` straight into preallocated sets, the per-set
normalisation folded into the directions, and all levels extracted in one pass when memory allows.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from semgan.errors import SemGANError
from semgan.metrics.checks import check_images

NHOOD_SIZE = 7
NHOODS_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
MIN_RESOLUTION = 16
SCALE = 1e3  # ProGAN reports SWD x 1e3
KEY_AVG = "avg"

# Default extraction batch: this many pixel values per batch (64 MB as float32).
BATCH_VALUES = 2**24
# Levels are extracted in one pass over the images while both sets' descriptors fit in this budget (2916 images
# at 64 px: 3 levels, 1.3 GB); larger sets go one level at a time (16384 at 128 px: 2.5 GB per level).
DESCRIPTOR_BUDGET_BYTES = 2 * 2**30
# Upper bound on the two (directions, descriptors) float32 projection buffers; sets the direction chunk.
PROJECTION_BUFFER_BYTES = 512 * 2**20


# ----------------------------------------------------------------------------------------------- pyramid


def pyramid_resolutions(height: int) -> list[int]:
    """Level heights ProGAN uses for images of this height: H, H/2, ... while >= 16.

    >>> pyramid_resolutions(64)
    [64, 32, 16]
    """
    res = [height]
    while res[-1] // 2 >= MIN_RESOLUTION:
        res.append(res[-1] // 2)
    return res


def _reflect101_pad(x: torch.Tensor, dim: int, pad: int) -> torch.Tensor:
    """Reflect-101 padding (scipy 'mirror', cv2 BORDER_REFLECT_101) of ``pad`` samples along one dimension."""
    n = x.shape[dim]
    left = x.narrow(dim, 1, pad).flip(dim)
    right = x.narrow(dim, n - 1 - pad, pad).flip(dim)
    return torch.cat([left, x, right], dim)


def _down_1d(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Binomial [1, 4, 6, 4, 1] / 16 filter along ``dim`` evaluated at even positions only (reflect-101)."""
    n = x.shape[dim]
    xp = _reflect101_pad(x, dim, 2)
    m = (n + 1) // 2  # outputs at 0, 2, 4, ... < n

    def tap(t: int) -> torch.Tensor:
        return xp.narrow(dim, t, 2 * m - 1)[(slice(None),) * (dim % x.dim()) + (slice(None, None, 2),)]

    # Integer weights first, one division at the end: the separable form of K = outer(k, k) / 256.
    return (tap(0) + tap(4) + 4 * (tap(1) + tap(3)) + 6 * tap(2)) / 16


def _up_1d(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Zero insertion x2 then the [1, 4, 6, 4, 1] / 8 filter along ``dim``, evaluated polyphase.

    Reflect-101 padding of the zero-inserted signal z (length 2n) gives z[-2] = x[1] on the left but
    z[2n] = z[2n - 2] = x[n - 1] on the right, so in terms of x the left border reflects and the right border
    replicates. Even outputs are (x[i-1] + 6 x[i] + x[i+1]) / 8 and odd outputs (x[i] + x[i+1]) / 2.
    """
    n = x.shape[dim]
    if n == 1:
        return torch.cat([x, x], dim)  # a single sample is constant under both phases
    xp = torch.cat([x.narrow(dim, 1, 1), x, x.narrow(dim, n - 1, 1)], dim)  # (.., n + 2, ..)
    prev, cur, nxt = xp.narrow(dim, 0, n), xp.narrow(dim, 1, n), xp.narrow(dim, 2, n)
    even = (prev + nxt + 6 * cur) / 8
    odd = (cur + nxt) / 2
    return torch.stack([even, odd], dim + 1).flatten(dim, dim + 1)


@functools.lru_cache(maxsize=32)
def _axis_operators(n: int, level: int, last: bool) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """1-D linear maps along one axis of length ``n`` for pyramid level ``level`` (float32).

    Returns ``(A, D, U)``: A (n_l, n) = D^l takes the input to Gaussian level l (None at level 0, the identity);
    D (n_l+1, n_l) is one ``pyrDown`` step and U (n_l, n_l+1) one ``pyrUp`` step (both empty at the last
    level). Both pyramid filters are separable with per-axis borders, so a 2-D step is M X M^T. Pushing an
    identity matrix through the same 1-D filters gives the exact dyadic coefficients, and matrix products are
    much faster on CPU than strided elementwise filtering.
    """
    a = torch.eye(n, dtype=torch.float64)
    for _ in range(level):
        a = _down_1d(a, 0)
    n_l = a.shape[0]
    d = torch.zeros(0, n_l) if last else _down_1d(torch.eye(n_l, dtype=torch.float64), 0)
    u = torch.zeros(n_l, 0) if last else _up_1d(torch.eye(d.shape[0], dtype=torch.float64), 0)
    return (None if level == 0 else a.float()), d.float(), u.float()


def _apply_separable(x: torch.Tensor, m_h: torch.Tensor, m_w: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, h, w): m_h (h, H) along the rows and m_w (w, W) along the columns."""
    return torch.matmul(torch.matmul(m_h.to(x.device), x), m_w.to(x.device).t())


def _laplacian_levels(
    images: torch.Tensor, levels: Sequence[int], num_levels: int
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(level, laplacian)`` for consecutive ``levels`` of (N, C, H, W) images, finest first.

    G_l0 = A X A^T straight from the input, then step by step: G_l+1 = D G_l D^T and
    L_l = G_l - U G_l+1 U^T (the last pyramid level is G itself). Each level is float32 (N, C, H/2^l, W/2^l).
    """
    x = images.to(torch.float32)
    H, W = x.shape[-2:]
    first = levels[0]
    a_h = _axis_operators(H, first, first == num_levels - 1)[0]
    a_w = _axis_operators(W, first, first == num_levels - 1)[0]
    gauss = x if a_h is None or a_w is None else _apply_separable(x, a_h, a_w)
    for level in levels:
        if level == num_levels - 1:
            yield level, gauss
            return
        _, d_h, u_h = _axis_operators(H, level, False)
        _, d_w, u_w = _axis_operators(W, level, False)
        coarser = _apply_separable(gauss, d_h, d_w)
        yield level, gauss - _apply_separable(coarser, u_h, u_w)
        gauss = coarser


# ----------------------------------------------------------------------------------------------- descriptors


def draw_patch_centres(
    n: int,
    height: int,
    width: int,
    *,
    generator: torch.Generator,
    nhoods_per_image: int = NHOODS_PER_IMAGE,
    nhood_size: int = NHOOD_SIZE,
) -> torch.Tensor:
    """Random neighbourhood centres, drawn independently with replacement, as ProGAN does.

    Returns:
        (N, P, 2) int64 (y, x) centres with y in [r, height - r - 1], x in [r, width - r - 1], r = nhood_size // 2,
        on the generator's device.
    """
    r = nhood_size // 2
    dev = generator.device
    ys = torch.randint(r, height - r, (n, nhoods_per_image), generator=generator, device=dev)
    xs = torch.randint(r, width - r, (n, nhoods_per_image), generator=generator, device=dev)
    return torch.stack([ys, xs], dim=-1)


def extract_descriptors(
    level: torch.Tensor,
    centres: torch.Tensor,
    nhood_size: int = NHOOD_SIZE,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gather square neighbourhoods around given centres.

    Args:
        level: (N, C, H, W) float tensor (one pyramid level).
        centres: (N, P, 2) integer (y, x) centres, each at least ``nhood_size // 2`` from every border.
        nhood_size: side s of the square neighbourhood (7 in ProGAN).
        out: optional contiguous (N * P, C * s * s) tensor to write into (saves a copy).

    Returns:
        (N * P, C * s * s) descriptors laid out (channel, y, x), image-major.
    """
    N, C, H, W = level.shape
    s, r = nhood_size, nhood_size // 2
    if centres.dim() != 3 or centres.shape[0] != N or centres.shape[2] != 2:
        raise ValueError(f"centres must be (N={N}, P, 2), got shape {tuple(centres.shape)}")
    P = centres.shape[1]
    level = level.contiguous()
    top_left = centres.to(level.device, torch.long) - r  # (N, P, 2)
    if N * P:
        lo, hi = torch.aminmax(top_left.view(-1, 2), dim=0)  # one reduction: (y, x) minima and maxima
        (y_lo, x_lo), (y_hi, x_hi) = lo.tolist(), hi.tolist()
        if min(y_lo, x_lo) < 0 or y_hi > H - s or x_hi > W - s:
            raise ValueError(
                f"neighbourhood centres must lie in [{r}, H - {r + 1}] x [{r}, W - {r + 1}] for H={H}, W={W}"
            )
    # Gather rows, not whole windows: a zero-copy view of every run of s consecutive values of the flat storage,
    # indexed by its start; row (c, dy) of the window at top-left (y, x) of image n starts at
    # n*C*H*W + c*H*W + (y + dy)*W + x. index_select copies these contiguous runs straight into the output,
    # ~2x faster than advanced indexing of (C, s, s) windows plus a copy.
    runs = level.view(-1).as_strided((level.numel() - (s - 1), s), (1, 1))
    image = torch.arange(N, device=level.device).view(N, 1)
    starts = (image * (C * H * W) + top_left[..., 0] * W + top_left[..., 1]).view(-1, 1)  # (N * P, 1)
    row_offsets = torch.arange(C, device=level.device).view(C, 1) * (H * W) + torch.arange(s, device=level.device) * W
    if out is None:
        out = torch.empty(N * P, C * s * s, dtype=level.dtype, device=level.device)
    elif tuple(out.shape) != (N * P, C * s * s) or not out.is_contiguous():
        raise ValueError(f"out must be a contiguous ({N * P}, {C * s * s}) tensor, got {tuple(out.shape)}")
    torch.index_select(runs, 0, (starts + row_offsets.view(1, -1)).view(-1), out=out.view(N * P * C * s, s))
    return out


def descriptor_moments(desc: torch.Tensor, channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel sum and sum of squares of (M, C * s * s) descriptors, in float64: ((C,), (C,))."""
    d = desc.view(desc.shape[0], channels, -1)  # (M, C, s*s)
    # Short float32 reductions per descriptor (49 terms) are exact enough; the long sums over M run in float64.
    # vector_norm squares on the fly, without a (M, C, s*s) temporary.
    sq = torch.linalg.vector_norm(d, dim=2).square()
    return d.sum(2).sum(0, dtype=torch.float64), sq.sum(0, dtype=torch.float64)


def _mean_std(total: torch.Tensor, total_sq: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (ddof=0) from float64 sums; a constant channel gets std 1, so it is only centred."""
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
    return mean, torch.where(std > 0, std, torch.ones_like(std))


# ----------------------------------------------------------------------------------------------- projections


def draw_directions(
    dim: int,
    *,
    generator: torch.Generator,
    dir_repeats: int = DIR_REPEATS,
    dirs_per_repeat: int = DIRS_PER_REPEAT,
) -> torch.Tensor:
    """(R, dim, D) float32 standard normal directions (not yet normalised), on the generator's device."""
    return torch.randn(dir_repeats, dim, dirs_per_repeat, generator=generator, device=generator.device)


@functools.lru_cache(maxsize=4)
def _sort_pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool for the numpy sorts (created once per worker count, idle threads otherwise)."""
    return ThreadPoolExecutor(workers, thread_name_prefix="semgan-swd-sort")


def _sort_abs_diff_numpy(pa: np.ndarray, pb: np.ndarray, shift: np.ndarray, workers: int) -> float:
    """Sum over rows i of sum |sort(pa[i]) - sort(pb[i]) - shift[i]|, sorting in place on ``workers`` threads."""
    n = pa.shape[0]
    # Rows are handed out one at a time rather than in fixed halves, so that a core shared with another process
    # does not leave the other thread idle at the end. next() on a count is atomic under the GIL.
    counter = itertools.count()

    def work() -> float:
        total = 0.0
        while (i := next(counter)) < n:
            a, b = pa[i], pb[i]
            a.sort()  # numpy's SIMD sort, ~20x faster than torch.sort on CPU; releases the GIL
            b.sort()
            np.subtract(a, b, out=a)
            if shift[i]:
                a -= shift[i]
            np.abs(a, out=a)
            total += float(a.sum())  # float32 pairwise summation of one row; rows add up in float64
        return total

    if workers <= 1 or n == 1:
        return work()
    pool = _sort_pool(workers)
    return sum(f.result() for f in [pool.submit(work) for _ in range(min(workers, n))])


def _sort_abs_diff_torch(pa: torch.Tensor, pb: torch.Tensor, shift: torch.Tensor) -> float:
    sa = torch.sort(pa, dim=1).values
    sb = torch.sort(pb, dim=1).values
    return float((sa - sb - shift.view(-1, 1)).abs().sum(dtype=torch.float64))


Moments = tuple[torch.Tensor, torch.Tensor]  # per-channel (mean, std), float64, shape (C,) each


def _projected_distance(
    desc_a: torch.Tensor,
    desc_b: torch.Tensor,
    rows: torch.Tensor,
    moments_a: Moments | None,
    moments_b: Moments | None,
    *,
    buffer_bytes: int,
    sort_backend: str,
    buffers: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> float:
    """Mean |sorted projection difference| over (M descriptors) x (R*D unit directions ``rows``).

    With ``moments_x = (mean, std)`` the set is z-scored on the fly: (d - m) / s . v = d . (v / s) - (m / s) . v,
    and the constant term shifts every projection of one direction equally, so it is subtracted after sorting.
    That saves two passes over the descriptors (mathematically identical, differs only in float rounding).
    ``buffers``: two reusable (chunk, M) float32 projection buffers (avoids fresh page faults on every call).
    """
    M, dim = desc_a.shape
    dev = desc_a.device
    R = rows.shape[0]
    if sort_backend == "auto":
        sort_backend = "numpy" if dev.type == "cpu" else "torch"
    if sort_backend not in ("numpy", "torch"):
        raise ValueError(f"sort_backend must be 'auto', 'numpy' or 'torch', got {sort_backend!r}")
    if sort_backend == "numpy" and dev.type != "cpu":
        raise ValueError(f"sort_backend 'numpy' needs CPU tensors, got {dev}")

    def folded(moments: Moments | None) -> tuple[torch.Tensor, torch.Tensor]:
        if moments is None:
            return rows, torch.zeros(R, dtype=torch.float64, device=dev)
        mean, std = (t.to(dev, torch.float64) for t in moments)
        per_coord = dim // mean.shape[0]  # coordinates per channel block (s*s)
        scaled = rows.double() / std.repeat_interleave(per_coord)  # (R*D, F)
        return scaled.float(), scaled @ mean.repeat_interleave(per_coord)

    rows_a, shift_a = folded(moments_a)
    rows_b, shift_b = folded(moments_b)
    shift = shift_a - shift_b  # (R*D,) float64

    if buffers is None:
        chunk = _direction_chunk(R, M, buffer_bytes)
        buffers = (
            torch.empty(chunk, M, dtype=torch.float32, device=dev),
            torch.empty(chunk, M, dtype=torch.float32, device=dev),
        )
    buf_a, buf_b = buffers
    chunk = buf_a.shape[0]
    a_t, b_t = desc_a.t(), desc_b.t()  # (F, M) views; mm reads them transposed, no copy
    workers = max(1, torch.get_num_threads())
    total = 0.0
    for lo in range(0, R, chunk):
        hi = min(R, lo + chunk)
        pa, pb = buf_a[: hi - lo], buf_b[: hi - lo]  # (c, M) contiguous: one direction per row
        torch.mm(rows_a[lo:hi], a_t, out=pa)
        torch.mm(rows_b[lo:hi], b_t, out=pb)
        if sort_backend == "numpy":
            # float32 shifts keep the per-row arithmetic in float32 (a float64 scalar would upcast the loop).
            shift_rows = shift[lo:hi].to(torch.float32).cpu().numpy()
            total += _sort_abs_diff_numpy(pa.numpy(), pb.numpy(), shift_rows, workers)
        else:
            total += _sort_abs_diff_torch(pa, pb, shift[lo:hi].to(torch.float32))
    return total / (R * M)


def _direction_chunk(num_dirs: int, num_desc: int, buffer_bytes: int) -> int:
    """Directions per projection chunk so that two (chunk, M) float32 buffers fit in ``buffer_bytes``."""
    return max(1, min(num_dirs, buffer_bytes // (2 * 4 * max(num_desc, 1))))


def _unit_rows(directions: torch.Tensor, dim: int, device: torch.device) -> torch.Tensor:
    """(R, F, D) or (F, D) raw directions -> (R*D, F) float32 unit-L2 rows (normalised in float64)."""
    dirs = directions.to(device, torch.float64)
    if dirs.dim() == 2:
        dirs = dirs.unsqueeze(0)
    if dirs.dim() != 3 or dirs.shape[1] != dim:
        raise ValueError(f"directions must be (R, {dim}, D) or ({dim}, D), got shape {tuple(directions.shape)}")
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    return dirs.permute(0, 2, 1).reshape(-1, dim).float().contiguous()


# ----------------------------------------------------------------------------------------------- full metric


def swd(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    generator: torch.Generator,
    nhoods_per_image: int = NHOODS_PER_IMAGE,
    nhood_size: int = NHOOD_SIZE,
    dir_repeats: int = DIR_REPEATS,
    dirs_per_repeat: int = DIRS_PER_REPEAT,
    batch_size: int | None = None,
    patch_centres: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
    directions: Sequence[torch.Tensor] | None = None,
    sort_backend: str = "auto",
) -> dict[str, float]:
    """ProGAN's multi-scale Sliced Wasserstein Distance x 1e3 between two image sets.

    Args:
        real: (N, 3, H, W) uint8 images.
        fake: (N, 3, H, W) uint8 images; same shape as ``real`` (equal counts, as ProGAN requires).
        generator: the only source of randomness (patch centres, directions).
        nhoods_per_image: neighbourhoods per image and level (128).
        nhood_size: neighbourhood side (7).
        dir_repeats: projection repeats (4).
        dirs_per_repeat: directions per repeat (128).
        batch_size: images per pyramid/extraction batch; affects memory and speed, never the value. When None,
            batches of about 16M pixel values (1365 images at 64x64), few enough torch calls that thread
            synchronisation stays cheap.
        patch_centres: per level (finest first), (real, fake) centres of shape (N, P, 2); replaces the draws.
        directions: per level, raw (R, 3 * nhood_size**2, D) directions; replaces the draws.
        sort_backend: "numpy" (CPU only), "torch" or "auto" (numpy on CPU, torch elsewhere).

    Returns:
        ``{"64": .., "32": .., "16": .., "avg": ..}`` for 64 px high images: one key per level height, finest
        first, plus the average.
    """
    check_images(real, "SWD real images")
    check_images(fake, "SWD fake images")
    if real.shape[0] != fake.shape[0]:
        raise SemGANError(
            f"SWD needs equal real and fake counts (ProGAN compares equally sized descriptor sets); got "
            f"{real.shape[0]} real and {fake.shape[0]} fake images"
        )
    if real.shape[1:] != fake.shape[1:]:
        raise SemGANError(
            f"SWD needs real and fake images of the same size; got real {tuple(real.shape[2:])} and "
            f"fake {tuple(fake.shape[2:])}"
        )
    if fake.device != real.device:
        raise SemGANError(f"real and fake images are on different devices: {real.device} and {fake.device}")
    N, C, H, W = real.shape
    if N == 0:
        raise SemGANError("SWD needs at least one image per set, got 0")
    if batch_size is None:
        batch_size = max(1, BATCH_VALUES // (C * H * W))
    if batch_size < 1:
        raise SemGANError(f"batch_size must be positive, got {batch_size}")
    resolutions = pyramid_resolutions(H)
    L = len(resolutions)
    coarsest_w = W >> (L - 1)
    if H < MIN_RESOLUTION or H % (1 << (L - 1)) or W % (1 << (L - 1)) or coarsest_w < nhood_size:
        raise SemGANError(
            f"SWD needs images at least {MIN_RESOLUTION} px high whose height and width are divisible by "
            f"{1 << (L - 1)} (levels {resolutions}) and at least {nhood_size << (L - 1)} px wide; got {H}x{W}"
        )
    if patch_centres is not None and len(patch_centres) != L:
        raise ValueError(f"patch_centres must hold {L} (real, fake) pairs, one per level, got {len(patch_centres)}")
    if directions is not None and len(directions) != L:
        raise ValueError(f"directions must hold {L} tensors, one per level, got {len(directions)}")

    dim = C * nhood_size * nhood_size
    dev = real.device
    # All draws come first, in one fixed order (per level: real centres, fake centres, directions), so the value
    # does not depend on how levels are grouped below.
    centres: list[tuple[torch.Tensor, torch.Tensor]] = []
    raw_dirs: list[torch.Tensor] = []
    for level in range(L):
        h, w = H >> level, W >> level
        if patch_centres is not None:
            pair = patch_centres[level]
            centres.append((pair[0].to(dev, torch.int32), pair[1].to(dev, torch.int32)))
        else:
            real_c = draw_patch_centres(
                N, h, w, generator=generator, nhoods_per_image=nhoods_per_image, nhood_size=nhood_size
            )
            fake_c = draw_patch_centres(
                N, h, w, generator=generator, nhoods_per_image=nhoods_per_image, nhood_size=nhood_size
            )
            # int32 storage: 16384 images x 128 patches x 4 levels x 2 sets would be 270 MB as int64.
            centres.append((real_c.to(dev, torch.int32), fake_c.to(dev, torch.int32)))
        if directions is not None:
            raw_dirs.append(directions[level])
        else:
            raw_dirs.append(
                draw_directions(dim, generator=generator, dir_repeats=dir_repeats, dirs_per_repeat=dirs_per_repeat)
            )

    # Levels whose descriptors fit in DESCRIPTOR_BUDGET_BYTES share one pass over the images (one uint8 -> float
    # conversion and one Gaussian chain per batch); otherwise one level at a time, which bounds memory at two
    # descriptor sets (16384 images at 128 px: 2 x 1.2 GB). Buffers are allocated once and reused.
    level_bytes = [2 * 4 * dim * N * centres[level][0].shape[1] for level in range(L)]
    groups: list[list[int]] = [[]]
    for level in range(L):
        if groups[-1] and sum(level_bytes[i] for i in groups[-1]) + level_bytes[level] > DESCRIPTOR_BUDGET_BYTES:
            groups.append([])
        groups[-1].append(level)
    storage: dict[tuple[str, int], torch.Tensor] = {}

    def buffer(name: str, rows: int, cols: int) -> torch.Tensor:
        if (name, rows * cols) not in storage:
            storage[(name, rows * cols)] = torch.empty(rows * cols, dtype=torch.float32, device=dev)
        return storage[(name, rows * cols)].view(rows, cols)

    result: dict[str, float] = {}
    for group in groups:
        descs: dict[tuple[int, int], torch.Tensor] = {}  # (set, level) -> (N * P, dim)
        moments: dict[tuple[int, int], Moments] = {}
        for s, images in enumerate((real, fake)):
            sums = {level: torch.zeros(2, C, dtype=torch.float64, device=dev) for level in group}
            for slot, level in enumerate(group):
                descs[(s, level)] = buffer(f"desc{s}.{slot}", N * centres[level][s].shape[1], dim)
            for lo in range(0, N, batch_size):
                hi = min(N, lo + batch_size)
                for level, lap in _laplacian_levels(images[lo:hi], group, L):  # (B, C, h, w) each
                    P = centres[level][s].shape[1]
                    d = extract_descriptors(
                        lap, centres[level][s][lo:hi], nhood_size, out=descs[(s, level)][lo * P : hi * P]
                    )
                    s1, s2 = descriptor_moments(d, C)
                    sums[level][0] += s1
                    sums[level][1] += s2
            for level in group:
                count = descs[(s, level)].shape[0] * nhood_size * nhood_size
                moments[(s, level)] = _mean_std(sums[level][0], sums[level][1], count)
        for level in group:
            rows = _unit_rows(raw_dirs[level], dim, dev)
            M = descs[(0, level)].shape[0]
            chunk = _direction_chunk(rows.shape[0], M, PROJECTION_BUFFER_BYTES)
            dist = _projected_distance(
                descs[(0, level)],
                descs[(1, level)],
                rows,
                moments[(0, level)],
                moments[(1, level)],
                buffer_bytes=PROJECTION_BUFFER_BYTES,
                sort_backend=sort_backend,
                buffers=(buffer("proj0", chunk, M), buffer("proj1", chunk, M)),
            )
            result[str(resolutions[level])] = dist * SCALE
    result[KEY_AVG] = math.fsum(result.values()) / L
    return result
