"""DCGAN-style networks after ashpy's Decoder/Encoder, the authors' own TF2 building blocks.

Generator (paper Fig. 1)::

    z (B, ld) -> Linear -> (B, C0, r0, r0) -> BN -> LeakyReLU
      -> [ConvTranspose(ks, stride 2) -> BN -> LeakyReLU] x log2(res / r0)   (channels halve, floored)
      -> Conv(ks, stride 1) -> head
    head "semgan": softmax over K classes -> probs (B, K, H, W)
    head "gan":    tanh over 3 channels   -> rgb   (B, 3, H, W) in [-1, 1]

Discriminator (paper Fig. 2), no normalisation::

    x (B, K or 3, H, W) -> [Conv(ks, stride 2) -> LeakyReLU -> Dropout] x log2(res / r0)
      (channels double, capped) -> flatten -> Linear -> logit (B,)

The two modes differ only in the generator's head and the discriminator's input channels, as in the paper.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from semgan.config import SemGANModelConfig
from semgan.errors import SemGANError
from semgan.parallel import LOCAL, BatchSync


def _num_doublings(resolution: int, init_res: int) -> int:
    n = math.log2(resolution / init_res) if resolution >= init_res else -1.0
    if n < 1 or n != int(n):
        raise SemGANError(
            f"resolution {resolution} must be init_res ({init_res}) times a power of two (at least 2x), "
            "e.g. 64 or 128"
        )
    return int(n)


class Generator(nn.Module):
    """Latent (B, ld) -> probs (B, K, H, W) for ``mode="semgan"`` or rgb (B, 3, H, W) for ``mode="gan"``."""

    def __init__(self, cfg: SemGANModelConfig, num_classes: int, resolution: int) -> None:
        super().__init__()
        self.cfg, self.num_classes, self.resolution = cfg, num_classes, resolution
        self.out_channels = num_classes if cfg.mode == "semgan" else 3
        n_up = _num_doublings(resolution, cfg.init_res)
        chans = [max(cfg.g_channels >> i, cfg.g_min_channels) for i in range(n_up + 1)]
        r0, ks = cfg.init_res, cfg.ks
        self.stem = nn.Linear(cfg.ld, chans[0] * r0 * r0, bias=False)
        self.stem_norm = nn.BatchNorm2d(chans[0])
        # "same" transposed conv at stride 2: out = 2 * in  <=>  2 * padding - output_padding = ks - 2.
        pad, out_pad = (ks - 1) // 2, ks % 2
        self.ups = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(c_in, c_out, ks, stride=2, padding=pad, output_padding=out_pad, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2),
            )
            for c_in, c_out in zip(chans[:-1], chans[1:], strict=True)
        )
        # "same" padding, explicit so that even kernels pad (ks//2 - 1, ks//2) without a warning or a copy.
        self._out_pad = ((ks - 1) // 2, ks // 2, (ks - 1) // 2, ks // 2)
        self.to_out = nn.Conv2d(chans[-1], self.out_channels, ks)

    def forward(self, z: torch.Tensor, activate: bool = True) -> torch.Tensor:
        """Latents (B, ld) -> probs (B, K, H, W) or rgb (B, 3, H, W); ``activate=False``: the logits before the
        head (for straight-through Gumbel fakes), through ``forward`` so that wrappers (compile) see the call."""
        B = z.shape[0]
        r0 = self.cfg.init_res
        x = self.stem(z).view(B, -1, r0, r0)  # (B, C0, r0, r0)
        x = F.leaky_relu(self.stem_norm(x), 0.2)
        for up in self.ups:
            x = up(x)  # (B, C, 2h, 2w)
        logits = self.to_out(F.pad(x, self._out_pad))  # (B, K or 3, H, W)
        if not activate:
            return logits
        return logits.softmax(dim=1) if self.cfg.mode == "semgan" else torch.tanh(logits)


class Discriminator(nn.Module):
    """(B, C, H, W) maps -> (B,) real/fake logits; ``return_features`` also gives every block's activations.

    ``sync`` decides over which batch the minibatch stddev is taken: this process's, or (set by the training
    engine under torchrun) the global batch of every rank.
    """

    sync: BatchSync = LOCAL

    def __init__(self, cfg: SemGANModelConfig, in_channels: int, resolution: int) -> None:
        super().__init__()
        self.cfg, self.in_channels, self.resolution = cfg, in_channels, resolution
        n_down = _num_doublings(resolution, cfg.init_res)
        chans = [in_channels] + [min(cfg.d_channels << i, cfg.d_max_channels) for i in range(n_down)]
        c_in_last = [0] * (n_down - 1) + [1 if cfg.d_mbstd else 0]  # the minibatch-stddev channel
        # padding (ks - 1) // 2 halves an even-sized input for odd and even kernels alike.
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in + extra, c_out, cfg.ks, stride=2, padding=(cfg.ks - 1) // 2)
            for c_in, c_out, extra in zip(chans[:-1], chans[1:], c_in_last, strict=True)
        )
        self.dropout = nn.Dropout(cfg.d_dropout) if cfg.d_dropout > 0 else nn.Identity()
        self.fc = nn.Linear(chans[-1] * cfg.init_res * cfg.init_res, 1)
        if cfg.d_norm == "spectral":
            for conv in self.convs:
                spectral_norm(conv)
            spectral_norm(self.fc)

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for i, conv in enumerate(self.convs):
            if self.cfg.d_mbstd and i == len(self.convs) - 1:
                x = minibatch_stddev(x, self.cfg.d_mbstd, self.sync)
            x = F.leaky_relu(conv(x), 0.2)  # (B, C, h/2, w/2)
            features.append(x)  # before dropout: feature matching compares clean activations
            x = self.dropout(x)
        logit = self.fc(x.flatten(1)).squeeze(1)  # (B,)
        return (logit, features) if return_features else logit


def minibatch_stddev(x: torch.Tensor, group: int, sync: BatchSync = LOCAL) -> torch.Tensor:
    """ProGAN's minibatch standard deviation: (b, C, H, W) -> (b, C + 1, H, W).

    The extra channel holds, for each group of ``group`` samples, the mean over features of their standard
    deviation: a collapsed batch has none, so D can see the missing variety and G is pushed to add it. The
    groups are formed over the global batch (``sync``), so N ranks see the groups of one process. Computed in
    fp32: the ``+ 1e-8`` would vanish in half precision.
    """
    local = x
    x = sync.gather(x.float())  # (B, C, H, W)
    B, C, H, W = x.shape
    G = min(group, B)
    if B % G:
        raise SemGANError(f"batch {B} is not a multiple of the minibatch-stddev group {G}")
    y = x.reshape(G, B // G, C, H, W)  # (G, B/G, C, H, W): sample i sits in group i % (B/G)
    y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B/G,)
    y = sync.own(y.repeat(G).view(B, 1, 1, 1))  # (b, 1, 1, 1)
    return torch.cat([local, y.to(local.dtype).expand(-1, 1, H, W)], dim=1)


def build_models(cfg: SemGANModelConfig, num_classes: int, resolution: int) -> tuple[Generator, Discriminator]:
    """The generator and discriminator of one mode; D's input has K channels (SemGAN) or 3 (baseline)."""
    if cfg.mode == "semgan" and num_classes < 2:
        raise SemGANError(f"SemGAN needs at least 2 classes, got K={num_classes}")
    G = Generator(cfg, num_classes, resolution)
    D = Discriminator(cfg, G.out_channels, resolution)
    return G, D
