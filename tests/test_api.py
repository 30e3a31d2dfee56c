"""The Python API in two lines, and StyleGAN-style seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import semgan
from semgan.api import parse_seeds
from semgan.cli import main
from semgan.config import apply_overrides, get_preset
from semgan.errors import SemGANError
from semgan.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = apply_overrides(get_preset("tiny"), {"train.device": "cpu", "train.steps": 4})
    return train(cfg, tmp_path_factory.mktemp("api") / "run", progress=False)


def test_two_lines(run):
    gen = semgan.load(run)
    out = gen.sample(5, seed=1)
    K, R = len(gen.class_names), gen.resolution
    assert out.labels.shape == (5, R, R) and out.images.shape == (5, 3, R, R) and out.probs.shape == (5, K, R, R)
    assert torch.equal(out.labels, out.probs.argmax(1)) and torch.allclose(out.probs.sum(1), torch.ones(5, R, R))
    assert torch.equal(out.images, gen.render(out.labels))
    assert torch.equal(gen.sample(5, seed=1).labels, out.labels), "a seed gives the same maps"


def test_a_seed_gives_its_map_whatever_else_is_asked(run):
    gen = semgan.load(run)
    a, b = gen.sample_seeds([3, 7]), gen.sample_seeds([7, 100, 3])
    assert torch.equal(a.labels[0], b.labels[2]) and torch.equal(a.labels[1], b.labels[0])


def test_parse_seeds():
    assert parse_seeds("0-3,7,10-11") == [0, 1, 2, 3, 7, 10, 11]
    for bad in ("3-1", "x", "-2", "0-999999", ""):
        with pytest.raises(SemGANError, match="--seeds"):
            parse_seeds(bad)


def test_cli_seeds(run, tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sample", str(run), "--seeds", "0-2,9", "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "color").iterdir()) == [f"seed{s:04d}.png" for s in (0, 1, 2, 9)]
    labels = np.asarray(Image.open(out / "labels" / "seed0009.png"))
    assert np.array_equal(labels, semgan.load(run).sample_seeds([9]).labels[0].numpy())
    assert main(["sample", str(run), "--seeds", "9", "--out", str(out)]) == 2
    assert "already holds seed0009.png" in capsys.readouterr().err


def test_seeds_named_twice_or_past_the_largest_are_refused():
    with pytest.raises(SemGANError, match="names seed 2 more than once"):
        parse_seeds("0-3,2")
    with pytest.raises(SemGANError, match="past the largest seed"):
        parse_seeds("99999999999999999999")
    with pytest.raises(SemGANError, match="names seed 5 more than once"):
        parse_seeds("0-99999,5")  # at most 100000 seeds: counted once each, not in a quadratic loop (it took 69 s)
