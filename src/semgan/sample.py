"""Sampling: latents -> generator -> label maps and colour images, and writing them as PNGs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from semgan.config import RunConfig, SemGANModelConfig
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

GRID_SEED_OFFSET = 1_000_003  # the fixed sample-grid latents come from their own seed


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


def render_batches(G: Generator, z: torch.Tensor, palette: torch.Tensor, *, batch_size: int = 256,
                   progress: bool = False) -> Samples:
    """:func:`render` over latents ``z`` (N, ld), ``batch_size`` at a time (N may be 0)."""
    if len(z) == 0:
        R = G.resolution
        return Samples(labels=torch.zeros(0, R, R, dtype=torch.int64),
                       images=torch.zeros(0, 3, R, R, dtype=torch.uint8), palette=palette.cpu())
    parts = [render(G, z[i : i + batch_size], palette)
             for i in tqdm(range(0, len(z), batch_size), desc="sampling", disable=not progress, leave=False)]
    return Samples(
        labels=torch.cat([p.labels for p in parts]),
        images=torch.cat([p.images for p in parts]),
        palette=palette.cpu(),
    )


def sample(
    G: Generator, n: int, palette: torch.Tensor, *, generator: torch.Generator, batch_size: int = 256,
    progress: bool = False,
) -> Samples:
    """Draw ``n`` samples in batches; deterministic given ``generator``."""
    return render_batches(G, latents(n, G.cfg.ld, generator=generator), palette, batch_size=batch_size,
                          progress=progress)


def grid_latents(cfg: RunConfig, n: int = 16) -> torch.Tensor:
    """The fixed latents (n, ld) of a run's sample grids: the same at every step, from their own seed."""
    seed = cfg.train.seed + GRID_SEED_OFFSET
    return latents(n, cfg.model_as(SemGANModelConfig).ld, generator=torch.Generator().manual_seed(seed))


def grid_image(G: Generator, z: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """A (3, H', W') uint8 grid of G's pictures of ``z``, four per row."""
    return make_grid(render(G, z, palette).images, nrow=4)


def write_samples(samples: Samples, out: str | Path, *, grid_n: int = 16) -> Path:
    """Write ``out/labels/*.png`` (palette PNGs, pixel value = class), ``out/color/*.png`` and ``out/grid.png``.

    ``color`` holds what the generator drew (for the RGB baseline, its raw RGB output); ``labels`` holds the
    class maps (for the baseline, its nearest-palette snapping).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SemGANError(f"--out {out} is a file; expected a folder for the samples")
    used = [p for sub in ("labels", "color") if (out / sub).is_dir() for p in (out / sub).glob("*.png")]
    if used:
        raise SemGANError(f"--out {out} already holds samples ({len(used)} PNGs in {out}/labels, {out}/color); "
                          "choose a new folder or remove them, so that old and new samples do not mix")
    (out / "labels").mkdir(parents=True, exist_ok=True)
    (out / "color").mkdir(parents=True, exist_ok=True)
    width = max(6, len(str(len(samples.labels) - 1)))
    for i in range(len(samples.labels)):
        write_label_png(out / "labels" / f"{i:0{width}d}.png", samples.labels[i], samples.palette)
        write_rgb_png(out / "color" / f"{i:0{width}d}.png", samples.images[i])
    grid = make_grid(samples.images[:grid_n], nrow=4)
    write_rgb_png(out / "grid.png", grid)
    return out
