"""The semantic encoder: a label map (one-hot, K channels) -> the latent a SemGAN generator draws it from.

::

    onehot (B, K, H, W) -> Conv(ks, stride 2) -> LeakyReLU                      (channels c)
      -> [Conv(ks, stride 2) -> BN -> LeakyReLU] x (log2(H / 4) - 1)          (channels double, capped)
      -> flatten (B, C * 4 * 4) -> Linear -> z (B, ld)

The discriminator's plan (DCGAN's encoder half) with batch norm: E regresses a latent rather than one logit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from semgan.config import EncoderModelConfig
from semgan.models.networks import num_doublings

ENCODER_INIT_RES = 4  # E's last feature map is 4 x 4, as the generator's first


class MapEncoder(nn.Module):
    """One-hot maps (B, K, H, W) -> latents (B, ld)."""

    def __init__(self, cfg: EncoderModelConfig, num_classes: int, resolution: int, ld: int) -> None:
        super().__init__()
        self.cfg, self.num_classes, self.resolution, self.ld = cfg, num_classes, resolution, ld
        n_down = num_doublings(resolution, ENCODER_INIT_RES)
        chans = [num_classes] + [min(cfg.channels << i, cfg.max_channels) for i in range(n_down)]
        pad = (cfg.ks - 1) // 2  # halves an even-sized input for odd and even kernels alike
        self.convs = nn.ModuleList(nn.Conv2d(c_in, c_out, cfg.ks, stride=2, padding=pad, bias=i == 0)
                                   for i, (c_in, c_out) in enumerate(zip(chans[:-1], chans[1:], strict=True)))
        self.norms = nn.ModuleList([nn.Identity()] + [nn.BatchNorm2d(c) for c in chans[2:]])
        self.fc = nn.Linear(chans[-1] * ENCODER_INIT_RES**2, ld)

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        x = onehot
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = F.leaky_relu(norm(conv(x)), 0.2)  # (B, C, h/2, w/2)
        return self.fc(x.flatten(1))  # (B, ld)
