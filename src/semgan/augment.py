"""Differentiable augmentation of D's inputs that keeps label maps label maps (DiffAugment, ADA).

D sees every real and every fake through the same random transforms, so it cannot memorise a small training
set (378 facades) and G still learns the un-augmented distribution: the transforms are applied to both sides
and G's gradient flows through them (Zhao et al. 2020, DiffAugment; Karras et al. 2020, ADA).

The transforms move whole pixel vectors and never mix them, so they treat a one-hot map, a softmax map and an
RGB image alike: augmenting a one-hot map gives the one-hot map of the augmented labels.

- ``flip``: mirror left-right (its own inverse);
- ``translation``: shift by up to 1/8 of the size in each direction, the border reflected (ADA's padding),
  so every pixel stays a valid label;
- ``cutout``: blank a square of half the size (DiffAugment), all channels 0: an "unknown" region, the same
  for reals and fakes.

:func:`blur` is not one of them: a fixed smoothing of both D inputs (``model.d_blur``), never random.

Each transform applies to each sample with probability ``p``; with ADA, ``p`` adapts during training so that
D's sign on reals stays near a target (:class:`AdaptiveP`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from semgan.labels import uint8_to_rgb
from semgan.parallel import LOCAL, BatchSync


def augment(x: torch.Tensor, ops: tuple[str, ...], p: float) -> torch.Tensor:
    """Apply each of ``ops`` to each sample of ``x`` (B, C, H, W) with probability ``p`` (torch's RNG)."""
    if p <= 0 or not ops:
        return x
    B, C, H, W = x.shape
    for op in ops:
        chosen = torch.rand(B, device=x.device) < p  # (B,)
        if op == "flip":
            x = torch.where(chosen.view(B, 1, 1, 1), x.flip(-1), x)
        elif op == "translation":
            x = _translate(x, chosen)
        elif op == "cutout":
            x = _cutout(x, chosen)
        else:
            raise ValueError(f"unknown augmentation {op!r}")
    return x


def _translate(x: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Integer shifts in [-H/8, H/8] x [-W/8, W/8] for the chosen samples, reflected at the border."""
    B, C, H, W = x.shape
    sy, sx = max(1, H // 8), max(1, W // 8)
    dy = torch.randint(-sy, sy + 1, (B,), device=x.device) * chosen
    dx = torch.randint(-sx, sx + 1, (B,), device=x.device) * chosen
    padded = F.pad(x, (sx, sx, sy, sy), mode="reflect")  # (B, C, H + 2sy, W + 2sx)
    rows = (torch.arange(H, device=x.device).view(1, H) + sy - dy.view(B, 1)).view(B, 1, H, 1)
    cols = (torch.arange(W, device=x.device).view(1, W) + sx - dx.view(B, 1)).view(B, 1, 1, W)
    Hp, Wp = H + 2 * sy, W + 2 * sx
    flat = (rows * Wp + cols).expand(B, C, H, W).reshape(B, C, H * W)  # (B, C, H*W) positions in the padded map
    return padded.reshape(B, C, Hp * Wp).gather(2, flat).view(B, C, H, W)


def _cutout(x: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Zero a square of half the size at a random position (it may leave the map) for the chosen samples."""
    B, C, H, W = x.shape
    h, w = max(1, H // 2), max(1, W // 2)
    cy = torch.randint(0, H + 1 - h % 2, (B, 1, 1), device=x.device)
    cx = torch.randint(0, W + 1 - w % 2, (B, 1, 1), device=x.device)
    ys = torch.arange(H, device=x.device).view(1, H, 1)
    xs = torch.arange(W, device=x.device).view(1, 1, W)
    inside = ((ys - cy).abs() <= h // 2) & ((xs - cx).abs() <= w // 2) & chosen.view(B, 1, 1)  # (B, H, W)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A fixed Gaussian blur of ``x`` (B, C, H, W), std ``sigma`` px, border replicated; 0 = identity.

    Unlike the transforms above it mixes neighbouring pixel vectors, but only convexly, so a one-hot or a
    softmax map stays a distribution over classes at every pixel. Applied alike to reals and fakes, it softens
    the edges of one-hot reals as a softmax's are, and hides isolated pixels from D.
    """
    if sigma <= 0:
        return x
    r = max(1, math.ceil(2 * sigma))
    taps = torch.exp(-0.5 * (torch.arange(-r, r + 1, device=x.device, dtype=torch.float32) / sigma) ** 2)
    taps = (taps / taps.sum()).to(x.dtype)
    C = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, taps.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)  # rows, then columns: separable
    return F.conv2d(x, taps.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


class AdaptiveP:
    """ADA's augmentation probability: every ``interval`` steps, move ``p`` towards keeping E[sign D(real)]
    at ``target``, by ``batch * interval / speed_images`` per adjustment (p goes from 0 to 1 in
    ``speed_images`` images at the fastest).
    """

    def __init__(self, target: float, speed_images: int, batch: int, interval: int = 4, p: float = 0.0) -> None:
        self.target, self.speed_images, self.batch, self.interval = target, speed_images, batch, interval
        self.p = p
        self.signs: list[torch.Tensor] = []  # E[sign D(real)] per step since the last adjustment (on device)

    def observe(self, real_logits: torch.Tensor) -> None:
        self.signs.append(torch.sign(real_logits.detach().float()).mean())

    def due(self, step: int) -> bool:
        return (step + 1) % self.interval == 0 and bool(self.signs)

    def adjust(self, r_t: float) -> None:
        """Move ``p`` after an interval whose mean sign over every rank was ``r_t``."""
        step = self.batch * self.interval / self.speed_images
        self.p = min(max(self.p + (step if r_t > self.target else -step), 0.0), 1.0)
        self.signs.clear()

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p, "signs": [float(s) for s in self.signs]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p = float(state["p"])
        self.signs = [torch.tensor(s) for s in state["signs"]]


def paired_jitter(labels: torch.Tensor, photos: torch.Tensor, size: int, offsets: torch.Tensor, flips: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """pix2pix's random jitter of (map, photo) pairs, both alike: resize up to ``size`` (maps by nearest neighbour,
    photos bicubic), crop back at ``offsets`` (b, 2) (y, x), and mirror where ``flips`` (b,) is true.
    (b, H, W) uint8 labels and (b, 3, H, W) photos in [-1, 1] -> the same shapes."""
    H, W = labels.shape[1:]
    if size > H:  # the reference's load_size -> crop_size
        up = F.interpolate(labels[:, None].float(), size=(size, size), mode="nearest-exact")
        labels = up[:, 0].to(torch.uint8)
        photos = F.interpolate(photos, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
        labels = torch.stack([lab[y:y + H, x:x + W] for lab, (y, x) in zip(labels, offsets.tolist(), strict=True)])
        photos = torch.stack([p[:, y:y + H, x:x + W] for p, (y, x) in zip(photos, offsets.tolist(), strict=True)])
    flip = flips.to(labels.device)
    labels = torch.where(flip[:, None, None], labels.flip(-1), labels)
    photos = torch.where(flip[:, None, None, None], photos.flip(-1), photos)
    return labels, photos


def jittered_pairs(labels: torch.Tensor, photos: torch.Tensor, idx: torch.Tensor, jitter: float,
                   generator: torch.Generator, sync: BatchSync = LOCAL) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's share of a batch of (map, photo) pairs, jittered alike (:func:`paired_jitter`; pix2pix and the
    segmenter). The crops and flips are drawn from ``generator`` for the global batch on every rank and shared out
    like its indices ``idx`` (B,), so a run's bits do not depend on the number of ranks. (N, H, W) uint8 labels
    and (N, 3, H, W) uint8 photos on one device, ``jitter`` the resize factor before the crop -> (b, H, W) uint8
    labels and (b, 3, H, W) photos in [-1, 1]."""
    B, H = len(idx), labels.shape[1]
    size = round(H * jitter)
    offsets = torch.randint(0, size - H + 1, (B, 2), generator=generator)
    flips = torch.rand(B, generator=generator) < 0.5
    idx, offsets, flips = sync.shard(idx).to(labels.device), sync.shard(offsets), sync.shard(flips)
    return paired_jitter(labels.index_select(0, idx), uint8_to_rgb(photos.index_select(0, idx)), size, offsets,
                         flips)
