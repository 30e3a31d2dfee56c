"""pix2pix's networks (Isola et al. 2017), as in the reference PyTorch code: the U-Net generator and the 70x70
PatchGAN discriminator, with the reference's channel plan, skips, dropout, normalisation and initialisation.

U-Net: ``num_downs`` stride-2 4x4 convolutions down to a 1x1 bottleneck (7 for 128 px: ``unet_128``, 8 for
256 px: ``unet_256``), channels ngf, 2 ngf, 4 ngf, then 8 ngf; each level's output is concatenated to the
mirror level's input on the way up. Down = LeakyReLU(0.2) -> conv -> norm (no norm on the outermost and the
innermost level, no activation before the first conv); up = ReLU -> transposed conv -> norm, the outermost
ending in tanh; dropout 0.5 after the up path of the ``num_downs - 5`` middle 8 ngf levels. Convolutions have
no bias when a batch norm follows (the final transposed conv always has one).

PatchGAN (``n_layers=3``): C(ndf) without norm, stride 2 -> C(2 ndf) s2 -> C(4 ndf) s2 -> C(8 ndf) s1 -> C(1) s1,
4x4 kernels with padding 1, LeakyReLU 0.2; each output logit sees a 70x70 patch of the input, which is the label
map and the photo concatenated along channels. At ngf = ndf = 64 with colour input the reference has 41.83 M
(unet_128), 54.41 M (unet_256) and 2.77 M (PatchGAN) parameters; the tests pin these counts.
"""

from __future__ import annotations

import math
from typing import TypeVar

import torch
from torch import nn

from semgan.config import Pix2PixModelConfig
from semgan.errors import SemGANError

UNET_DOWNS = {"unet_128": 7, "unet_256": 8}
M = TypeVar("M", bound=nn.Module)


def _norm(channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels)


class UnetBlock(nn.Module):
    """One level of the U-Net: down, the inner levels, up, and the skip around them (except the outermost)."""

    def __init__(self, outer: int, inner: int, *, in_channels: int | None = None, sub: nn.Module | None = None,
                 outermost: bool = False, innermost: bool = False, dropout: bool = False, tanh: bool = True) -> None:
        super().__init__()
        self.outermost = outermost
        in_channels = outer if in_channels is None else in_channels
        down_conv = nn.Conv2d(in_channels, inner, 4, stride=2, padding=1, bias=False)
        if outermost:
            up_conv = nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1)
            layers: list[nn.Module] = [down_conv, *([sub] if sub else []), nn.ReLU(True), up_conv]
            if tanh:  # a photo in [-1, 1]; without: logits (a segmenter's)
                layers.append(nn.Tanh())
        elif innermost:
            up_conv = nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1, bias=False)
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True), up_conv, _norm(outer)]
        else:
            assert sub is not None
            up_conv = nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1, bias=False)
            layers = [nn.LeakyReLU(0.2, True), down_conv, _norm(inner), sub, nn.ReLU(True), up_conv, _norm(outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        # The level's first layer is an in-place LeakyReLU, so the skip carries LeakyReLU(x), exactly as in the
        # reference (whose torch.cat([x, self.model(x)]) sees x after the in-place activation).
        y = self.model(x)
        return torch.cat([x, y], 1)


class UnetGenerator(nn.Module):
    """(B, C_in, H, W) label map in [-1, 1] (colour) or one-hot -> (B, 3, H, W) photo in [-1, 1] (tanh).

    Args:
        in_channels: 3 for a colour-rendered label map (the reference), K for a one-hot one.
        out_channels: 3 (RGB photo).
        num_downs: 7 (unet_128) or 8 (unet_256): H = W = 2 ** num_downs.
        ngf: channels after the first conv (64 in the reference).
        dropout: the reference's dropout 0.5 in the middle levels.
        tanh: end in tanh (a photo); False leaves the last conv's output (a segmenter's K logits).
    """

    def __init__(self, in_channels: int, out_channels: int = 3, num_downs: int = 7, ngf: int = 64,
                 dropout: bool = True, tanh: bool = True) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs={num_downs}; the U-Net has at least 5 levels")
        self.in_channels, self.out_channels, self.num_downs = in_channels, out_channels, num_downs
        block = UnetBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetBlock(ngf * 8, ngf * 8, sub=block, dropout=dropout)
        block = UnetBlock(ngf * 4, ngf * 8, sub=block)
        block = UnetBlock(ngf * 2, ngf * 4, sub=block)
        block = UnetBlock(ngf, ngf * 2, sub=block)
        self.model = UnetBlock(out_channels, ngf, in_channels=in_channels, sub=block, outermost=True, tanh=tanh)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """(B, C_label + 3, H, W) label map and photo, concatenated -> (B, 1, H', W') logits, one per 70x70 patch
    (14 x 14 at 128 px, 30 x 30 at 256 px)."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=False), _norm(ndf * mult),
                       nn.LeakyReLU(0.2, True)]  # fmt: skip
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_weights(net: M, gain: float = 0.02) -> M:
    """The reference's ``init_type='normal'``: conv weights N(0, gain), batch-norm weights N(1, gain), biases 0."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def unet_depth(size: int) -> int:
    """U-Net levels for ``size`` px maps: down to a 1x1 bottleneck (7 = unet_128, 8 = unet_256)."""
    depth = int(math.log2(size)) if size > 0 else 0
    if size < 32 or 2**depth != size:
        raise SemGANError(f"pix2pix needs square maps whose side is a power of two of at least 32 (the U-Net halves "
                          f"it down to 1x1); got {size} px: set data.size, e.g. 128 (unet_128) or 256 (unet_256)")
    return depth


def build_networks(m: Pix2PixModelConfig, num_classes: int, size: int) -> tuple[UnetGenerator, PatchDiscriminator]:
    """G and D of a pix2pix config for ``num_classes`` classes at ``size`` px (reference initialisation)."""
    in_channels = 3 if m.input == "color" else num_classes
    G = UnetGenerator(in_channels, 3, num_downs=unet_depth(size), ngf=m.ngf, dropout=m.dropout)
    D = PatchDiscriminator(in_channels + 3, ndf=m.ndf, n_layers=m.d_layers)
    return init_weights(G), init_weights(D)
