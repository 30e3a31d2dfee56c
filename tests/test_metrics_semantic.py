"""Semantic metrics on constructed inputs with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semgan.errors import SemGANError
from semgan.metrics.semantic import (
    class_frequency_distance,
    class_histograms,
    class_shares,
    fsd,
    js_divergence,
    label_validity,
    semantic_metrics,
)

REAL = torch.tensor([[[0, 0], [1, 1]], [[0, 0], [0, 2]]])  # per image: (1/2, 1/2, 0) and (3/4, 0, 1/4)
FAKE = torch.tensor([[[2, 2], [2, 2]], [[0, 1], [0, 1]]])  # per image: (0, 0, 1) and (1/2, 1/2, 0)
PALETTE = torch.tensor([[0, 0, 0], [255, 0, 0]], dtype=torch.uint8)


def test_class_histograms_and_shares() -> None:
    hist = class_histograms(REAL, 3)
    assert hist.dtype == torch.float64
    assert hist.tolist() == [[0.5, 0.5, 0.0], [0.75, 0.0, 0.25]]
    np.testing.assert_array_equal(class_shares(REAL, 3), [5 / 8, 2 / 8, 1 / 8])
    np.testing.assert_array_equal(class_shares(FAKE, 3), [2 / 8, 2 / 8, 4 / 8])


def test_class_frequency_distance_by_hand() -> None:
    p, q = np.array([5, 2, 1]) / 8, np.array([2, 2, 4]) / 8
    d = class_frequency_distance(p, q)
    assert d["l1"] == pytest.approx(0.75)
    assert d["tv"] == pytest.approx(0.375)
    # m = (7, 4, 5) / 16; the middle class has p = q = m and contributes 0.
    kl_p = 5 / 8 * math.log2(10 / 7) + 1 / 8 * math.log2(2 / 5)
    kl_q = 2 / 8 * math.log2(4 / 7) + 4 / 8 * math.log2(8 / 5)
    assert d["js"] == pytest.approx((kl_p + kl_q) / 2, rel=1e-12)


def test_js_divergence_bounds() -> None:
    assert js_divergence(np.array([0.3, 0.7]), np.array([0.3, 0.7])) == 0.0
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


def test_fsd_by_hand() -> None:
    # Two maps per set: rank-1 covariances d d^T / 2 and e e^T / 2 with d = (-1/4, 1/2, -1/4), e = (-1/2, -1/2, 1):
    # tr sqrt(S1 S2) = |d . e| / 2 = 3/16; tr S1 = 3/16; tr S2 = 3/4; |mu1 - mu2|^2 = 2 * (3/8)^2.
    expected = 2 * (3 / 8) ** 2 + 3 / 16 + 3 / 4 - 2 * 3 / 16
    assert expected == 0.84375
    assert fsd(REAL, FAKE, 3) == pytest.approx(expected, abs=1e-7)
    assert fsd(REAL, REAL, 3) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(SemGANError, match="at least 2 fake"):
        fsd(REAL, FAKE[:1], 3)


def test_label_validity_by_hand() -> None:
    pixels = [[0, 0, 0], [255, 0, 0], [250, 5, 0], [128, 0, 0]]  # exact, exact, 7.07 away, 127 away
    images = torch.tensor(pixels, dtype=torch.uint8).T.reshape(1, 3, 2, 2)
    assert label_validity(images, PALETTE) == 0.75
    assert label_validity(images, PALETTE, tolerance=5) == 0.5
    assert label_validity(images, PALETTE.numpy(), tolerance=200, batch_size=1) == 1.0


def test_semantic_metrics_dict() -> None:
    real_img = PALETTE[REAL.clamp(max=1)].permute(0, 3, 1, 2)
    out = semantic_metrics(REAL, FAKE, 3, real_images=real_img, fake_images=real_img, palette=PALETTE)
    assert set(out) == {
        "num_classes",
        "class_share_real",
        "class_share_fake",
        "class_share_l1",
        "class_share_tv",
        "class_share_js",
        "fsd",
        "validity_real",
        "validity_fake",
    }
    assert out["class_share_real"] == [5 / 8, 2 / 8, 1 / 8]
    assert out["class_share_l1"] == pytest.approx(0.75)
    assert out["validity_real"] == 1.0
    assert "validity_real" not in semantic_metrics(REAL, FAKE, 3)


def test_refuses_bad_labels() -> None:
    with pytest.raises(SemGANError, match=r"real labels hold values in \[1, 3\].*\[0, 2\] for 3 classes"):
        semantic_metrics(REAL + 1, FAKE, 3)
    with pytest.raises(SemGANError, match="integer"):
        semantic_metrics(REAL.float(), FAKE, 3)
    with pytest.raises(SemGANError, match="palette"):
        semantic_metrics(REAL, FAKE, 3, fake_images=torch.zeros(2, 3, 2, 2, dtype=torch.uint8))
    with pytest.raises(SemGANError, match=r"\(K, 3\)"):
        label_validity(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), torch.zeros(3, dtype=torch.uint8))
