"""Dreaming scenes (paper, section 6): generated label maps -> pix2pix -> photos; latent walks; folders of maps.

::

    gen, tr = semgan.load("runs/semgan"), semgan.load("runs/p2p")
    d = dream(gen, tr, n=16, seed=0)               # d.labels (16, H, W), d.maps and d.photos (16, 3, H, W) uint8
    w = interpolate(gen, tr, seed=0, keys=2, frames=16)   # a spherical walk between seeded latents

A generator and a translator must share the class set (and, for a colour-input translator, the colours). The
RGB baseline's maps are its output snapped to the palette, so Figure 8 of the paper (photos dreamed from
SemGAN's maps and from the baseline's) can be redrawn from two runs.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from semgan.errors import SemGANError
from semgan.generator import LabelMapGenerator
from semgan.io import atomic_write
from semgan.labels import colorize, make_grid, read_label_png, write_label_png, write_rgb_png
from semgan.sample import latents
from semgan.translate import Translator


@dataclass(frozen=True)
class Dreamed:
    """Generated maps and the photos dreamed from them.

    Attributes:
        labels: (N, H, W) int64 class indices.
        maps: (N, 3, H, W) uint8, the maps in the palette's colours.
        photos: (N, 3, H, W) uint8, their translations.
        latents: (N, ld) the latents the maps came from.
    """

    labels: torch.Tensor
    maps: torch.Tensor
    photos: torch.Tensor
    latents: torch.Tensor


def check_pair(gen: LabelMapGenerator, tr: Translator, generator_name: str = "the generator") -> None:
    """Refuse a translator whose class set, colours or size do not match the generator's maps."""
    tr.check_compatible(gen.class_names, gen.palette, generator_name)
    if gen.resolution != tr.resolution:
        raise SemGANError(f"{generator_name} draws {gen.resolution}x{gen.resolution} maps; the translator "
                          f"{tr.source} takes {tr.resolution}x{tr.resolution}")


def dream_latents(gen: LabelMapGenerator, tr: Translator, z: torch.Tensor, *, seed: int = 0) -> Dreamed:
    """The maps of latents ``z`` (N, ld) and their photos (dropout seeded by ``seed``)."""
    check_pair(gen, tr)
    out = gen.generate(z)
    return Dreamed(labels=out.labels, maps=gen.render(out.labels), photos=tr(out.labels, seed=seed), latents=z)


def dream(gen: LabelMapGenerator, tr: Translator, n: int, *, seed: int = 0) -> Dreamed:
    """``n`` maps from the latents of ``seed`` (the same maps as ``semgan sample --n N --seed S``) and their photos."""
    if n < 1:
        raise SemGANError(f"n must be at least 1, got {n}")
    return dream_latents(gen, tr, latents(n, gen.G.cfg.ld, generator=torch.Generator().manual_seed(seed)), seed=seed)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between two latents (the path Gaussian latents keep their norm on); exact at the
    ends: ``t = 0`` gives ``z0`` and ``t = 1`` gives ``z1``, bit for bit."""
    if t <= 0.0:
        return z0.clone()
    if t >= 1.0:
        return z1.clone()
    a, b = z0.double(), z1.double()
    cos = (a @ b / (a.norm() * b.norm())).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if float(omega.sin()) < 1e-6:  # (anti)parallel: a straight line is as good as any
        return (a + t * (b - a)).to(z0.dtype)
    out = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / omega.sin()
    return out.to(z0.dtype)


def walk(keys: torch.Tensor, frames: int) -> torch.Tensor:
    """(frames per leg x legs + 1, ld) latents along great circles through the rows of ``keys`` (K, ld): the first,
    every key and the last are exactly the given latents."""
    if keys.shape[0] < 2:
        raise SemGANError("an interpolation needs at least 2 latents")
    if frames < 2:
        raise SemGANError(f"--frames {frames}: at least 2 frames per leg (its two ends)")
    path = []
    for k in range(keys.shape[0] - 1):
        steps = frames - 1  # the leg's last frame is the next leg's first: counted once
        path += [slerp(keys[k], keys[k + 1], i / steps) for i in range(steps)]
    path.append(keys[-1].clone())
    return torch.stack(path)


def interpolate(gen: LabelMapGenerator, tr: Translator, *, seed: int = 0, keys: int = 2, frames: int = 16) -> Dreamed:
    """A walk through ``keys`` latents of ``seed`` (those of ``dream(n=keys, seed=seed)``), ``frames`` per leg."""
    key_z = latents(keys, gen.G.cfg.ld, generator=torch.Generator().manual_seed(seed))
    return dream_latents(gen, tr, walk(key_z, frames), seed=seed)


# ------------------------------------------------------------------------------------------------- files


def _fresh_folder(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SemGANError(f"--out {out} is not an empty folder; choose a new one, so that old and new results do "
                          "not mix")


@contextlib.contextmanager
def staged(out: str | Path) -> Iterator[Path]:
    """A fresh folder written as ``out.partial`` and renamed to ``out`` once complete: a full disk or a crash
    leaves no half-written ``out`` (only the ``.partial``, which the next try replaces)."""
    out = Path(out)
    _fresh_folder(out)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    yield partial
    if out.exists():
        out.rmdir()  # empty: checked above
    partial.rename(out)


def pair_grid(maps: torch.Tensor, photos: torch.Tensor, pairs_per_row: int = 4) -> torch.Tensor:
    """(3, H', W') uint8: map | photo pairs side by side, ``pairs_per_row`` pairs per row."""
    return make_grid(torch.stack([maps, photos], 1).flatten(0, 1), nrow=2 * pairs_per_row)


def _write_frames(d: Dreamed, palette: torch.Tensor, out: Path) -> None:
    for sub in ("labels", "maps", "photos"):
        (out / sub).mkdir()
    for i in range(len(d.labels)):
        write_label_png(out / "labels" / f"{i:04d}.png", d.labels[i], palette)
        write_rgb_png(out / "maps" / f"{i:04d}.png", d.maps[i])
        write_rgb_png(out / "photos" / f"{i:04d}.png", d.photos[i])


def write_dream(d: Dreamed, palette: torch.Tensor, out: str | Path) -> Path:
    """``out/labels/NNNN.png`` (index PNGs), ``out/maps/NNNN.png``, ``out/photos/NNNN.png`` and ``out/grid.png``."""
    with staged(out) as tmp:
        _write_frames(d, palette, tmp)
        write_rgb_png(tmp / "grid.png", pair_grid(d.maps[:32], d.photos[:32]))
    return Path(out)


def write_walk(d: Dreamed, palette: torch.Tensor, out: str | Path, *, fps: int = 8) -> Path:
    """The frames of a walk: ``out/labels|maps|photos/``, ``out/strip.png`` (maps over photos) and
    ``out/walk.gif`` (each frame the map and its photo side by side, looping)."""
    with staged(out) as tmp:
        _write_frames(d, palette, tmp)
        _write_strip_and_gif(d, tmp, fps)
    return Path(out)


def _write_strip_and_gif(d: Dreamed, out: Path, fps: int) -> None:
    strip = make_grid(torch.cat([d.maps, d.photos]), nrow=len(d.maps), pad=1)
    write_rgb_png(out / "strip.png", strip)
    frames = [Image.fromarray(np.ascontiguousarray(torch.cat([m, p], 2).permute(1, 2, 0).numpy()))
              for m, p in zip(d.maps, d.photos, strict=True)]
    ms = 10 * max(1, round(100 / fps))  # GIF counts in hundredths of a second
    atomic_write(out / "walk.gif", lambda f: frames[0].save(f, format="GIF", save_all=True,
                                                             append_images=frames[1:], duration=ms, loop=0))


def read_label_folder(folder: str | Path, num_classes: int, *, what: str = "--labels",
                      owner: str = "translator") -> tuple[torch.Tensor, list[str]]:
    """Every index PNG in ``folder`` (sorted by name) as (N, H, W) int64, refusing values outside 0..K-1 with the
    files and values, and maps of different sizes; ``what`` names the option and ``owner`` the model in errors."""
    root = Path(folder)
    if not root.is_dir():
        raise SemGANError(f"{what} {root}: not a folder; expected a folder of index PNGs (e.g. semgan sample's "
                          "labels/)")
    files = sorted(root.glob("*.png"))
    if not files:
        raise SemGANError(f"{what} {root} holds no .png label maps")
    maps = [read_label_png(f) for f in files]
    bad = [(f.name, sorted(set(np.unique(m).tolist()) - set(range(num_classes)))) for f, m in zip(files, maps,
                                                                                                   strict=True)]
    bad = [(name, values) for name, values in bad if values]
    if bad:
        shown = "; ".join(f"{name}: {', '.join(map(str, v[:8]))}" for name, v in bad[:5])
        raise SemGANError(f"{what} {root}: {len(bad)} maps hold values outside the {owner}'s {num_classes} "
                          f"classes (0..{num_classes - 1}): {shown}" + (" ..." if len(bad) > 5 else ""))
    shapes = {m.shape for m in maps}
    if len(shapes) > 1:
        raise SemGANError(f"{what} {root}: maps of {len(shapes)} sizes ({', '.join(map(str, sorted(shapes)))}); "
                          "expected one")
    return torch.from_numpy(np.stack(maps)).long(), [f.name for f in files]


def translate_folder(tr: Translator, labels_dir: str | Path, out: str | Path, *, seed: int = 0,
                     dropout: bool = True) -> Path:
    """Translate every index PNG of ``labels_dir``: ``out/photos/<name>.png`` and ``out/grid.png`` (map | photo)."""
    labels, names = read_label_folder(labels_dir, len(tr.class_names))
    tr.check_maps(labels, f"--labels {labels_dir}")
    photos = tr(labels, seed=seed, dropout=dropout)
    with staged(out) as tmp:
        (tmp / "photos").mkdir()
        for name, photo in zip(names, photos, strict=True):
            write_rgb_png(tmp / "photos" / name, photo)
        write_rgb_png(tmp / "grid.png", pair_grid(colorize(labels[:32], tr.palette.cpu()), photos[:32]))
    return Path(out)


# ------------------------------------------------------------------------------------------ dreamed datasets

DATASET_MANIFEST = "dream.json"
DATASET_CHUNK = 64  # pairs per batch; resumes restart at a chunk boundary, so every batch is the same


def write_dataset(gen: LabelMapGenerator, tr: Translator, n: int, out: str | Path, *, seed: int = 0,
                  progress: bool = False) -> Path:
    """``n`` dreamed (label map, photo) pairs as a folder the ``folder`` loader reads (with photos)::

        out/maps/NNNNNN.png      index PNGs (pixel value = class), out/maps/classes.json
        out/photos/NNNNNN.png    the translator's photo of each map (same name)
        out/dream.json           what made them: generator, translator, seed, n, fingerprints

    Pair ``i`` is the map of seed ``seed + i`` (``semgan sample --seeds``'s map of that seed) and its photo with
    dropout seed ``seed + i``, whatever else is asked. Every file is written atomically and a pair counts once both
    files exist, so an interrupted run resumes where it stopped (the same call again, or a larger ``n``),
    without duplicates or torn files; a folder made by another generator, translator or seed is refused.
    Load it with ``load_dataset("folder", root=out/maps, photos=out/photos)`` (``--set data.photos=...``).
    """
    from tqdm import tqdm

    from semgan.encoder import weights_fingerprint
    from semgan.io import read_json_file, write_json

    if n < 1:
        raise SemGANError(f"--n {n}: a dataset needs at least 1 pair")
    check_pair(gen, tr)
    out = Path(out)
    maps, photos = out / "maps", out / "photos"
    about = {"generator": str(gen.source), "generator_fingerprint": weights_fingerprint(gen.G),
             "translator": str(tr.source), "translator_fingerprint": weights_fingerprint(tr.G), "seed": seed,
             "class_names": list(gen.class_names), "resolution": gen.resolution}
    manifest = out / DATASET_MANIFEST
    saved: dict[str, object] = {}
    if manifest.is_file():
        saved = read_json_file(manifest)
        changed = [k for k in about if saved.get(k) != about[k]]
        if changed:
            raise SemGANError(f"--dataset {out} was dreamed with another {', '.join(changed)}; resume it with the "
                              "same generator, translator and seed, or choose a new folder")
    elif out.exists() and any(out.iterdir()):
        raise SemGANError(f"--dataset {out} is not empty and holds no {DATASET_MANIFEST}; choose a new folder")
    maps.mkdir(parents=True, exist_ok=True)
    photos.mkdir(exist_ok=True)
    write_json(maps / "classes.json", {"names": list(gen.class_names), "colors": gen.palette.tolist()})
    write_json(manifest, {**about, "n": max(n, int(str(saved.get("n", 0))))})  # a resume may ask for more
    width = 6
    todo = [lo for lo in range(0, n, DATASET_CHUNK)
            if not all((maps / f"{i:0{width}d}.png").is_file() and (photos / f"{i:0{width}d}.png").is_file()
                       for i in range(lo, min(lo + DATASET_CHUNK, n)))]
    for lo in tqdm(todo, desc="dreaming", unit="batch", disable=not progress):
        z = torch.cat([latents(1, gen.G.cfg.ld, generator=torch.Generator().manual_seed(seed + i))
                       for i in range(lo, min(lo + DATASET_CHUNK, n))])  # one latent per seed: n-independent
        d = dream_latents(gen, tr, z, seed=seed + lo)
        for j in range(len(d.labels)):
            name = f"{lo + j:0{width}d}.png"
            write_label_png(maps / name, d.labels[j], gen.palette)
            write_rgb_png(photos / name, d.photos[j])
    return out
