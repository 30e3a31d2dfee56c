"""CMP Facade and pix2pix facades loaders, on fixtures in the exact formats and (optionally) the real base set."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semgan.config import DataConfig
from semgan.data import load_dataset, pairs_from_config, prepare_dataset
from semgan.data.classes import CMP_PALETTE, PIX2PIX_FACADES_PALETTE
from semgan.data.facades import decode_facades_colors, read_cmp_labels
from semgan.data.files import train_val_split
from semgan.errors import SemGANError

# The shares over all 378 real base images at full resolution (notes section 4), in %.
NOTES_SHARES = [15.4, 38.5, 13.4, 1.3, 4.0, 2.8, 4.0, 1.5, 2.1, 11.5, 2.4, 3.3]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMGAN_CACHE", str(tmp_path / "cache"))


def write_cmp(png: Path, values: np.ndarray, photo_size: tuple[int, int] | None = None) -> None:
    """A CMP pair: mode-P label PNG (palette entry 0 black, then jet(12)) and an RGB jpg photo."""
    png.parent.mkdir(parents=True, exist_ok=True)
    h, w = values.shape
    img = Image.frombytes("P", (w, h), values.astype(np.uint8).tobytes())
    img.putpalette([0, 0, 0, *[c for rgb in CMP_PALETTE for c in rgb]])
    img.save(png)
    pw, ph = photo_size or (w, h)
    photo = np.random.default_rng(w * h).integers(0, 256, (ph, pw, 3), dtype=np.uint8)
    Image.fromarray(photo).save(png.with_suffix(".jpg"), quality=90)


def cmp_values(h: int, w: int, seed: int) -> np.ndarray:
    """Values 1..12 on 4x4 blocks (so nearest resizing keeps every class)."""
    blocks = np.random.default_rng(seed).integers(1, 13, size=(-(-h // 4), -(-w // 4)))
    return np.kron(blocks, np.ones((4, 4), dtype=np.int64))[:h, :w].astype(np.uint8)


@pytest.fixture
def cmp_root(tmp_path) -> Path:
    root = tmp_path / "cmp"
    for i, (h, w) in enumerate([(56, 40), (36, 48), (44, 44)], start=1):  # non-square, varying sizes
        write_cmp(root / "base" / f"cmp_b{i:04d}.png", cmp_values(h, w, i))
    write_cmp(root / "extended" / "cmp_x0001.png", cmp_values(30, 50, 9))
    (root / "label_names.txt").write_text("1 background 1\n2 facade 2\n3 window 10\n")
    # The real XML has no root element.
    (root / "base" / "cmp_b0001.xml").write_text(
        "<object><points><x>0.1</x><x>0.9</x><y>0.1</y><y>1</y></points><label>2</label>"
        "<labelname>facade</labelname><flag>1</flag></object>"
    )
    return root


def test_cmp_values_become_classes(cmp_root):
    ds = load_dataset("facades", root=str(cmp_root), size=16)
    assert ds.labels.shape == (4, 16, 16) and ds.num_classes == 12 and ds.class_names[1] == "facade"
    assert ds.meta["files"] == [
        "base/cmp_b0001.png",
        "base/cmp_b0002.png",
        "base/cmp_b0003.png",
        "extended/cmp_x0001.png",
    ]
    raw = np.asarray(Image.open(cmp_root / "base/cmp_b0002.png"))
    expected = np.asarray(Image.fromarray(raw).resize((16, 16), Image.Resampling.NEAREST)).astype(np.int64) - 1
    assert np.array_equal(ds.labels[1].numpy(), expected)
    assert ds.palette.tolist() == [list(c) for c in CMP_PALETTE]
    assert read_cmp_labels(cmp_root / "base/cmp_b0001.png").shape == (56, 40)


def test_parts_and_seeded_split(cmp_root):
    assert len(load_dataset("facades", root=str(cmp_root), split="base", size=8)) == 3
    assert len(load_dataset("facades", root=str(cmp_root), split="extended", size=8)) == 1
    train = load_dataset("facades", root=str(cmp_root), split="train", size=8, seed=3)
    val = load_dataset("facades", root=str(cmp_root), split="val", size=8, seed=3)
    assert len(train) + len(val) == 4 and not set(train.meta["files"]) & set(val.meta["files"])
    with pytest.raises(SemGANError, match="unknown split 'test'"):
        load_dataset("facades", root=str(cmp_root), split="test")
    with pytest.raises(SemGANError, match="one class set, 'cmp12'"):
        load_dataset("facades", root=str(cmp_root), classes="full34")


def test_train_val_split_is_deterministic_and_stable():
    names = [f"cmp_b{i:04d}" for i in range(1, 379)]
    train, val = train_val_split(names, seed=0)
    assert len(val) == 38 and len(train) == 340 and sorted(train + val) == list(range(378))
    assert train_val_split(names, seed=0) == (train, val)
    assert train_val_split(names, seed=1)[1] != val
    # Each name's rank is its own hash, so adding files (the extended set) only moves the threshold: the base
    # files in the new val set and the old val set are nested, never reshuffled.
    more = names + [f"cmp_x{i:04d}" for i in range(1, 229)]
    old_val = {names[i] for i in val}
    new_val = {more[i] for i in train_val_split(more, seed=0)[1]} & set(names)
    assert old_val <= new_val or new_val <= old_val
    with pytest.raises(SemGANError, match="val_fraction"):
        train_val_split(names, val_fraction=1.0)


def test_out_of_range_values_name_files_and_values(cmp_root, caplog):
    for name, bad in (("cmp_b0001", 0), ("cmp_b0003", 13)):
        path = cmp_root / "base" / f"{name}.png"
        values = np.asarray(Image.open(path)).copy()
        values[3, 3] = bad  # one pixel, which a 16 px resize would not even sample
        img = Image.frombytes("P", values.shape[::-1], values.tobytes())
        img.putpalette([0, 0, 0] * 14)
        img.save(path)
    with pytest.raises(SemGANError) as info:
        load_dataset("facades", root=str(cmp_root), size=16)
    msg = str(info.value)
    assert "2 of 4 label maps are bad" in msg
    assert "base/cmp_b0001.png: values 0 out of range; expected CMP label PNG values 1..12" in msg
    assert "base/cmp_b0003.png: values 13 out of range" in msg
    with caplog.at_level(logging.WARNING, logger="semgan.data"):
        ds = load_dataset("facades", root=str(cmp_root), size=16, skip_bad=True)
    assert len(ds) == 2 and ds.meta["num_skipped"] == 2 and "skipped 2 of 4" in caplog.text


def test_rgb_label_png_points_at_colour_decoding(cmp_root):
    path = cmp_root / "base/cmp_b0002.png"
    Image.open(path).convert("RGB").save(path)
    match = r"cmp_b0002.png: mode-RGB image.*do not convert them to RGB.*facades-pix2pix"
    with pytest.raises(SemGANError, match=match):
        load_dataset("facades", root=str(cmp_root), size=16)


def test_unreadable_image(cmp_root):
    (cmp_root / "base/cmp_b0003.png").write_bytes(b"not a png at all")
    with pytest.raises(SemGANError, match=r"cmp_b0003.png: cannot read image"):
        load_dataset("facades", root=str(cmp_root), size=16)


def test_pairs_and_photo_label_size_mismatch(cmp_root):
    pairs = pairs_from_config(DataConfig(name="facades", root=str(cmp_root), size=16))
    assert pairs.photos.shape == (4, 3, 16, 16) and pairs.photos.dtype.itemsize == 1
    assert pairs.labels.shape == (4, 16, 16)
    write_cmp(cmp_root / "base/cmp_b0002.png", cmp_values(36, 48, 2), photo_size=(47, 36))
    (cmp_root / "extended/cmp_x0001.jpg").unlink()
    with pytest.raises(SemGANError) as info:
        pairs_from_config(DataConfig(name="facades", root=str(cmp_root), size=16))
    msg = str(info.value)
    assert "2 of 4 photo/label pairs are bad" in msg
    assert "base/cmp_b0002.png: photo cmp_b0002.jpg is 47x36 but the label map is 48x36" in msg
    assert "extended/cmp_x0001.png: photo not found" in msg
    assert len(pairs_from_config(DataConfig(name="facades", root=str(cmp_root), size=16, skip_bad=True))) == 2


def test_missing_empty_and_misplaced_folders(tmp_path, cmp_root):
    with pytest.raises(SemGANError, match="does not exist"):
        load_dataset("facades", root=str(tmp_path / "nope"))
    with pytest.raises(SemGANError, match="neither base/ nor extended/ .*pass its parent folder"):
        load_dataset("facades", root=str(cmp_root / "base"))
    empty = tmp_path / "empty"
    (empty / "base").mkdir(parents=True)
    with pytest.raises(SemGANError, match=r"no files matching \*.png under .*base"):
        load_dataset("facades", root=str(empty))
    with pytest.raises(SemGANError, match="extended does not exist"):
        load_dataset("facades", root=str(empty), split="extended")


# --------------------------------------------------------------------------------------------- pix2pix AB


def write_facade_ab(path: Path, classes: np.ndarray, *, subsampling: int, quality: int) -> None:
    label = PIX2PIX_FACADES_PALETTE_ARR[np.kron(classes, np.ones((32, 32), dtype=np.int64))]
    photo = np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([photo, label], axis=1)).save(path, quality=quality, subsampling=subsampling)


PIX2PIX_FACADES_PALETTE_ARR = np.array(PIX2PIX_FACADES_PALETTE, dtype=np.uint8)


def test_pix2pix_facades_decoding(tmp_path):
    rng = np.random.default_rng(5)
    grids = [rng.integers(0, 12, size=(8, 8)) for _ in range(3)]
    root = tmp_path / "facades"
    for n, g in enumerate(grids, start=1):
        write_facade_ab(root / "train" / f"{n}.jpg", g, subsampling=2, quality=90)
        write_facade_ab(root / "test" / f"{n}.jpg", g, subsampling=0, quality=100)
    expected = np.stack([np.kron(g, np.ones((32, 32), dtype=np.int64)) for g in grids])
    lossy = load_dataset("facades-pix2pix", root=str(root), size=256)
    assert (lossy.labels.numpy() == expected).mean() >= 0.95
    assert lossy.palette.tolist() == PIX2PIX_FACADES_PALETTE_ARR.tolist()
    exact = load_dataset("facades-pix2pix", root=str(root), size=256, split="test")
    assert np.array_equal(exact.labels.numpy(), expected)
    pairs = pairs_from_config(DataConfig(name="facades-pix2pix", root=str(root), size=32, split="all"))
    assert pairs.photos.shape == (6, 3, 32, 32) and len(pairs) == 6


def test_cmp_palette_would_misdecode_the_facade_colour():
    facade = np.array([[PIX2PIX_FACADES_PALETTE[1]]], dtype=np.uint8)
    assert decode_facades_colors(facade).item() == 1  # facade with the measured palette
    assert decode_facades_colors(facade, np.array(CMP_PALETTE, dtype=np.uint8)).item() == 2  # "window"


# ------------------------------------------------------------------------------------------- real base set


@pytest.fixture
def cmp_base(shared_data) -> Path:
    root = shared_data / "cmp_facade_base"
    if not (root / "base").is_dir():
        pytest.skip(f"the CMP base set is not at {root}/base")
    return root


@pytest.mark.slow
def test_real_cmp_base_set(cmp_base):
    t0 = time.perf_counter()
    prepare_dataset("facades", cmp_base, 128)
    prepare_seconds = time.perf_counter() - t0
    assert prepare_seconds < 20
    t0 = time.perf_counter()
    ds = load_dataset("facades", root=str(cmp_base))
    assert time.perf_counter() - t0 < 1.0 and "cache" in ds.meta
    assert ds.labels.shape == (378, 128, 128) and ds.num_classes == 12 and ds.meta["num_skipped"] == 0

    # Full resolution: pooled pixel shares match the notes within a percentage point; per-image shares
    # (each image weighted equally) are what a fixed-size resize preserves.
    counts = np.zeros(12)
    per_image = np.zeros(12)
    for name in ds.meta["files"]:
        labels = read_cmp_labels(cmp_base / name)  # raises on any value outside 1..12
        c = np.bincount(labels.ravel(), minlength=12)
        counts += c
        per_image += c / c.sum()
    full = 100 * counts / counts.sum()
    np.testing.assert_allclose(full, NOTES_SHARES, atol=1.0)
    at_128 = 100 * ds.class_shares()
    # Resizing to 128x128 gives every image the same weight: shares move by up to ~1.6 pp (facade 38.5 -> 40.1)
    # against the pooled full-resolution ones, but stay within 0.5 pp of the per-image full-resolution mean.
    np.testing.assert_allclose(at_128, 100 * per_image / len(ds), atol=0.5)
    assert np.abs(at_128 - full).max() < 2.0


@pytest.mark.slow
def test_real_cmp_pairs_match_in_size(cmp_base):
    pairs = pairs_from_config(DataConfig(name="facades", root=str(cmp_base), size=64, split="base"))
    assert pairs.photos.shape == (378, 3, 64, 64) and pairs.meta["num_skipped"] == 0


def test_facades_cpu_preset_trains_on_the_real_set(cmp_base, tmp_path):
    # the CLI path of `semgan train --preset facades-cpu`, cut to 3 steps: real data, noise, checkpoint, grid
    from semgan.cli import main

    out = tmp_path / "run"
    code = main(["train", "--preset", "facades-cpu", "--data-root", str(cmp_base), "--out", str(out),
                 "--steps", "3", "--no-progress", "--set", "eval.every=0", "--set", "eval.metrics=",
                 "--set", "train.guard_rollbacks=0"])
    assert code in (0, None)
    assert (out / "checkpoints" / "latest.pt").is_file() and (out / "grid.png").is_file()
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"]["model"]["d_noise"] == 1.0 and saved["config"]["data"]["size"] == 128
    assert saved["dataset"]["count"] == 378 and saved["dataset"]["class_names"][1] == "facade"
