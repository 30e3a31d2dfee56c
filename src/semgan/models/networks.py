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


def num_doublings(resolution: int, init_res: int) -> int:
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
        n_up = num_doublings(resolution, cfg.init_res)
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
                nn.LeakyReLU(0.2, inplace=True),  # on BN's output, which its backward does not need
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
        x = F.leaky_relu(self.stem_norm(x), 0.2, inplace=True)
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
        n_down = num_doublings(resolution, cfg.init_res)
        chans = [in_channels] + [min(cfg.d_channels << i, cfg.d_max_channels) for i in range(n_down)]
        c_in_last = [0] * (n_down - 1) + [1 if cfg.d_mbstd else 0]  # the minibatch-stddev channel
        # padding (ks - 1) // 2 halves an even-sized input for odd and even kernels alike.
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in + extra, c_out, cfg.ks, stride=2, padding=(cfg.ks - 1) // 2)
            for c_in, c_out, extra in zip(chans[:-1], chans[1:], c_in_last, strict=True)
        )
        self.dropout: nn.Module = nn.Identity()
        if cfg.d_dropout > 0:
            self.dropout = HashDropout(cfg.d_dropout) if cfg.d_dropout_rng == "hash" else nn.Dropout(cfg.d_dropout)
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
            x = F.leaky_relu(conv(x), 0.2, inplace=True)  # (B, C, h/2, w/2); in place: one tensor less
            features.append(x)  # before dropout: feature matching compares clean activations
            x = self.dropout(x, self.sync) if isinstance(self.dropout, HashDropout) else self.dropout(x)
        logit = self.fc(x.flatten(1)).squeeze(1)  # (B,)
        return (logit, features) if return_features else logit


def _dense(x: torch.Tensor) -> bool:
    return x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)


def _lowbias32_(h: torch.Tensor, tmp: torch.Tensor) -> torch.Tensor:
    """Chris Wellons' lowbias32 integer hash, in place on an int32 tensor ``h`` (``tmp``: scratch of its size).

    uint32 arithmetic on int32: products wrap, and masking makes the shifts logical. In place because these
    ops are memory-bound: a fresh 2 MB tensor per op costs more than the op.
    """
    for shift, mult in ((16, 0x7FEB352D), (15, 0x846CA68B - (1 << 32)), (16, 1)):  # constants as signed int32
        torch.bitwise_right_shift(h, shift, out=tmp)
        h ^= tmp.bitwise_and_((1 << (32 - shift)) - 1)
        if mult != 1:
            h *= mult
    return h


class HashDropout(nn.Module):
    """Dropout whose masks come from a counter-based hash rather than torch's random generator.

    On a CPU, torch draws dropout masks one element at a time from a Mersenne Twister (MKL's parallel
    Bernoulli is used on Intel CPUs only), a large share of a ``shapes-cpu`` step on some CPUs
    (docs/benchmarks.md). Here element ``i`` of call ``c`` is kept when ``lowbias32(i + key(seed, c))`` clears a
    threshold: a few in-place integer operations over the whole tensor, and, with ``i`` the element's position in the
    *global* batch, the same masks on N ranks as on one. A mask depends on the memory format (positions are
    physical), not on the device. The call counter and the seed are buffers: a resumed run continues the same
    masks.
    """

    seed: torch.Tensor
    calls: torch.Tensor

    def __init__(self, p: float) -> None:
        super().__init__()
        # Drop where the hash, uniform over the int32 range, falls below round(p * 2**32) - 2**31.
        drop = round(p * 2**32)
        self.threshold = drop - 2**31
        self.scale = 2**32 / (2**32 - drop)
        # The seed comes from torch's RNG at construction, so it follows train.seed like the weights do.
        self.register_buffer("seed", torch.randint(0, 2**31 - 1, (), dtype=torch.int64))
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))
        self._scratch: torch.Tensor | None = None  # (3, n) int32: element indices, hash, shift scratch

    # Eager even inside a compiled D: a buffer that a forward pass both reads and bumps cannot be saved for a
    # compiled backward, and the in-place hash is already memory-bound.
    @torch.compiler.disable
    def forward(self, x: torch.Tensor, sync: BatchSync = LOCAL) -> torch.Tensor:
        if not self.training or self.threshold == -(2**31):
            return x
        n = x.numel()
        key = (self.seed * 0x9E3779B1 + self.calls * 0x85EBCA77).remainder(2**32).sub(2**31).to(torch.int32)
        self.calls.add_(1)
        key = key + sync.rank * n  # + rank * n: each element's index in the global batch
        if self._scratch is None or self._scratch.shape[1] < n or self._scratch.device != x.device:
            self._scratch = torch.empty(3, n, dtype=torch.int32, device=x.device)
            torch.arange(n, dtype=torch.int32, out=self._scratch[0])
        index, h, tmp = self._scratch[0, :n], self._scratch[1, :n], self._scratch[2, :n]
        _lowbias32_(torch.add(index, key, out=h), tmp)
        keep = h.ge(self.threshold)  # (n,) in x's memory order, so the product needs no reordering
        keep = keep.as_strided(x.shape, x.stride()) if _dense(x) else keep.view(x.shape)
        return (x * keep).mul_(self.scale)  # one new tensor: memory traffic, not arithmetic, is the cost


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
