"""Score two folders of images: what ``semgan metrics REAL_DIR FAKE_DIR`` does.

Images are PNG / JPG files taken in sorted file-name order, converted to RGB (grey and palette images
included) and compared as uint8. MS-SSIM pairs are consecutive files (0, 1), (2, 3), ... of one folder. SWD needs
equal counts, so with different counts it uses the first min(N_real, N_fake) files of each and says so in
``notes``. Semantic metrics on plain folders take the palette from the distinct colours of the real images
(at most 256) unless one is given, and decode both folders by nearest palette colour.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from semgan.errors import SemGANError
from semgan.labels import read_rgb_png
from semgan.metrics import METRICS, compute_metrics

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MIN_SIZE = 16
MAX_PALETTE_COLORS = 256


def list_images(path: str | Path) -> list[Path]:
    """PNG / JPG files directly inside ``path``, sorted by name. Refuses a missing or image-less folder."""
    folder = Path(path)
    if not folder.exists():
        raise SemGANError(f"image folder not found: {folder}")
    if not folder.is_dir():
        raise SemGANError(f"{folder} is not a folder; expected a folder of PNG/JPG images")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SemGANError(f"no PNG/JPG images in {folder} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


def load_image_folder(
    path: str | Path, n: int | None = None, *, progress: bool = True, skip_bad: bool = False
) -> tuple[torch.Tensor, list[str]]:
    """Load the images of a folder as one uint8 tensor.

    Args:
        path: folder of PNG/JPG files, read in sorted name order.
        n: load only the first ``n`` files; refused when the folder holds fewer.
        progress: progress bar on stderr for large folders.
        skip_bad: leave out unreadable images and images of another size than the first good one (each named
            in a warning) instead of stopping at the first.

    Returns:
        (N, 3, H, W) uint8 RGB images and their N file names.
    """
    files = list_images(path)
    if n is not None:
        if n < 1:
            raise SemGANError(f"--n must be positive, got {n}")
        if n > len(files):
            raise SemGANError(f"--n {n} exceeds the {len(files)} images in {path}")
        files = files[:n]
    hint = " (--skip-bad leaves such images out)" if not skip_bad else ""
    images: torch.Tensor | None = None  # (N, 3, H, W) uint8, allocated at the first good image
    names: list[str] = []
    bad: list[str] = []
    bar = tqdm(files, desc=f"reading {path}", unit="img", file=sys.stderr, disable=not progress or len(files) < 1000)
    for f in bar:
        try:
            arr = read_rgb_png(f)  # (3, H, W) uint8; names the file when it cannot be decoded
            if images is None and min(arr.shape[1:]) < MIN_SIZE:
                raise SemGANError(f"{f} is {arr.shape[1]}x{arr.shape[2]} px (HxW); images must be at least "
                                  f"{MIN_SIZE}x{MIN_SIZE}")
            if images is not None and arr.shape[1:] != images.shape[2:]:
                raise SemGANError(
                    f"images in {path} differ in size: {names[0]} is {images.shape[2]}x{images.shape[3]} but "
                    f"{f.name} is {arr.shape[1]}x{arr.shape[2]} (HxW); all images of a folder must have one size"
                )
        except SemGANError as exc:
            if not skip_bad:
                raise SemGANError(f"{exc}{hint}") from None
            bad.append(str(exc))
            continue
        if images is None:
            images = torch.empty(len(files), *arr.shape, dtype=torch.uint8)
        images[len(names)] = torch.from_numpy(arr)
        names.append(f.name)
    if bad:
        shown = "\n  ".join(bad[:10]) + (f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else "")
        print(f"semgan: warning: skipped {len(bad)} of {len(files)} images in {path}:\n  {shown}", file=sys.stderr)
    if images is None:
        raise SemGANError(f"none of the {len(files)} images in {path} could be used")
    return (images if len(names) == len(files) else images[: len(names)].clone()), names


def palette_from_images(images: torch.Tensor, max_colors: int = MAX_PALETTE_COLORS) -> torch.Tensor | None:
    """The distinct colours of (N, 3, H, W) uint8 images as a (K, 3) uint8 palette sorted by RGB value,
    or None when there are more than ``max_colors`` (not a palette-coloured label set)."""
    seen = torch.zeros(0, dtype=torch.int64)
    for lo in range(0, images.shape[0], 256):  # per batch, so that photos stop early and memory stays bounded
        x = images[lo : lo + 256].to(torch.int64)
        codes = (x[:, 0] << 16) | (x[:, 1] << 8) | x[:, 2]  # (B, H, W) packed RGB
        seen = torch.unique(torch.cat([seen, torch.unique(codes).cpu()]))
        if seen.numel() > max_colors:
            return None
    return torch.stack([(seen >> 16) & 255, (seen >> 8) & 255, seen & 255], dim=1).to(torch.uint8)


def score_folders(
    real_dir: str | Path,
    fake_dir: str | Path,
    metrics: Sequence[str],
    *,
    n: int | None = None,
    seed: int = 0,
    palette: torch.Tensor | np.ndarray | None = None,
    fid_cache_dir: str | Path | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    skip_bad: bool = False,
) -> dict[str, Any]:
    """Compute ``metrics`` between the images of two folders (the ``semgan metrics`` command).

    Args:
        real_dir: folder of reference images.
        fake_dir: folder of generated images.
        metrics: names from ``METRICS``: ``swd``, ``ms_ssim``, ``fid``, ``semantic``.
        n: use the first ``n`` images of each folder (sorted by name); refused if either holds fewer.
        seed: seed of the SWD generator.
        palette: (K, 3) uint8 class colours for ``semantic``; the real images' distinct colours when None.
        fid_cache_dir: FID real-statistics cache folder (None = default).
        device: where to compute (None = CPU).
        progress: progress bars on stderr.
        skip_bad: leave out unreadable or odd-sized images (named in a warning) instead of stopping.

    Returns:
        The :func:`semgan.metrics.compute_metrics` dict plus ``real_dir``, ``fake_dir``, ``seed``, and ``notes``
        (a list of strings saying what was adapted, e.g. SWD on truncated sets or the palette's origin).
    """
    names = list(dict.fromkeys(metrics))  # keep order, drop repeats
    if not names:
        raise SemGANError(f"no metrics requested; choose from: {', '.join(METRICS.names())}")
    for name in names:
        METRICS.get(name)  # fail on a typo before reading thousands of files
    real, _ = load_image_folder(real_dir, n, progress=progress, skip_bad=skip_bad)
    fake, _ = load_image_folder(fake_dir, n, progress=progress, skip_bad=skip_bad)
    notes: list[str] = []

    pal: torch.Tensor | None = None
    if "semantic" in names:
        if palette is not None:
            pal = torch.as_tensor(palette, dtype=torch.uint8)
            notes.append(f"semantic: palette of {pal.shape[0]} colours given by the caller")
        else:
            pal = palette_from_images(real)
            if pal is None:
                raise SemGANError(
                    f"semantic metrics need a palette: the images in {real_dir} use more than {MAX_PALETTE_COLORS} "
                    "distinct colours, so they are not palette-coloured label maps; pass the dataset palette"
                )
            notes.append(f"semantic: palette = the {pal.shape[0]} distinct colours of the real images")
        notes.append("semantic: labels of both folders decoded by nearest palette colour")

    for folder, images in ((real_dir, real), (fake_dir, fake)):
        if images.shape[0] < 2 and {"ms_ssim", "fid"} & set(names):
            raise SemGANError(f"MS-SSIM and FID need at least 2 images; {folder} holds {images.shape[0]}")
    if "swd" in names and real.shape[2:] != fake.shape[2:]:
        raise SemGANError(
            f"SWD compares images of one size: {real_dir} holds {real.shape[2]}x{real.shape[3]} images and "
            f"{fake_dir} {fake.shape[2]}x{fake.shape[3]}"
        )

    generator = torch.Generator().manual_seed(seed)
    result: dict[str, Any] = {}
    for name in names:
        r, f = real, fake
        if name == "swd" and real.shape[0] != fake.shape[0]:
            m = min(real.shape[0], fake.shape[0])
            r, f = real[:m], fake[:m]
            notes.append(
                f"swd: {real_dir} holds {real.shape[0]} images and {fake_dir} {fake.shape[0]}; SWD needs equal "
                f"counts, so it uses the first {m} of each in sorted order"
            )
        result.update(
            compute_metrics(
                r,
                f,
                [name],
                generator=generator,
                palette=pal,
                fid_cache_dir=fid_cache_dir,
                device=device,
                progress=progress,
            )
        )
    result.update(
        n_real=int(real.shape[0]),
        n_fake=int(fake.shape[0]),
        real_dir=str(real_dir),
        fake_dir=str(fake_dir),
        seed=seed,
        notes=notes,
    )
    return result


def fid_against_statistics(stats: str | Path, fake_dir: str | Path, *, n: int | None = None,
                           device: torch.device | str | None = None, progress: bool = True,
                           skip_bad: bool = False) -> dict[str, Any]:
    """FID of a folder of images against stored statistics (a pytorch-fid ``.npz``, or one we wrote)."""
    from semgan.metrics import fid

    mu, sigma = fid.load_statistics(stats)
    fake, _ = load_image_folder(fake_dir, n, progress=progress, skip_bad=skip_bad)
    f_mu, f_sigma = fid.feature_statistics(fid.extract_features(fake, device=device, progress=progress))
    return {"fid": fid.frechet_distance(mu, sigma, f_mu, f_sigma), "n_fake": int(fake.shape[0]),
            "real_stats": str(stats), "fake_dir": str(fake_dir)}


def save_folder_statistics(real_dir: str | Path, out: str | Path, *, n: int | None = None,
                           device: torch.device | str | None = None, progress: bool = True,
                           skip_bad: bool = False) -> int:
    """Write the FID statistics of a folder of images to ``out`` (pytorch-fid's ``.npz``); returns the count."""
    from semgan.metrics import fid

    real, _ = load_image_folder(real_dir, n, progress=progress, skip_bad=skip_bad)
    mu, sigma = fid.feature_statistics(fid.extract_features(real, device=device, progress=progress))
    fid.save_statistics(out, mu, sigma, int(real.shape[0]))
    return int(real.shape[0])
