"""Colored Shapes: every invariant the issue and the paper state."""

from __future__ import annotations

import time

import pytest
import torch

from semgan.data import load_dataset
from semgan.data.shapes import CIRCLE, POSITIONS, RADIUS, RECT_MAX, RECT_MIN, RECTANGLE, SQUARE, SQUARE_CLASS


@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes")


def test_size_classes_palette(shapes):
    assert shapes.labels.shape == (2916, 64, 64)
    assert shapes.labels.dtype == torch.uint8
    assert shapes.class_names == ("background", "circle", "rectangle", "square")
    assert shapes.palette.tolist() == [[0, 0, 0], [0, 0, 255], [0, 255, 0], [255, 0, 0]]
    assert shapes.num_classes == 4 and len(shapes) == 2916


def test_every_square_position_exactly_once(shapes):
    # Where the circle does not cover it, the square's pixels reveal its top-left corner.
    labels = shapes.labels
    ii = torch.arange(64).view(1, 64, 1).expand_as(labels)
    jj = torch.arange(64).view(1, 1, 64).expand_as(labels)
    for i in range(0, 2916, 97):
        y0, x0 = divmod(i, POSITIONS)
        sq = labels[i] == SQUARE_CLASS
        inside = (ii[i] >= y0) & (ii[i] < y0 + SQUARE) & (jj[i] >= x0) & (jj[i] < x0 + SQUARE)
        assert not (sq & ~inside).any(), f"square pixels outside the 10x10 box of image {i}"
        # Square pixels = 100 minus exactly those the circle covers (the rectangle is drawn below it).
        assert int(sq.sum()) == 100 - int((inside & (labels[i] == CIRCLE)).sum())
    # All 54^2 top-left positions, one each: every fully visible square sits exactly where image i puts it.
    sq = labels == SQUARE_CLASS  # (N, H, W)
    full = sq.flatten(1).sum(1) == 100
    rows = sq.any(2).float().argmax(1)  # first row holding square pixels
    cols = sq.any(1).float().argmax(1)
    idx = torch.arange(2916)
    assert torch.equal(rows[full], (idx // POSITIONS)[full]) and torch.equal(cols[full], (idx % POSITIONS)[full])
    assert int(full.sum()) > 2000, "most squares are unoccluded"


def test_circle_is_a_full_radius_10_disk_on_top(shapes):
    disk_area = sum(1 for dy in range(-10, 11) for dx in range(-10, 11) if dy * dy + dx * dx <= RADIUS**2)
    counts = (shapes.labels == CIRCLE).flatten(1).sum(1)
    assert (counts == disk_area).all(), "the circle is drawn last, so it is always whole"
    for i in range(0, 2916, 131):
        pix = (shapes.labels[i] == CIRCLE).nonzero().float()
        cy, cx = pix.mean(0).round().long().tolist()
        assert RADIUS <= cy < 64 - RADIUS and RADIUS <= cx < 64 - RADIUS


def test_rectangle_size_and_inside(shapes):
    for i in range(0, 2916, 53):
        pix = (shapes.labels[i] == RECTANGLE).nonzero()
        if len(pix) == 0:
            continue  # fully covered (possible but rare)
        h = int(pix[:, 0].max() - pix[:, 0].min()) + 1
        w = int(pix[:, 1].max() - pix[:, 1].min()) + 1
        assert h <= RECT_MAX and w <= RECT_MAX
    # Rectangles that no other shape touches show their full size, which spans [8, 24] on both axes.
    sizes = []
    for i in range(0, 2916, 3):
        lab = shapes.labels[i]
        pix = (lab == RECTANGLE).nonzero()
        if len(pix) == 0:
            continue
        y0, x0 = pix.min(0).values.tolist()
        y1, x1 = pix.max(0).values.tolist()
        ring = lab[max(y0 - 1, 0) : y1 + 2, max(x0 - 1, 0) : x1 + 2]
        if len(pix) == (y1 - y0 + 1) * (x1 - x0 + 1) and not ((ring == CIRCLE) | (ring == SQUARE_CLASS)).any():
            sizes += [y1 - y0 + 1, x1 - x0 + 1]
    assert min(sizes) == RECT_MIN and max(sizes) == RECT_MAX


def test_seeded_and_deterministic():
    a, b, c = load_dataset("shapes", seed=0), load_dataset("shapes", seed=0), load_dataset("shapes", seed=1)
    assert torch.equal(a.labels, b.labels)
    assert not torch.equal(a.labels, c.labels)


def test_fast():
    # CPU time, not wall time: other processes on the machine must not fail this (it guards against a
    # per-pixel Python loop, which would take tens of seconds)
    t = time.process_time()
    load_dataset("shapes", seed=3)
    assert time.process_time() - t < 2.0


def test_wrong_size_is_refused():
    from semgan.errors import SemGANError

    with pytest.raises(SemGANError, match="64x64"):
        load_dataset("shapes", size=128)


def test_rendered_photos_pair_every_map_and_follow_its_classes():
    from semgan.config import DataConfig
    from semgan.data import pairs_from_config
    from semgan.data.shapes import PHOTO_COLORS, make_shape_pairs

    pairs = pairs_from_config(DataConfig(name="shapes"))  # no folder needed
    assert pairs.photos is not None and pairs.photos.shape == (2916, 3, 64, 64) and pairs.photos.dtype == torch.uint8
    assert torch.equal(pairs.photos, make_shape_pairs(0).photos), "seeded"
    assert not torch.equal(pairs.photos, make_shape_pairs(1).photos)
    # each class's pixels are nearest to its own photo colour on average (what a segmenter learns from)
    colors = torch.tensor(PHOTO_COLORS, dtype=torch.float32)
    for k in range(4):
        mean = pairs.photos[:64].permute(0, 2, 3, 1)[pairs.labels[:64] == k].float().mean(0)
        assert int((colors - mean).norm(dim=1).argmin()) == k
