"""Label map -> photo with a trained pix2pix run: the API under ``semgan pix2pix translate`` and ``semgan dream``.

::

    tr = load_translator("runs/p2p")                   # semgan.model_files: a pix2pix run, checkpoint or export
    photos = tr(labels)                                # (N, H, W) class indices -> (N, 3, H, W) uint8

Translation runs the generator as the pix2pix paper does at test time: batch-norm statistics of each image
alone and dropout on (its noise source), the dropout seeded so that a map always gives the same photo.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from semgan.config import Pix2PixModelConfig, RunConfig
from semgan.errors import SemGANError
from semgan.labels import colorize, one_hot, rgb_to_uint8, uint8_to_rgb
from semgan.models.pix2pix import UnetGenerator


def encode_labels(labels: torch.Tensor, encoding: str, palette: torch.Tensor) -> torch.Tensor:
    """(B, H, W) int64 labels -> what the translator sees: colour (B, 3, H, W) in [-1, 1], or one-hot (B, K, H, W)."""
    if encoding == "color":
        return uint8_to_rgb(colorize(labels, palette.to(labels.device)))
    return one_hot(labels, int(palette.shape[0]))


@contextlib.contextmanager
def _test_time_mode(G: nn.Module, dropout: bool = True) -> Iterator[None]:
    """Train mode (batch statistics, dropout unless ``dropout=False``) without touching the running statistics,
    restored afterwards."""
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in norms]
    was_training = G.training
    G.train()
    if not dropout:
        for m in G.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
    for m in norms:
        m.momentum = 0.0  # running = 1 * running + 0 * batch: unchanged
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved, strict=True):
            m.momentum = momentum
            if tracked is not None and m.num_batches_tracked is not None:
                m.num_batches_tracked.copy_(tracked)
        G.train(was_training)


@torch.no_grad()
def translate(G: nn.Module, x: torch.Tensor, *, seed: int = 0, dropout: bool = True) -> torch.Tensor:
    """(N, C, H, W) encoded maps -> (N, 3, H, W) photos in [-1, 1], one image at a time as the paper does.

    Image ``i`` draws its dropout from seed ``seed + i`` (torch's global RNG is left as it was), so the same
    map at the same place gives the same photo on every call. ``dropout=False`` turns pix2pix's noise source
    off: the deterministic photo an ONNX export gives.
    """
    devices = [x.device] if x.device.type == "cuda" else []
    out = []
    with _test_time_mode(G, dropout), torch.random.fork_rng(devices=devices):
        for i in range(x.shape[0]):
            torch.manual_seed(seed + i)
            out.append(G(x[i : i + 1]).float())
    return torch.cat(out) if out else x.new_zeros(0, 3, *x.shape[2:])


@dataclass(frozen=True)
class Translator:
    """A trained pix2pix generator with the class set and encoding it was trained on."""

    G: UnetGenerator
    cfg: RunConfig
    step: int
    class_names: tuple[str, ...]
    palette: torch.Tensor  # (K, 3) uint8
    source: Path

    @property
    def model_cfg(self) -> Pix2PixModelConfig:
        assert isinstance(self.cfg.model, Pix2PixModelConfig)
        return self.cfg.model

    @property
    def resolution(self) -> int:
        return 2**self.G.num_downs

    def check_maps(self, labels: torch.Tensor, what: str) -> None:
        """Refuse maps of another size or with values outside the class set, naming them."""
        size = self.resolution
        if labels.dim() != 3 or tuple(labels.shape[1:]) != (size, size):
            raise SemGANError(f"{what}: maps of shape {tuple(labels.shape[1:])}; the translator {self.source} takes "
                              f"{size}x{size} maps")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= len(self.class_names)):
            raise SemGANError(f"{what}: label values {int(labels.min())}..{int(labels.max())}; the translator has "
                              f"{len(self.class_names)} classes (0..{len(self.class_names) - 1})")

    def __call__(self, labels: torch.Tensor, *, seed: int = 0, batch_size: int = 64,
                 dropout: bool = True) -> torch.Tensor:
        """(N, H, W) class indices -> (N, 3, H, W) uint8 photos (``dropout=False``: see :func:`translate`)."""
        return rgb_to_uint8(self.translate_rgb(labels, seed=seed, batch_size=batch_size, dropout=dropout))

    def translate_rgb(self, labels: torch.Tensor, *, seed: int = 0, batch_size: int = 64,
                      dropout: bool = True) -> torch.Tensor:
        """(N, H, W) class indices -> (N, 3, H, W) float photos in [-1, 1], on the CPU."""
        self.check_maps(labels, "labels")
        device = next(self.G.parameters()).device
        out = []
        for lo in range(0, labels.shape[0], batch_size):
            x = encode_labels(labels[lo : lo + batch_size].long().to(device), self.model_cfg.input, self.palette)
            out.append(translate(self.G, x, seed=seed + lo, dropout=dropout).cpu())
        return torch.cat(out) if out else torch.zeros(0, 3, *labels.shape[1:])

    def check_compatible(self, class_names: Sequence[str], palette: torch.Tensor, what: str) -> None:
        """Refuse maps of another class set (names or, for colour input, colours), naming both sides."""
        if tuple(class_names) != self.class_names:
            raise SemGANError(f"{what} has {len(class_names)} classes ({', '.join(class_names)}); the translator "
                              f"{self.source} was trained on {len(self.class_names)} ({', '.join(self.class_names)})")
        if self.model_cfg.input == "color" and not torch.equal(palette.cpu(), self.palette.cpu()):
            raise SemGANError(f"{what} renders its classes in other colours than the translator {self.source}, whose "
                              "input is the colour map (model.input=color); the colours must match")
