"""Cityscapes loaders on fixtures written in the official layout and in pix2pix's AB jpg format."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semgan.config import DataConfig
from semgan.data import load_dataset, pairs_from_config
from semgan.data.cityscapes import decode_cityscapes_colors
from semgan.data.classes import CITYSCAPES_CLASS_SETS, CITYSCAPES_LABELS
from semgan.errors import SemGANError

COLOR = {lab.id: lab.color for lab in CITYSCAPES_LABELS if lab.id >= 0}
W, H = 64, 32  # 2:1 like the real 2048x1024
BLOCK = 8  # ids constant on 8x8 blocks -> a 4x8 grid of ids per image


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMGAN_CACHE", str(tmp_path / "cache"))


def block_ids(seed: int) -> np.ndarray:
    """(4, 8) random labelIds 0..33."""
    return np.random.default_rng(seed).integers(0, 34, size=(H // BLOCK, W // BLOCK)).astype(np.uint8)


def write_frame(root: Path, split: str, city: str, frame: int, ids: np.ndarray) -> Path:
    """One frame in the official layout: photo, labelIds (L), color (RGBA), instanceIds (I), polygons."""
    stem = f"{city}_000000_{frame:06d}"
    full = np.kron(ids, np.ones((BLOCK, BLOCK), dtype=np.uint8))  # (H, W)
    img_dir, gt_dir = root / "leftImg8bit" / split / city, root / "gtFine" / split / city
    img_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(frame).integers(0, 256, (H, W, 3), dtype=np.uint8)).save(
        img_dir / f"{stem}_leftImg8bit.png"
    )
    label_path = gt_dir / f"{stem}_gtFine_labelIds.png"
    Image.fromarray(full).save(label_path)
    rgba = np.zeros((H, W, 4), dtype=np.uint8)
    rgba[..., :3] = np.array([COLOR[i] for i in range(34)], dtype=np.uint8)[full]
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(gt_dir / f"{stem}_gtFine_color.png")
    inst = np.where(full >= 24, full.astype(np.int32) * 1000, full.astype(np.int32))
    Image.fromarray(inst.astype(np.uint16)).save(gt_dir / f"{stem}_gtFine_instanceIds.png")  # 16-bit PNG
    objects = [{"label": "road", "polygon": [[0, 0], [W, 0], [W, H], [0, H]]}]
    (gt_dir / f"{stem}_gtFine_polygons.json").write_text(
        json.dumps({"imgHeight": H, "imgWidth": W, "objects": objects})
    )
    return label_path


@pytest.fixture
def cs_root(tmp_path) -> Path:
    root = tmp_path / "cityscapes"
    # Cities written out of order: loading must sort them.
    write_frame(root, "train", "zurich", 19, block_ids(0))
    write_frame(root, "train", "aachen", 2, block_ids(1))
    write_frame(root, "train", "aachen", 10, block_ids(2))
    write_frame(root, "val", "frankfurt", 1, block_ids(3))
    return root


def expected_at_8(ids: np.ndarray, set_name: str) -> np.ndarray:
    """64x32 -> 8x8 with pixel-centre sampling: column j samples x = 8j + 4 (block j), row i samples
    y = 4i + 2 (block i // 2). Independent of PIL, so it pins the convention."""
    lut = CITYSCAPES_CLASS_SETS[set_name].lut()
    return lut[ids[np.arange(8) // 2][:, np.arange(8)]].astype(np.uint8)


@pytest.mark.parametrize(("set_name", "K"), [("cityscapes22", 22), ("full34", 34), ("train19", 20), ("categories8", 8)])
def test_class_sets_after_nearest_resize(cs_root, set_name, K):
    ds = load_dataset("cityscapes", root=str(cs_root), size=8, classes=set_name)
    assert ds.num_classes == K and ds.labels.shape == (3, 8, 8) and ds.labels.dtype == torch.uint8
    # Sorted order: aachen frame 2, aachen frame 10 (natural order), zurich.
    assert [Path(f).name[:20] for f in ds.meta["files"]] == [
        "aachen_000000_000002",
        "aachen_000000_000010",
        "zurich_000000_000019",
    ]
    for k, seed in enumerate((1, 2, 0)):
        assert np.array_equal(ds.labels[k].numpy(), expected_at_8(block_ids(seed), set_name))
    assert ds.meta["class_set"] == set_name and ds.meta["split"] == "train"


def test_defaults_and_splits(cs_root):
    ds = load_dataset("cityscapes", root=str(cs_root))
    assert ds.labels.shape == (3, 128, 128) and ds.num_classes == 22  # paper size, cityscapes22
    assert len(load_dataset("cityscapes", root=str(cs_root), split="val", size=8)) == 1
    assert len(load_dataset("cityscapes", root=str(cs_root), split="trainval", size=8)) == 4
    with pytest.raises(SemGANError, match="unknown split 'training'"):
        load_dataset("cityscapes", root=str(cs_root), split="training")


def test_pairs_photos_match(cs_root):
    pairs = pairs_from_config(DataConfig(name="cityscapes", root=str(cs_root), size=16))
    assert pairs.photos.shape == (3, 3, 16, 16) and pairs.labels.shape == (3, 16, 16)


def test_out_of_range_values_name_all_files(cs_root, caplog):
    for city, frame in (("aachen", 2), ("zurich", 19)):
        path = cs_root / "gtFine/train" / city / f"{city}_000000_{frame:06d}_gtFine_labelIds.png"
        arr = np.array(Image.open(path))
        arr[0, 0], arr[5, 5] = 200, 34
        Image.fromarray(arr).save(path)
    with pytest.raises(SemGANError) as info:
        load_dataset("cityscapes", root=str(cs_root), size=8)
    msg = str(info.value)
    assert "2 of 3 label maps are bad" in msg and "--skip-bad" in msg
    assert "aachen_000000_000002_gtFine_labelIds.png: values 34, 200 out of range" in msg
    assert "zurich_000000_000019" in msg and "0..33" in msg
    with caplog.at_level(logging.WARNING, logger="semgan.data"):
        ds = load_dataset("cityscapes", root=str(cs_root), size=8, skip_bad=True)
    assert len(ds) == 1 and ds.meta["num_skipped"] == 2
    assert {s["file"] for s in ds.meta["skipped"]} == {
        "gtFine/train/aachen/aachen_000000_000002_gtFine_labelIds.png",
        "gtFine/train/zurich/zurich_000000_000019_gtFine_labelIds.png",
    }
    assert "skipped 2 of 3 bad label maps" in caplog.text


def test_rgb_where_label_ids_expected_points_at_colour_decoding(cs_root):
    path = cs_root / "gtFine/train/aachen/aachen_000000_000010_gtFine_labelIds.png"
    Image.open(path).convert("RGB").save(path)
    with pytest.raises(SemGANError, match=r"mode-RGB image where an index map.*cityscapes-pix2pix"):
        load_dataset("cityscapes", root=str(cs_root), size=8)


def test_truncated_png_is_reported(cs_root):
    path = cs_root / "gtFine/train/zurich/zurich_000000_000019_gtFine_labelIds.png"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(SemGANError, match=r"zurich_000000_000019_gtFine_labelIds.png: cannot read image"):
        load_dataset("cityscapes", root=str(cs_root), size=8)
    assert len(load_dataset("cityscapes", root=str(cs_root), size=8, skip_bad=True)) == 2


def test_photo_label_size_mismatch(cs_root):
    photo = cs_root / "leftImg8bit/train/aachen/aachen_000000_000002_leftImg8bit.png"
    Image.new("RGB", (60, 30)).save(photo)
    (cs_root / "leftImg8bit/train/zurich/zurich_000000_000019_leftImg8bit.png").unlink()
    with pytest.raises(SemGANError) as info:
        pairs_from_config(DataConfig(name="cityscapes", root=str(cs_root), size=8))
    msg = str(info.value)
    assert "2 of 3 photo/label pairs are bad" in msg
    assert "photo aachen_000000_000002_leftImg8bit.png is 60x30 but the label map is 64x32" in msg
    assert "photo not found" in msg and "zurich_000000_000019" in msg
    assert len(pairs_from_config(DataConfig(name="cityscapes", root=str(cs_root), size=8, skip_bad=True))) == 1


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(SemGANError, match="does not exist"):
        load_dataset("cityscapes", root=str(tmp_path / "nowhere"))
    with pytest.raises(SemGANError, match=r"gtFine does not exist; expected the official Cityscapes layout"):
        load_dataset("cityscapes", root=str(tmp_path))
    (tmp_path / "gtFine/train/aachen").mkdir(parents=True)
    with pytest.raises(SemGANError, match=r"no files matching \*/\*_gtFine_labelIds.png"):
        load_dataset("cityscapes", root=str(tmp_path))
    with pytest.raises(SemGANError, match="needs a root"):
        load_dataset("cityscapes")


# --------------------------------------------------------------------------------------------- pix2pix AB


def write_ab(path: Path, ids: np.ndarray, *, subsampling: int, quality: int) -> None:
    """A 512x256 AB jpg: random photo left, the labels' table colours right (blocks of 32 px)."""
    label = np.kron(ids, np.ones((32, 32), dtype=np.uint8))  # (256, 256)
    colors = np.array([COLOR[i] for i in range(34)], dtype=np.uint8)[label]
    photo = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([photo, colors], axis=1)).save(path, quality=quality, subsampling=subsampling)


@pytest.fixture
def ab_ids() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 34, size=(8, 8)).astype(np.uint8) for _ in range(3)]


def test_pix2pix_ab_decoding(tmp_path, ab_ids):
    root = tmp_path / "p2p"
    for n, ids in enumerate(ab_ids, start=1):
        write_ab(root / "train" / f"{n}.jpg", ids, subsampling=2, quality=90)  # 4:2:0, as the real files
        write_ab(root / "val" / f"{n}.jpg", ids, subsampling=0, quality=100)  # 4:4:4 q100
    cs = CITYSCAPES_CLASS_SETS["cityscapes22"]
    expected = np.stack([cs.lut()[np.kron(ids, np.ones((32, 32), dtype=np.uint8))] for ids in ab_ids])
    lossy = load_dataset("cityscapes-pix2pix", root=str(root), size=256)
    assert lossy.labels.shape == (3, 256, 256) and lossy.num_classes == 22
    assert (lossy.labels.numpy() == expected).mean() >= 0.95
    exact = load_dataset("cityscapes-pix2pix", root=str(root), size=256, split="val")
    assert np.array_equal(exact.labels.numpy(), expected)
    assert len(load_dataset("cityscapes-pix2pix", root=str(root), size=8, split="all")) == 6
    pairs = pairs_from_config(DataConfig(name="cityscapes-pix2pix", root=str(root), size=16))
    assert pairs.photos.shape == (3, 3, 16, 16)


def test_pix2pix_natural_order_and_bad_ab_size(tmp_path, ab_ids, caplog):
    root = tmp_path / "p2p"
    for n in (10, 2, 1):
        write_ab(root / "train" / f"{n}.jpg", ab_ids[0], subsampling=0, quality=95)
    Image.new("RGB", (300, 256)).save(root / "train" / "3.jpg")
    with pytest.raises(SemGANError, match=r"3.jpg: size 300x256 is not a pix2pix AB pair"):
        load_dataset("cityscapes-pix2pix", root=str(root), size=8)
    with caplog.at_level(logging.WARNING, logger="semgan.data"):
        ds = load_dataset("cityscapes-pix2pix", root=str(root), size=8, skip_bad=True)
    assert ds.meta["files"] == ["train/1.jpg", "train/2.jpg", "train/10.jpg"] and ds.meta["num_skipped"] == 1
    assert "skipped 1 of 4" in caplog.text


def test_decode_colors_function():
    rgb = np.array([[[128, 64, 128], [0, 0, 0], [153, 153, 153], [0, 0, 143]]], dtype=np.uint8)
    assert decode_cityscapes_colors(rgb).tolist() == [[1, 0, 6, 14]]
    assert decode_cityscapes_colors(rgb, "full34").tolist() == [[7, 0, 17, 26]]

