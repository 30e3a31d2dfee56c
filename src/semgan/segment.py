"""Photos to label maps: the ``segmenter`` family's model for use::

    seg = semgan.load("runs/seg")                 # a trained segmenter (run folder, checkpoint or export)
    labels = seg(photos)                          # (N, 3, H, W) uint8 -> (N, H, W) int64 class indices

It is what dreamed (map, photo) pairs are measured by: train it on them, test it on real photos
(``benchmarks/downstream.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from semgan.config import RunConfig
from semgan.errors import SemGANError
from semgan.labels import uint8_to_rgb
from semgan.models.pix2pix import UnetGenerator


@torch.no_grad()
def predict_logits(U: UnetGenerator, photos: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """(N, 3, H, W) uint8 photos -> (N, K, H, W) float logits, ``U`` in eval mode (its mode restored)."""
    was_training = U.training
    U.eval()
    try:
        device = next(U.parameters()).device
        parts = [U(uint8_to_rgb(photos[lo:lo + batch_size].to(device))).float().cpu()
                 for lo in range(0, len(photos), batch_size)]
    finally:
        U.train(was_training)
    return torch.cat(parts) if parts else torch.zeros(0, U.out_channels, *photos.shape[2:])


@dataclass(frozen=True)
class Segmenter:
    """A trained segmenter with its class set (see the module docstring)."""

    U: UnetGenerator
    cfg: RunConfig
    step: int
    class_names: tuple[str, ...]
    palette: torch.Tensor  # (K, 3) uint8
    source: Path

    @property
    def resolution(self) -> int:
        return 2**self.U.num_downs

    def check_photos(self, photos: torch.Tensor, what: str = "photos") -> None:
        R = self.resolution
        if photos.dim() != 4 or tuple(photos.shape[1:]) != (3, R, R) or photos.dtype != torch.uint8:
            raise SemGANError(f"{what}: {photos.dtype} of shape {tuple(photos.shape)}; the segmenter {self.source} "
                              f"takes (N, 3, {R}, {R}) uint8 photos")

    def check_classes(self, class_names: tuple[str, ...] | list[str], what: str) -> None:
        """Refuse a class set other than the segmenter's, naming both."""
        if tuple(class_names) != self.class_names:
            raise SemGANError(f"{what} has {len(class_names)} classes ({', '.join(class_names)}); the segmenter "
                              f"{self.source} predicts {len(self.class_names)} ({', '.join(self.class_names)})")

    def __call__(self, photos: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
        """(N, 3, H, W) uint8 photos -> (N, H, W) int64 class indices."""
        self.check_photos(photos)
        return predict_logits(self.U, photos, batch_size).argmax(1)
