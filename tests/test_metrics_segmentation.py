"""Pixel accuracy, per-class IoU and mIoU of paired label maps, against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from semgan.errors import SemGANError
from semgan.metrics import compute_metrics
from semgan.metrics.segmentation import confusion_matrix, segmentation_scores


def test_scores_against_a_hand_computation():
    target = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1]]])  # (1, 2, 4): four 0s, four 1s; class 2 nowhere
    pred = torch.tensor([[[0, 1, 1, 1], [0, 0, 1, 3]]])  # one 0 read as 1, one 1 read as 3
    assert confusion_matrix(target, pred, 4).tolist() == [[3, 1, 0, 0], [0, 3, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]
    s = segmentation_scores(target, pred, 4)
    assert s["pixel_acc"] == 6 / 8
    # class 0: 3 / (4 + 3 - 3); class 1: 3 / (4 + 4 - 3); class 2 in neither set: None; class 3 only predicted: 0
    assert s["iou"] == [3 / 4, 3 / 5, None, 0.0]
    assert s["miou"] == pytest.approx((3 / 4 + 3 / 5 + 0) / 3), "the absent class is left out, the spurious one counts"


def test_counts_are_summed_over_the_set_before_dividing():
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[1] = 1
    pred = target.clone()
    pred[1, 0, 0] = 0  # one pixel of the second map wrong
    s = segmentation_scores(target, pred, 2)
    assert s["iou"] == [16 / 17, 15 / 16] and s["pixel_acc"] == 31 / 32


def test_perfect_and_empty_and_bad_inputs():
    maps = torch.randint(0, 3, (5, 8, 8), generator=torch.Generator().manual_seed(0))
    assert segmentation_scores(maps, maps, 3) == {"pixel_acc": 1.0, "miou": 1.0, "iou": [1.0, 1.0, 1.0]}
    empty = segmentation_scores(maps[:0], maps[:0], 3)
    assert math.isnan(empty["pixel_acc"]) and math.isnan(empty["miou"]) and empty["iou"] == [None] * 3
    with pytest.raises(SemGANError, match="outside the 3 classes"):
        segmentation_scores(maps, maps + 1, 3)
    with pytest.raises(SemGANError, match="one shape"):
        segmentation_scores(maps, maps[:4], 3)


def test_registered_metrics_read_paired_labels():
    palette = torch.tensor([[0, 0, 0], [255, 0, 0], [0, 255, 0]], dtype=torch.uint8)
    maps = torch.randint(0, 3, (4, 8, 8), generator=torch.Generator().manual_seed(1))
    wrong = maps.clone()
    wrong[:, 0] = (wrong[:, 0] + 1) % 3  # one row of eight wrong in every map
    images = palette[maps].permute(0, 3, 1, 2).contiguous()
    fakes = palette[wrong].permute(0, 3, 1, 2).contiguous()
    out = compute_metrics(images, fakes, ["miou", "pixel_acc"], generator=torch.Generator(), palette=palette,
                          progress=False)
    assert out["pixel_acc"] == out["miou_pixel_acc"] == 7 / 8
    assert out["miou"] == pytest.approx(segmentation_scores(maps, wrong, 3)["miou"])
    with pytest.raises(SemGANError, match="paired label maps"):
        compute_metrics(images, fakes[:3], ["miou"], generator=torch.Generator(), palette=palette, progress=False)
