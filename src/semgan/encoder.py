"""Maps to latents: the ``encoder`` family's model for use, and the inversion it is measured against::

    enc = semgan.load("runs/e1")                    # a trained encoder (run folder, checkpoint or export)
    out = enc.encode(labels)                        # (N, H, W) class indices -> out.latents (N, ld), out.labels
    out = enc.encode(labels, refine=100)            # hybrid inversion: E's latents, then 100 Adam steps each
    maps = enc.generator.generate(out.latents)      # the generator E was trained for, with its classes

:func:`invert` is the refinement alone: Adam on each latent for the cross-entropy of G's softmax against the
map, from any start (E's latents, or random ones: the "pure optimisation" baseline). An encoder carries the
generator it was trained for and a fingerprint of its weights, so that latents are never decoded by another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from semgan.config import RunConfig
from semgan.errors import SemGANError
from semgan.generator import LabelMapGenerator
from semgan.labels import one_hot
from semgan.models import Generator
from semgan.models.encoder import MapEncoder

REFINE_LR = 0.05  # Adam's step on the latents (N(0, 1) entries): a few hundred steps move them by about one std


def weights_fingerprint(G: torch.nn.Module) -> str:
    """A short SHA-256 of a network's weights and buffers (names, shapes, dtypes and bytes), in name order."""
    h = hashlib.sha256()
    for name, t in sorted(G.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def reconstruction_loss(G: Generator, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-map cross-entropy of G(z)'s softmax against ``labels`` (B, H, W): (B,) means over pixels."""
    logits = G(z, activate=False).float()  # (B, K, H, W)
    return F.cross_entropy(logits, labels.long(), reduction="none").flatten(1).mean(1)


def invert(G: Generator, labels: torch.Tensor, z0: torch.Tensor, steps: int, *, lr: float = REFINE_LR,
           batch_size: int = 64) -> torch.Tensor:
    """Optimise each map's latent from ``z0`` (N, ld) for ``steps`` Adam steps on :func:`reconstruction_loss`.

    Maps are independent (each its own loss term; Adam is per coordinate), so batching changes nothing but speed,
    and the result is deterministic for given inputs. G's weights are left untouched. (N, H, W) labels on G's
    device -> (N, ld) latents.
    """
    if steps <= 0:
        return z0.clone()
    device = next(G.parameters()).device
    was_training, grads = G.training, [p.requires_grad for p in G.parameters()]
    G.eval().requires_grad_(False)
    out = []
    try:
        for lo in range(0, len(z0), batch_size):
            z = z0[lo:lo + batch_size].detach().clone().to(device).requires_grad_(True)
            target = labels[lo:lo + batch_size].to(device)
            opt = torch.optim.Adam([z], lr=lr)
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                reconstruction_loss(G, z, target).sum().backward()  # a sum: each map's gradient is its own
                opt.step()
            out.append(z.detach().cpu())
    finally:
        G.train(was_training)
        for p, g in zip(G.parameters(), grads, strict=True):
            p.requires_grad_(g)
    return torch.cat(out) if out else z0.clone()


@dataclass(frozen=True)
class Encoded:
    """Label maps encoded into a generator's latent space.

    Attributes:
        latents: (N, ld) float32.
        labels: (N, H, W) int64, the generator's maps of ``latents`` (the reconstructions).
        loss: (N,) the per-map cross-entropy of the reconstruction (lower is closer).
    """

    latents: torch.Tensor
    labels: torch.Tensor
    loss: torch.Tensor


class Encoder:
    """A trained semantic encoder with the generator it inverts (see the module docstring).

    Attributes:
        E: the encoder network, in eval mode.
        generator: the generator E was trained for (its classes, palette and sampling).
        fingerprint: of that generator's weights, as recorded when E was trained.
        step, cfg, source: the encoder's training step, config and model file.
    """

    def __init__(self, E: MapEncoder, generator: LabelMapGenerator, fingerprint: str, step: int, *,
                 cfg: RunConfig, source: Path | None = None) -> None:
        self.E, self.generator, self.fingerprint = E.eval(), generator, fingerprint
        self.step, self.cfg, self.source = step, cfg, source
        if weights_fingerprint(generator.G) != fingerprint:
            raise SemGANError(f"{source}: the generator stored with this encoder does not match the fingerprint "
                              f"{fingerprint} recorded in training; the file is damaged")

    def __repr__(self) -> str:
        R = self.resolution
        return (f"Encoder({len(self.class_names)} classes, {R}x{R}, ld {self.ld}, step {self.step}, "
                f"generator {self.fingerprint})")

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.generator.class_names

    @property
    def palette(self) -> torch.Tensor:
        return self.generator.palette

    @property
    def resolution(self) -> int:
        return self.generator.resolution

    @property
    def ld(self) -> int:
        return self.generator.G.cfg.ld

    def check_maps(self, labels: torch.Tensor, what: str = "labels") -> None:
        """Refuse maps of another size or with values outside the class set, naming them."""
        R, K = self.resolution, len(self.class_names)
        if labels.dim() != 3 or tuple(labels.shape[1:]) != (R, R):
            raise SemGANError(f"{what}: maps of shape {tuple(labels.shape[1:])}; the encoder {self.source} takes "
                              f"{R}x{R} maps")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= K):
            raise SemGANError(f"{what}: label values {int(labels.min())}..{int(labels.max())}; the encoder has {K} "
                              f"classes (0..{K - 1}: {', '.join(self.class_names)})")

    def check_generator(self, gen: LabelMapGenerator, what: str = "the generator") -> None:
        """Refuse a generator other than the one E was trained for (its weights' fingerprint differs)."""
        got = weights_fingerprint(gen.G)
        if got != self.fingerprint:
            raise SemGANError(f"{what} ({gen.source}) is not the generator this encoder was trained for: its weights' "
                              f"fingerprint is {got}, the encoder's generator's {self.fingerprint}")

    @torch.no_grad()
    def latents_of(self, labels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """E's latents of (N, H, W) maps, (N, ld), without refinement."""
        self.check_maps(labels)
        device = next(self.E.parameters()).device
        K = len(self.class_names)
        parts = [self.E(one_hot(labels[lo:lo + batch_size].long().to(device), K)).float().cpu()
                 for lo in range(0, len(labels), batch_size)]
        return torch.cat(parts) if parts else torch.zeros(0, self.ld)

    def encode(self, labels: torch.Tensor, *, refine: int = 0, lr: float = REFINE_LR,
               batch_size: int = 64) -> Encoded:
        """Encode (N, H, W) maps; with ``refine`` > 0, optimise each latent from E's start for that many steps."""
        if refine < 0:
            raise SemGANError(f"refine={refine}; expected a number of steps >= 0")
        z = self.latents_of(labels)
        if refine:
            device = next(self.generator.G.parameters()).device
            z = invert(self.generator.G, labels.long().to(device), z, refine, lr=lr, batch_size=batch_size)
        return self.decode(z, labels)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 64) -> Encoded:
        """The generator's maps of latents ``z`` (N, ld); with ``labels``, each map's loss against them."""
        G = self.generator.G
        device = next(G.parameters()).device
        out, losses = [], []
        for lo in range(0, len(z), batch_size):
            part = z[lo:lo + batch_size].to(device)
            logits = G(part, activate=False).float()
            out.append(logits.argmax(1).cpu())
            if labels is not None:
                target = labels[lo:lo + batch_size].long().to(device)
                losses.append(F.cross_entropy(logits, target, reduction="none").flatten(1).mean(1).cpu())
        R = self.resolution
        return Encoded(latents=z.cpu(), labels=torch.cat(out) if out else torch.zeros(0, R, R, dtype=torch.int64),
                       loss=torch.cat(losses) if losses else torch.full((len(z),), float("nan")))


def write_latents(path: str | Path, encoded: Encoded, names: Sequence[str], enc: Encoder) -> Path:
    """``path`` (.npz): ``latents`` (N, ld), ``names``, ``loss`` and the generator's fingerprint."""
    from semgan.io import atomic_write

    path = Path(path)
    atomic_write(path, lambda f: np.savez(f, latents=encoded.latents.numpy(), names=np.asarray(list(names)),
                                          loss=encoded.loss.numpy(), fingerprint=np.asarray(enc.fingerprint)))
    return path
