"""The ``semgan`` family's model for use: a trained generator with its classes, sampling maps by seed.

A seed gives the same maps on every device and in every batch (latents are drawn on the CPU);
:meth:`LabelMapGenerator.sample_seeds` gives one map per seed, the same map for a seed whatever else is asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from semgan.config import RunConfig
from semgan.errors import SemGANError
from semgan.labels import argmax, colorize, rgb_to_uint8, snap_to_palette
from semgan.models import Generator
from semgan.sample import latents


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
    """A trained SemGAN or RGB-baseline generator with its classes and palette: the ``semgan`` family's model
    for use (:func:`semgan.load`).

    Attributes:
        G: the generator (the moving average of its weights when the run kept one), in eval mode.
        class_names: the K class names; ``palette`` (K, 3) uint8 their colours.
        step: the training step of the weights; ``cfg`` the run's config; ``source`` the file they came from.
    """

    def __init__(self, G: Generator, class_names: Sequence[str], palette: torch.Tensor, step: int, *,
                 cfg: RunConfig | None = None, source: Path | None = None) -> None:
        self.G, self.class_names, self.palette, self.step = G.eval(), tuple(class_names), palette, step
        self.cfg = cfg if cfg is not None else RunConfig(model=G.cfg)
        self.source = source

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
