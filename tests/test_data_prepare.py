"""Shared decoding conventions and the prepare-once cache (manifest, staleness, rebuild, SEMGAN_CACHE=off)."""

from __future__ import annotations

import json
import logging
import os
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from semgan.data import load_dataset, prepare_dataset
from semgan.data.classes import CMP_PALETTE
from semgan.data.decode import MAX_LISTED, decode_all, nearest_color, resize_labels
from semgan.data.facades import read_cmp_labels
from semgan.data.files import natural_key
from semgan.errors import SemGANError
from semgan.io import cache_root


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("SEMGAN_CACHE", str(path))
    return path


def write_cmp(png: Path, values: np.ndarray) -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    img = Image.frombytes("P", values.shape[::-1], values.astype(np.uint8).tobytes())
    img.putpalette([0, 0, 0, *[c for rgb in CMP_PALETTE for c in rgb]])
    img.save(png)


@pytest.fixture
def cmp_root(tmp_path) -> Path:
    root = tmp_path / "cmp"
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        write_cmp(root / "base" / f"cmp_b{i:04d}.png", rng.integers(1, 13, size=(20 + i, 30)))
    return root


# ------------------------------------------------------------------------------------------- conventions


def test_nearest_resize_samples_pixel_centres():
    ramp = np.tile(np.arange(32, dtype=np.uint8), (32, 1))
    assert resize_labels(ramp, 4)[0].tolist() == [4, 12, 20, 28]
    # torch's "nearest-exact" is the same convention; plain "nearest" (top-left) is not.
    t = torch.from_numpy(ramp)[None, None].float()
    assert F.interpolate(t, size=(4, 4), mode="nearest-exact")[0, 0, 0].tolist() == [4, 12, 20, 28]
    assert F.interpolate(t, size=(4, 4), mode="nearest")[0, 0, 0].tolist() == [0, 8, 16, 24]
    assert resize_labels(ramp, None) is ramp


def test_natural_order():
    assert sorted(["b/10.png", "b/9.png", "a/2.png"], key=natural_key) == ["a/2.png", "b/9.png", "b/10.png"]


def test_nearest_color_spaces():
    palette = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0]], dtype=np.uint8)
    rgb = np.array([[[10, 10, 10], [250, 240, 255], [200, 30, 20]]], dtype=np.uint8)
    for space in ("ycbcr", "rgb"):
        idx, dist = nearest_color(rgb, palette, space=space)
        assert idx.tolist() == [[0, 1, 2]] and dist.shape == (1, 3)
    assert nearest_color(palette[None], palette)[1].max() == 0
    with pytest.raises(SemGANError, match="colour space"):
        nearest_color(rgb, palette, space="lab")


def test_error_lists_all_bad_files_capped(tmp_path):
    files = [tmp_path / f"{i}.png" for i in range(MAX_LISTED + 5)]
    for f in files:
        f.write_bytes(b"junk")
    with pytest.raises(SemGANError) as info:
        decode_all(files, read_cmp_labels, name_of=lambda p: p.name, what="maps", skip_bad=False, dataset="t")
    msg = str(info.value)
    assert f"{MAX_LISTED + 5} of {MAX_LISTED + 5} maps are bad" in msg and "... and 5 more" in msg
    assert msg.count("cannot read image") == MAX_LISTED
    with pytest.raises(SemGANError, match="none of the 25 maps could be used"):
        decode_all(files, read_cmp_labels, name_of=lambda p: p.name, what="maps", skip_bad=True, dataset="t")


def test_worker_processes_give_the_same_result(cmp_root):
    files = sorted((cmp_root / "base").glob("*.png"))
    files.append(cmp_root / "base" / "missing.png")
    kwargs = {"name_of": lambda p: p.name, "what": "maps", "skip_bad": True, "dataset": "t"}
    serial = decode_all(files, partial(read_cmp_labels, size=8), workers=1, **kwargs)
    pooled = decode_all(files, partial(read_cmp_labels, size=8), workers=2, **kwargs)
    assert serial[1:] == pooled[1:] and all(np.array_equal(a, b) for a, b in zip(serial[0], pooled[0], strict=True))
    assert pooled[2] == [{"file": "missing.png", "reason": f"image not found: {files[-1]}"}]


# ------------------------------------------------------------------------------------------------- cache


def test_prepare_writes_npy_and_manifest(cmp_root, cache):
    entry = prepare_dataset("facades", cmp_root, 16)
    assert entry.parent == cache / "data" and entry.name.startswith("facades-16-")
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["source_root"] == str(cmp_root.resolve()) and manifest["file_count"] == 5
    assert manifest["content_hash"].startswith("sha256:") and manifest["semgan_version"]
    assert manifest["config"] == {"size": 16, "classes": "cmp12", "split": "all", "skip_bad": False}
    assert manifest["class_set"] == "cmp12" and len(manifest["class_names"]) == 12 and len(manifest["palette"]) == 12
    assert manifest["size"] == [16, 16] and manifest["num_maps"] == 5
    labels = np.load(entry / "labels.npy", allow_pickle=False)
    assert labels.shape == (5, 16, 16) and labels.dtype == np.uint8

    t0 = time.perf_counter()
    ds = load_dataset("facades", root=str(cmp_root), size=16)
    assert time.perf_counter() - t0 < 0.5
    assert ds.meta["cache"] == str(entry) and np.array_equal(ds.labels.numpy(), labels)
    fresh = load_dataset("facades", root=str(cmp_root), size=16, cache_dir=cache.parent / "other")
    assert np.array_equal(fresh.labels.numpy(), labels)  # decoded from source into another cache: same maps
    assert prepare_dataset("facades", cmp_root, 16) == entry  # already up to date


def test_loaders_cache_on_first_use_and_rebuild_stale(cmp_root, cache, caplog):
    first = load_dataset("facades", root=str(cmp_root), size=8)
    entry = Path(str(first.meta["cache"]))
    assert (entry / "manifest.json").is_file()

    # A source file changes: the cache is stale, rebuilt with a warning saying why, and the new data is used.
    path = cmp_root / "base" / "cmp_b0002.png"
    write_cmp(path, np.full((22, 30), 5))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # mtime resolution need not be fine
    with caplog.at_level(logging.WARNING, logger="semgan.data"):
        second = load_dataset("facades", root=str(cmp_root), size=8)
    assert "is stale (source files changed" in caplog.text
    assert (second.labels[1] == 4).all() and not torch.equal(first.labels, second.labels)

    # A file is added: stale, and the message gives the counts.
    caplog.clear()
    write_cmp(cmp_root / "base" / "cmp_b0006.png", np.full((20, 20), 1))
    with caplog.at_level(logging.WARNING, logger="semgan.data"):
        assert len(load_dataset("facades", root=str(cmp_root), size=8)) == 6
    assert "source has 6 files, the cache was built from 5" in caplog.text

    # A corrupt array (e.g. a disk error) is detected by its hash and rebuilt.
    caplog.clear()
    (entry / "labels.npy").write_bytes((entry / "labels.npy").read_bytes()[:-10] + b"\xff" * 10)
    with caplog.at_level(logging.WARNING, logger="semgan.data"):
        assert len(load_dataset("facades", root=str(cmp_root), size=8)) == 6
    assert "does not match its manifest" in caplog.text


def test_each_argument_set_has_its_own_entry(cmp_root, cache):
    a = prepare_dataset("facades", cmp_root, 8)
    b = prepare_dataset("facades", cmp_root, 16)
    c = prepare_dataset("facades", cmp_root, 8, split="val", seed=1)
    assert len({a, b, c}) == 3


def test_skipped_files_survive_the_cache(cmp_root, cache, caplog):
    (cmp_root / "base" / "cmp_b0003.png").write_bytes(b"broken")
    with pytest.raises(SemGANError, match="cmp_b0003.png"):
        prepare_dataset("facades", cmp_root, 8)
    assert not (cache / "data").exists() or not any((cache / "data").iterdir())  # nothing cached on failure
    prepare_dataset("facades", cmp_root, 8, skip_bad=True)
    with caplog.at_level(logging.WARNING, logger="semgan.data"):
        ds = load_dataset("facades", root=str(cmp_root), size=8, skip_bad=True)
    assert len(ds) == 4 and ds.meta["num_skipped"] == 1 and ds.meta["skipped"][0]["file"] == "base/cmp_b0003.png"
    assert "skipped 1 bad files" in caplog.text


def test_cache_can_be_disabled(cmp_root, tmp_path, monkeypatch):
    monkeypatch.setenv("SEMGAN_CACHE", "off")
    assert cache_root() is None
    ds = load_dataset("facades", root=str(cmp_root), size=8)
    assert ds.meta["cache"] is None and len(ds) == 5
    with pytest.raises(SemGANError, match="caching is disabled"):
        prepare_dataset("facades", cmp_root, 8)
    assert prepare_dataset("facades", cmp_root, 8, cache_dir=tmp_path / "c").parent == tmp_path / "c" / "data"


def test_cache_off_means_off_everywhere(cmp_root, tmp_path, monkeypatch):
    """SEMGAN_CACHE=off: neither the dataset cache nor the FID real-statistics cache writes a file anywhere."""
    from semgan.metrics.fid import default_cache_dir, real_statistics

    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("SEMGAN_CACHE", "off")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.chdir(work)  # where a cache root read as the relative folder "off" would appear
    before = sorted(cmp_root.rglob("*"))

    assert load_dataset("facades", root=str(cmp_root), size=8).meta["cache"] is None
    assert default_cache_dir() is None
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for _ in range(2):  # a second call finds no cache either, and computes again
        mu, _sigma = real_statistics(images, feature_fn=lambda x: x.mean(dim=(2, 3)), network_id="rgb-mean",
                                     progress=False)
        assert mu.shape == (3,)
    assert not list(home.rglob("*")) and not list(work.rglob("*")) and sorted(cmp_root.rglob("*")) == before


def test_default_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv("SEMGAN_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_root() == tmp_path / "semgan"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "semgan"


def test_generated_datasets_have_nothing_to_prepare(tmp_path, cache):
    with pytest.raises(SemGANError, match="'shapes' is not read from files"):
        prepare_dataset("shapes", tmp_path)
    with pytest.raises(SemGANError, match="unknown file-backed dataset 'mnist'"):
        prepare_dataset("mnist", tmp_path)
    assert len(load_dataset("shapes")) == 2916


def test_unwritable_cache_only_warns(cmp_root, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SEMGAN_CACHE", str(blocker))
    with caplog.at_level(logging.WARNING, logger="semgan.data"):
        ds = load_dataset("facades", root=str(cmp_root), size=8)
    assert len(ds) == 5 and ds.meta["cache"] is None and "could not write the cache" in caplog.text
    with pytest.raises(SemGANError, match="cannot write the cache"):
        prepare_dataset("facades", cmp_root, 8)
