"""Sampling: latents -> generator -> label maps and colour images; loading a trained generator from a run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from semgan.checkpoint import load_checkpoint
from semgan.config import RunConfig, from_dict
from semgan.errors import SemGANError
from semgan.labels import (
    argmax,
    colorize,
    make_grid,
    rgb_to_uint8,
    snap_to_palette,
    write_label_png,
    write_rgb_png,
)
from semgan.models import Generator


@dataclass(frozen=True)
class Samples:
    """A batch of generated maps.

    Attributes:
        labels: (N, H, W) int64 class indices (argmax for SemGAN; nearest palette colour for the baseline).
        images: (N, 3, H, W) uint8, what the generator drew: the palette colours of ``labels`` for SemGAN,
            the raw RGB output for the baseline.
        palette: (K, 3) uint8.
    """

    labels: torch.Tensor
    images: torch.Tensor
    palette: torch.Tensor

    @property
    def label_images(self) -> torch.Tensor:
        """(N, 3, H, W) uint8: ``labels`` rendered with the palette (equals ``images`` for SemGAN)."""
        return colorize(self.labels, self.palette)


def latents(n: int, ld: int, *, generator: torch.Generator) -> torch.Tensor:
    """(n, ld) N(0, 1) latents, always drawn on the CPU so that a seed gives the same maps on any device."""
    return torch.randn(n, ld, generator=generator)


@torch.no_grad()
def render(G: Generator, z: torch.Tensor, palette: torch.Tensor) -> Samples:
    """Run G on latents ``z`` (B, ld) in eval mode and collapse the output to labels and images."""
    was_training = G.training
    G.eval()
    try:
        device = next(G.parameters()).device
        out = G(z.to(device))  # probs (B, K, H, W) or rgb (B, 3, H, W)
        pal = palette.to(device)
        if G.cfg.mode == "semgan":
            labels = argmax(out)
            images = colorize(labels, pal)
        else:
            images = rgb_to_uint8(out)
            labels = snap_to_palette(images, pal)
    finally:
        G.train(was_training)
    return Samples(labels=labels.cpu(), images=images.cpu(), palette=palette.cpu())


def sample(
    G: Generator, n: int, palette: torch.Tensor, *, generator: torch.Generator, batch_size: int = 256,
    progress: bool = False,
) -> Samples:
    """Draw ``n`` samples in batches; deterministic given ``generator``."""
    z = latents(n, G.cfg.ld, generator=generator)
    parts = [render(G, z[i : i + batch_size], palette)
             for i in tqdm(range(0, n, batch_size), desc="sampling", disable=not progress, leave=False)]
    return Samples(
        labels=torch.cat([p.labels for p in parts]),
        images=torch.cat([p.images for p in parts]),
        palette=palette.cpu(),
    )


@dataclass(frozen=True)
class LoadedRun:
    """A trained generator with what is needed to interpret its output."""

    G: Generator
    cfg: RunConfig
    step: int
    class_names: tuple[str, ...]
    palette: torch.Tensor


def find_checkpoint(run: str | Path, which: str = "latest") -> Path:
    """``run`` is a run folder (its ``checkpoints/<which>.pt``) or a checkpoint file."""
    run = Path(run)
    if run.is_file():
        return run
    if not run.is_dir():
        raise SemGANError(f"run folder not found: {run}")
    path = run / "checkpoints" / f"{which}.pt"
    if not path.is_file():
        found = sorted(p.stem for p in (run / "checkpoints").glob("*.pt")) if (run / "checkpoints").is_dir() else []
        hint = f"available: {', '.join(found)}" if found else "is this a semgan run folder?"
        raise SemGANError(f"no checkpoint {path}; {hint}")
    return path


def load_run(run: str | Path, *, which: str = "latest", device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild the generator of a run (or a checkpoint file) and load its weights."""
    ckpt: dict[str, Any] = load_checkpoint(find_checkpoint(run, which), map_location="cpu")
    cfg = from_dict(ckpt["config"])
    data = ckpt["data"]
    G = Generator(cfg.model, len(data["class_names"]), int(data["resolution"]))
    G.load_state_dict(ckpt["G"])
    G.to(device).eval()
    return LoadedRun(G=G, cfg=cfg, step=int(ckpt["step"]), class_names=tuple(data["class_names"]),
                     palette=torch.as_tensor(data["palette"], dtype=torch.uint8))


def write_samples(samples: Samples, out: str | Path, *, grid_n: int = 16) -> Path:
    """Write ``out/labels/*.png`` (palette PNGs, pixel value = class), ``out/color/*.png`` and ``out/grid.png``.

    ``color`` holds what the generator drew (for the RGB baseline, its raw RGB output); ``labels`` holds the
    class maps (for the baseline, its nearest-palette snapping).
    """
    out = Path(out)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    (out / "color").mkdir(parents=True, exist_ok=True)
    width = max(6, len(str(len(samples.labels) - 1)))
    for i in range(len(samples.labels)):
        write_label_png(out / "labels" / f"{i:0{width}d}.png", samples.labels[i], samples.palette)
        write_rgb_png(out / "color" / f"{i:0{width}d}.png", samples.images[i])
    grid = make_grid(samples.images[:grid_n], nrow=4)
    write_rgb_png(out / "grid.png", grid)
    return out
