"""Label utilities: one-hot, argmax, colorize, snapping, PNG round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from semgan.errors import SemGANError
from semgan.labels import (
    argmax,
    colorize,
    make_grid,
    one_hot,
    read_label_png,
    read_rgb_png,
    rgb_to_uint8,
    snap_to_palette,
    uint8_to_rgb,
    write_label_png,
    write_rgb_png,
)

PALETTE = torch.tensor([[0, 0, 0], [0, 0, 255], [0, 255, 0], [255, 0, 0], [200, 100, 50]], dtype=torch.uint8)


@pytest.fixture
def labels():
    return torch.randint(0, 5, (3, 16, 12), generator=torch.Generator().manual_seed(0))


def test_one_hot_argmax_round_trip(labels):
    onehot = one_hot(labels, 5)
    assert onehot.shape == (3, 5, 16, 12)
    assert torch.equal(onehot.sum(1), torch.ones(3, 16, 12))
    assert torch.equal(argmax(onehot), labels)


def test_colorize_and_snap_round_trip(labels):
    images = colorize(labels, PALETTE)
    assert images.shape == (3, 3, 16, 12) and images.dtype == torch.uint8
    assert torch.equal(images[1, :, 4, 5], PALETTE[labels[1, 4, 5]])
    assert torch.equal(snap_to_palette(images, PALETTE), labels)
    # Small colour noise still snaps to the right class.
    noisy = (images.int() + torch.randint(-20, 21, images.shape)).clamp(0, 255).to(torch.uint8)
    assert torch.equal(snap_to_palette(noisy, PALETTE), labels)


def test_colorize_out_of_range():
    with pytest.raises(ValueError, match="outside the palette"):
        colorize(torch.tensor([[7]]), PALETTE)


def test_rgb_uint8_round_trip():
    images = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    assert torch.equal(rgb_to_uint8(uint8_to_rgb(images)), images)
    assert rgb_to_uint8(torch.tensor([-5.0, 5.0])).tolist() == [0, 255]


def test_label_png_round_trip(tmp_path, labels):
    path = tmp_path / "a.png"
    write_label_png(path, labels[0], PALETTE)
    img = Image.open(path)
    assert img.mode == "P"
    assert np.array_equal(np.asarray(img), labels[0].numpy())  # pixel value = class index
    assert img.getpalette()[3:6] == [0, 0, 255]
    assert np.array_equal(read_label_png(path), labels[0].numpy())
    assert np.array_equal(read_rgb_png(path), colorize(labels[0], PALETTE).numpy())


def test_read_label_png_refuses_rgb_and_corrupt(tmp_path):
    write_rgb_png(tmp_path / "rgb.png", torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(SemGANError, match="mode-RGB.*index PNG"):
        read_label_png(tmp_path / "rgb.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(SemGANError, match="bad.png"):
        read_label_png(tmp_path / "bad.png")
    with pytest.raises(SemGANError, match="not found"):
        read_label_png(tmp_path / "missing.png")


def test_make_grid():
    images = torch.full((5, 3, 8, 8), 255, dtype=torch.uint8)
    grid = make_grid(images, nrow=4, pad=2)
    assert grid.shape == (3, 2 * 10 + 2, 4 * 10 + 2)
    assert int(grid[0, 2, 2]) == 255 and int(grid[0, 0, 0]) == 128
