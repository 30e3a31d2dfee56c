"""Folder loading, ``score_folders`` (the ``semgan metrics`` command) and the ``compute_metrics`` entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semgan.errors import SemGANError
from semgan.labels import colorize
from semgan.metrics import METRICS, compute_metrics
from semgan.metrics import fid as fid_mod
from semgan.metrics.folders import load_image_folder, palette_from_images, score_folders
from semgan.metrics.ms_ssim import ms_ssim_pairs

PALETTE = torch.tensor([[0, 0, 0], [0, 0, 255], [0, 255, 0], [255, 0, 0]], dtype=torch.uint8)


def label_maps(n: int, seed: int, size: int = 32) -> torch.Tensor:
    """(n, size, size) int64 maps of 4 classes: random blocks on an 8 px grid."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, 4, (n, size // 8, size // 8), generator=g)
    return coarse.repeat_interleave(8, 1).repeat_interleave(8, 2)


def write_pngs(folder: Path, images: torch.Tensor, names: list[str] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        name = names[i] if names else f"{i:04d}.png"
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / name)


class TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 5, stride=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


@pytest.fixture
def tiny_inception(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the FID Inception by a tiny random network (the real one is tested in test_metrics_fid.py)."""
    net = TinyNet()
    monkeypatch.setattr(fid_mod, "load_inception", lambda device="cpu": net)


# ----------------------------------------------------------------------------------------------- loading


def test_load_sorted_and_converted_to_rgb(tmp_path: Path) -> None:
    images = colorize(label_maps(3, seed=0), PALETTE)
    write_pngs(tmp_path, images, ["b.png", "c.PNG", "a.png"])
    (tmp_path / "notes.txt").write_text("ignored")
    Image.fromarray(np.full((32, 32), 77, np.uint8), mode="L").save(tmp_path / "d_grey.png")
    pal_img = Image.fromarray(np.zeros((32, 32), np.uint8), mode="P")
    pal_img.putpalette([10, 20, 30] + [0] * 765)
    pal_img.save(tmp_path / "e_palette.png")
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(tmp_path / "f.jpg", quality=100)
    loaded, names = load_image_folder(tmp_path)
    assert names == ["a.png", "b.png", "c.PNG", "d_grey.png", "e_palette.png", "f.jpg"]
    assert loaded.shape == (6, 3, 32, 32) and loaded.dtype == torch.uint8
    assert torch.equal(loaded[0], images[2]) and torch.equal(loaded[1], images[0])
    assert loaded[3, :, 0, 0].tolist() == [77, 77, 77]
    assert loaded[4, :, 0, 0].tolist() == [10, 20, 30]
    assert abs(int(loaded[5, 0, 5, 5]) - 200) <= 2
    first_two, names2 = load_image_folder(tmp_path, n=2)
    assert names2 == ["a.png", "b.png"] and torch.equal(first_two, loaded[:2])


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(SemGANError, match="image folder not found: .*missing"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(SemGANError, match="is not a folder"):
        load_image_folder(tmp_path / "file.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images")
    with pytest.raises(SemGANError, match="no PNG/JPG images in .*empty"):
        load_image_folder(empty)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    write_pngs(tmp_path, colorize(label_maps(1, seed=0), PALETTE))
    (tmp_path / "0001.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(SemGANError, match="cannot read image .*0001.png"):
        load_image_folder(tmp_path)


def test_different_sizes_name_both_files(tmp_path: Path) -> None:
    write_pngs(tmp_path, colorize(label_maps(2, seed=0), PALETTE))
    Image.fromarray(np.zeros((40, 24, 3), np.uint8)).save(tmp_path / "0002.png")
    with pytest.raises(SemGANError, match=r"0000.png is 32x32 but 0002.png is 40x24"):
        load_image_folder(tmp_path)


def test_small_images_refused(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((15, 32, 3), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(SemGANError, match=r"small.png is 15x32 px .*at least 16x16"):
        load_image_folder(tmp_path)


def test_n_larger_than_folder_refused(tmp_path: Path) -> None:
    write_pngs(tmp_path, colorize(label_maps(3, seed=0), PALETTE))
    with pytest.raises(SemGANError, match="--n 4 exceeds the 3 images"):
        load_image_folder(tmp_path, n=4)
    with pytest.raises(SemGANError, match="--n must be positive"):
        load_image_folder(tmp_path, n=0)


def test_palette_from_images() -> None:
    images = colorize(label_maps(4, seed=1), PALETTE)
    pal = palette_from_images(images)
    assert pal is not None and pal.tolist() == sorted(PALETTE.tolist())
    noise = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert palette_from_images(noise) is None


# ----------------------------------------------------------------------------------------------- score_folders


def test_score_folders_all_metrics(tmp_path: Path, tiny_inception: None) -> None:
    real = colorize(label_maps(10, seed=2), PALETTE)
    fake = colorize(label_maps(7, seed=3), PALETTE)
    # Written in an order different from the sorted one, to check pairing follows sorted names.
    names = [f"{i:04d}.png" for i in (6, 5, 4, 3, 2, 1, 0)]
    write_pngs(tmp_path / "real", real)
    write_pngs(tmp_path / "fake", fake, names)
    out = score_folders(
        tmp_path / "real", tmp_path / "fake", ["swd", "ms_ssim", "fid", "semantic"], fid_cache_dir=tmp_path / "c"
    )
    json.dumps(out)  # JSON-able
    assert out["n_real"] == 10 and out["n_fake"] == 7
    assert set(out["swd"]) == {"32", "16", "avg"}
    fake_sorted = fake.flip(0)  # file 0000.png holds fake[6]
    assert out["ms_ssim"] == pytest.approx(ms_ssim_pairs(fake_sorted), rel=1e-12)
    assert out["ms_ssim_real"] == pytest.approx(ms_ssim_pairs(real), rel=1e-12)
    assert out["fid"] > 0
    sem = out["semantic"]
    assert sem["num_classes"] == 4 and sem["validity_fake"] == 1.0
    notes = " ".join(out["notes"])
    assert "uses the first 7 of each" in notes and "4 distinct colours" in notes
    # The SWD value is the one of the truncated sets with the same seed.
    again = compute_metrics(real[:7], fake_sorted, ["swd"], generator=torch.Generator().manual_seed(0))
    assert out["swd"] == again["swd"]


def test_score_folders_refusals(tmp_path: Path) -> None:
    write_pngs(tmp_path / "real", torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8))
    write_pngs(tmp_path / "fake", colorize(label_maps(2, seed=0, size=16), PALETTE))
    with pytest.raises(SemGANError, match="unknown metric 'swd2'"):
        score_folders(tmp_path / "real", tmp_path / "nowhere", ["swd2"])
    with pytest.raises(SemGANError, match="no metrics requested"):
        score_folders(tmp_path / "real", tmp_path / "fake", [])
    with pytest.raises(SemGANError, match="more than 256 distinct colours"):
        score_folders(tmp_path / "real", tmp_path / "fake", ["semantic"])
    with pytest.raises(SemGANError, match="--n 3 exceeds the 2 images"):
        score_folders(tmp_path / "real", tmp_path / "fake", ["swd"], n=3)
    write_pngs(tmp_path / "one", colorize(label_maps(1, seed=0, size=16), PALETTE))
    with pytest.raises(SemGANError, match="at least 2 images; .*one holds 1"):
        score_folders(tmp_path / "real", tmp_path / "one", ["ms_ssim"])
    write_pngs(tmp_path / "big", colorize(label_maps(2, seed=0, size=32), PALETTE))
    with pytest.raises(SemGANError, match="SWD compares images of one size"):
        score_folders(tmp_path / "real", tmp_path / "big", ["swd"])


def test_score_folders_with_given_palette(tmp_path: Path) -> None:
    real = colorize(label_maps(4, seed=4), PALETTE)
    write_pngs(tmp_path / "real", real)
    write_pngs(tmp_path / "fake", real)
    out = score_folders(tmp_path / "real", tmp_path / "fake", ["semantic"], n=4, palette=PALETTE.numpy())
    assert out["semantic"]["fsd"] == pytest.approx(0.0, abs=1e-9)
    assert "given by the caller" in out["notes"][0]


# ----------------------------------------------------------------------------------------------- compute_metrics


def test_registry_names() -> None:
    assert METRICS.names() == ["fid", "kid", "l1", "miou", "ms_ssim", "pixel_acc", "semantic", "structure", "swd"]


def test_compute_metrics_baseline_path(tiny_inception: None, tmp_path: Path) -> None:
    real_labels = label_maps(6, seed=5)
    real = colorize(real_labels, PALETTE)
    # A "baseline" output: RGB with off-palette noise; its labels come from nearest-palette snapping.
    noise = torch.randint(-30, 31, real.shape, generator=torch.Generator().manual_seed(0))
    fake = (real.int() + noise).clamp(0, 255).to(torch.uint8)
    out = compute_metrics(
        real,
        fake,
        ["semantic", "ms_ssim", "fid"],
        generator=torch.Generator().manual_seed(0),
        real_labels=real_labels,
        palette=PALETTE,
        fid_cache_dir=tmp_path,
    )
    assert list(out) == ["semantic", "ms_ssim", "ms_ssim_real", "ms_ssim_gap", "fid", "n_real", "n_fake"]
    assert out["semantic"]["validity_real"] == 1.0
    assert 0.0 < out["semantic"]["validity_fake"] < 1.0
    assert out["semantic"]["class_share_l1"] == pytest.approx(0.0, abs=1e-12)  # snapping undoes +-30 noise
    with pytest.raises(SemGANError, match="need the class palette"):
        compute_metrics(real, fake, ["semantic"], generator=torch.Generator())
    with pytest.raises(SemGANError, match="uint8 RGB"):
        compute_metrics(real.float(), fake, ["swd"], generator=torch.Generator())
    with pytest.raises(SemGANError, match="unknown metric"):
        compute_metrics(real, fake, ["inception_score"], generator=torch.Generator())
