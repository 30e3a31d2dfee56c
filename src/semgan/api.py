"""Two lines from a trained model to label maps, diffusers style::

    import semgan
    gen = semgan.load("runs/s1")                 # a run folder, a checkpoint file or an exported model folder
    out = gen.sample(16, seed=0)                 # out.labels (16, H, W), out.probs, out.images (16, 3, H, W)

``semgan.load("pretrained:shapes")`` loads the small model shipped with the package.

A seed gives the same maps on every device and in every batch (latents are drawn on the CPU);
:meth:`LabelMapGenerator.sample_seeds` gives one map per seed, the same map for a seed whatever else is asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from semgan.devices import resolve_device
from semgan.errors import SemGANError
from semgan.labels import argmax, colorize, rgb_to_uint8, snap_to_palette
from semgan.models import Generator
from semgan.sample import latents, load_run


@dataclass(frozen=True)
class Generated:
    """Generated label maps.

    Attributes:
        labels: (N, H, W) int64 class indices.
        images: (N, 3, H, W) uint8: the maps in the palette's colours (SemGAN), or the baseline's raw RGB.
        probs: (N, K, H, W) float per-pixel class probabilities (SemGAN); None for the RGB baseline.
        latents: (N, ld) the latents they came from.
    """

    labels: torch.Tensor
    images: torch.Tensor
    probs: torch.Tensor | None
    latents: torch.Tensor


class LabelMapGenerator:
    """A trained generator with its classes and palette (see :func:`load`)."""

    def __init__(self, G: Generator, class_names: Sequence[str], palette: torch.Tensor, step: int) -> None:
        self.G, self.class_names, self.palette, self.step = G.eval(), tuple(class_names), palette, step

    def __repr__(self) -> str:
        return (f"LabelMapGenerator({self.G.cfg.mode}, {len(self.class_names)} classes, "
                f"{self.resolution}x{self.resolution}, step {self.step})")

    @property
    def resolution(self) -> int:
        return self.G.resolution

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batch_size: int = 64) -> Generated:
        """The maps of latents ``z`` (N, ld)."""
        device = next(self.G.parameters()).device
        labels, images, probs = [], [], []
        for part in z.split(batch_size):
            out = self.G(part.to(device))  # probs (B, K, H, W) or rgb (B, 3, H, W)
            if self.G.cfg.mode == "semgan":
                lab = argmax(out)
                labels.append(lab.cpu())
                images.append(colorize(lab, self.palette.to(device)).cpu())
                probs.append(out.float().cpu())
            else:
                img = rgb_to_uint8(out)
                images.append(img.cpu())
                labels.append(snap_to_palette(img, self.palette.to(device)).cpu())
        return Generated(labels=torch.cat(labels), images=torch.cat(images),
                         probs=torch.cat(probs) if probs else None, latents=z.cpu())

    def sample(self, n: int = 1, *, seed: int = 0) -> Generated:
        """``n`` maps from the latents of ``seed`` (the same as ``semgan sample --n N --seed S``)."""
        if n < 1:
            raise SemGANError(f"n must be at least 1, got {n}")
        return self.generate(latents(n, self.G.cfg.ld, generator=torch.Generator().manual_seed(seed)))

    def sample_seeds(self, seeds: Sequence[int]) -> Generated:
        """One map per seed, in order; a seed's map never depends on the other seeds (StyleGAN's ``--seeds``)."""
        if not seeds:
            raise SemGANError("no seeds given")
        z = torch.cat([latents(1, self.G.cfg.ld, generator=torch.Generator().manual_seed(s)) for s in seeds])
        return self.generate(z)

    def render(self, labels: torch.Tensor) -> torch.Tensor:
        """(N, H, W) class indices -> (N, 3, H, W) uint8 in the palette's colours."""
        return colorize(labels, self.palette)


def load(path: str | Path, *, checkpoint: str = "latest", device: str | torch.device = "auto") -> LabelMapGenerator:
    """Load a trained generator: a run folder (its ``checkpoint``: latest, best-swd, ...), a checkpoint file, an
    exported model folder (``semgan export``) or a model shipped with semgan (``"pretrained:shapes"``).
    ``device="auto"`` takes CUDA when there is one."""
    run = load_run(path, which=checkpoint, device=resolve_device(str(device), key="device"))
    return LabelMapGenerator(run.G, run.class_names, run.palette, run.step)


def parse_seeds(text: str) -> list[int]:
    """``"0-3,7,10-11"`` -> [0, 1, 2, 3, 7, 10, 11] (StyleGAN's seed ranges; order kept, duplicates kept)."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise SemGANError(f"--seeds {text!r}: {part!r} is not a seed or a range like 0-35") from None
        if a < 0 or b < a:
            raise SemGANError(f"--seeds {text!r}: {part!r} is not a range of non-negative seeds (low-high)")
        if b - a >= 100_000:
            raise SemGANError(f"--seeds {text!r}: {part!r} holds {b - a + 1} seeds; at most 100000 at once")
        seeds += range(a, b + 1)
    return seeds
