"""Structure metrics: connected components against scipy's, and what they say about real and broken maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from semgan.data import load_dataset
from semgan.errors import SemGANError
from semgan.metrics import compute_metrics
from semgan.metrics.structure import component_stats, structure_metrics


def test_component_counts_match_scipy_per_map_and_class():
    labels = torch.randint(0, 3, (12, 24, 24), generator=torch.Generator().manual_seed(0))
    counts, fragment = component_stats(labels, 4, min_size=3)
    for i in range(12):
        for k in range(4):
            ref, n = ndimage.label((labels[i] == k).numpy())  # 4-connectivity by default
            assert counts[i, k] == n
            assert bool(fragment[i, k]) == bool((np.bincount(ref.ravel())[1:] < 3).any())
    assert counts[:, 3].sum() == 0, "an absent class has no component"


def test_two_disjoint_halves_of_colored_shapes_agree():
    ds = load_dataset("shapes")
    m = structure_metrics(ds.labels[:512], ds.labels[512:1024], 4)
    assert m["count_tv_mean"] < 0.03 and abs(m["fragments"] - m["fragments_real"]) < 0.04
    assert m["one_per_class_classes"] == [0, 1, 2, 3]  # background, circle, rectangle, square
    assert 0.85 < m["one_per_class_real"] < 0.97 and abs(m["one_per_class"] - m["one_per_class_real"]) < 0.05
    assert m["presence_real"][1] == 1.0


def test_broken_maps_score_badly():
    ds = load_dataset("shapes")
    real = ds.labels[:256]
    specks = real.clone()
    specks[:, ::8, ::8] = 1  # a grid of one-pixel circles over every map
    blank = torch.zeros_like(real)  # background only
    broken = structure_metrics(real, specks, 4)
    assert broken["fragments"] == 1.0 and broken["count_tv"][1] > 0.9 and broken["one_per_class"] == 0.0
    empty = structure_metrics(real, blank, 4)
    assert empty["presence"] == [1.0, 0.0, 0.0, 0.0] and empty["count_tv"][2] > 0.9
    assert empty["presence_min"] == 0.0 and empty["presence_min_real"] > 0.0  # a class never drawn shows


def test_registered_and_checked():
    ds = load_dataset("shapes")
    images = torch.zeros(8, 3, 64, 64, dtype=torch.uint8)
    result = compute_metrics(images, images, ["structure"], generator=torch.Generator(), palette=ds.palette)
    assert result["structure"]["count_tv_mean"] == 0.0
    with pytest.raises(SemGANError, match="palette"):
        compute_metrics(images, images, ["structure"], generator=torch.Generator())
    with pytest.raises(SemGANError, match="non-empty"):
        structure_metrics(torch.zeros(0, 4, 4, dtype=torch.int64), ds.labels[:2], 4)
