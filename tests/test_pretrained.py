"""The model shipped inside the package: sampled from the CLI and the API right after install."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import semgan
from semgan.cli import main
from semgan.errors import SemGANError
from semgan.pretrained import PRETRAINED, pretrained_path


def test_sample_pretrained_shapes_by_seed(tmp_path):
    assert main(["sample", "--pretrained", "shapes", "--seeds", "0-15", "--out", str(tmp_path / "x")]) == 0
    files = sorted(p.name for p in (tmp_path / "x" / "labels").iterdir())
    assert files == [f"seed{s:04d}.png" for s in range(16)]
    gen = semgan.load("pretrained:shapes")
    assert (gen.resolution, gen.class_names) == (64, ("background", "circle", "rectangle", "square"))
    again = gen.sample_seeds([3]).labels[0].numpy()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x" / "labels" / "seed0003.png")), again), \
        "the CLI and the API give seed 3 the same map"
    maps = gen.sample(64, seed=0)
    assert maps.probs is not None and torch.allclose(maps.probs.sum(1), torch.ones(64, 64, 64), atol=1e-4)
    assert set(maps.labels.unique().tolist()) == {0, 1, 2, 3}, "every class is drawn"


def test_pretrained_models_carry_their_card_and_scores():
    for name in PRETRAINED:
        folder = pretrained_path(name)
        doc = json.loads((folder / "config.json").read_text())
        assert doc["metrics"]["swd"]["step"] == doc["step"], "the card scores the shipped weights"
        card = (folder / "README.md").read_text()
        assert f"pretrained:{name}" in card and "| swd (`swd.avg`) |" in card
        assert (folder / "model.safetensors").stat().st_size < 5_000_000, "a few MB at most"


def test_unknown_or_ambiguous_pretrained_is_refused(tmp_path, capsys):
    with pytest.raises(SemGANError, match="no pretrained model 'cats'; shipped: shapes"):
        semgan.load("pretrained:cats")
    assert main(["sample", str(tmp_path), "--pretrained", "shapes", "--out", str(tmp_path / "x")]) == 2
    assert "RUN folder or --pretrained NAME (one of the two)" in capsys.readouterr().err


def test_every_entry_point_takes_the_pretrained_name(tmp_path, capsys):
    from semgan.model_files import load_generator

    assert load_generator("pretrained:shapes").step == 3000
    out = tmp_path / "m.json"
    assert main(["evaluate", "pretrained:shapes", "--metrics", "semantic", "--n", "16", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["semantic"]["validity_fake"] == 1.0
    assert main(["sample", "--pretrained", "shapes", "--checkpoint", "best-swd", "--out", str(tmp_path / "x")]) == 2
    assert "has no checkpoint 'best-swd'" in capsys.readouterr().err
