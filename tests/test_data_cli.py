"""``semgan data prepare|info|preview`` handlers, driven through a parser built as the main CLI builds it."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semgan.cli.data import add_data
from semgan.data.classes import CMP_PALETTE
from semgan.errors import SemGANError


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SEMGAN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semgan")
    add_data(parser.add_subparsers(dest="command"))
    return parser


def run(parser: argparse.ArgumentParser, *argv: str) -> int:
    args = parser.parse_args(["data", *argv])
    return args.func(args)


@pytest.fixture
def cmp_root(tmp_path) -> Path:
    """Three CMP label PNGs: left half background (1), right half facade (2); one fully window (3)."""
    root = tmp_path / "cmp"
    (root / "base").mkdir(parents=True)
    for i, fill in enumerate((None, None, 3), start=1):
        values = np.ones((20, 40), dtype=np.uint8)
        values[:, 20:] = 2
        if fill:
            values[:] = fill
        img = Image.frombytes("P", (40, 20), values.tobytes())
        img.putpalette([0, 0, 0, *[c for rgb in CMP_PALETTE for c in rgb]])
        img.save(root / "base" / f"cmp_b{i:04d}.png")
    return root


def test_prepare_then_info(parser, cmp_root, cache, capsys):
    assert run(parser, "prepare", "facades", "--data-root", str(cmp_root), "--size", "16") == 0
    out = capsys.readouterr().out
    assert "facades: cache at" in out and str(cache) in out
    assert run(parser, "info", "facades", "--data-root", str(cmp_root), "--size", "16") == 0
    out = capsys.readouterr().out
    assert "facades: 3 maps of 16x16, 12 classes" in out and "cache:" in out
    lines = {line.split()[1]: float(line.split()[-1]) for line in out.splitlines() if line[:4].strip().isdigit()}
    assert lines["background"] == pytest.approx(33.33, abs=0.01)
    assert lines["facade"] == pytest.approx(33.33, abs=0.01)
    assert lines["window"] == pytest.approx(33.33, abs=0.01) and lines["shop"] == 0.0


def test_preview_writes_a_colour_grid(parser, cmp_root, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert run(parser, "preview", "facades", "--data-root", str(cmp_root), "--size", "8", "--out", str(out)) == 0
    img = np.asarray(Image.open(out))
    assert img.shape == (2 + 2 * 10, 2 + 2 * 10, 3)  # 3 maps -> a 2x2 grid of 8 px tiles with 2 px padding
    assert img[2, 2].tolist() == list(CMP_PALETTE[0]) and img[2, 9].tolist() == list(CMP_PALETTE[1])
    assert "wrote 3 maps" in capsys.readouterr().out
    assert run(parser, "preview", "shapes", "--out", str(out), "--n", "4") == 0  # generated sets work too
    assert np.asarray(Image.open(out)).shape == (2 + 2 * 66, 2 + 2 * 66, 3)


def test_skip_bad_flag(parser, cmp_root, capsys):
    (cmp_root / "base" / "cmp_b0002.png").write_bytes(b"broken")
    with pytest.raises(SemGANError, match="cmp_b0002.png: cannot read image"):
        run(parser, "info", "facades", "--data-root", str(cmp_root))
    assert run(parser, "info", "facades", "--data-root", str(cmp_root), "--size", "8", "--skip-bad") == 0
    out = capsys.readouterr().out
    assert "facades: 2 maps of 8x8" in out and "skipped 1 bad files" in out


def test_user_errors(parser, tmp_path):
    with pytest.raises(SemGANError, match="--data-root is required"):
        run(parser, "prepare", "facades")
    with pytest.raises(SemGANError, match="does not exist"):
        run(parser, "info", "facades", "--data-root", str(tmp_path / "nope"))
    with pytest.raises(SystemExit):  # argparse checks counts: "--n: expected an integer >= 1, got 0"
        run(parser, "preview", "shapes", "--out", str(tmp_path / "x.png"), "--n", "0")
    with pytest.raises(SystemExit):  # argparse rejects unknown dataset names itself
        parser.parse_args(["data", "info", "mnist"])


def test_root_is_a_hidden_deprecated_spelling_of_data_root(parser, cmp_root, capsys):
    assert run(parser, "info", "facades", "--root", str(cmp_root), "--size", "16") == 0
    captured = capsys.readouterr()
    assert "facades: 3 maps of 16x16" in captured.out
    assert "--root is deprecated; use --data-root" in captured.err
    with pytest.raises(SystemExit):
        parser.parse_args(["data", "info", "--help"])
    text = capsys.readouterr().out
    assert "--data-root" in text and "--root" not in text.replace("--data-root", "")
