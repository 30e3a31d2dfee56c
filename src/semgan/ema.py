"""The exponential moving average of a network's weights (StyleGAN2-ADA's ``G_ema``), for any family.

The average is what samples, is scored and picks the best checkpoint: it smooths the last steps' noise away
from the weights at no training cost. Its half-life is counted in images, as StyleGAN2-ADA does, so that it
means the same at any batch size, and ramped up early on (at most ``rampup`` of the images seen so far), so
that the random initial weights are forgotten quickly.
"""

from __future__ import annotations

import copy
from typing import Any, Generic, TypeVar

import torch
from torch import nn

N = TypeVar("N", bound=nn.Module)


class EMA(Generic[N]):
    """A frozen copy of ``net`` (``module``) that follows its weights: ``module <- beta module + (1 - beta) net``.

    Args:
        net: the network being trained.
        half_life: in images (StyleGAN2: 10,000).
        rampup: the half-life is at most this share of the images seen so far; 0 = none.
        batch: images per step.
    """

    def __init__(self, net: N, half_life: float, rampup: float, batch: int) -> None:
        self.module: N = copy.deepcopy(net).eval().requires_grad_(False)
        self.half_life, self.rampup, self.batch = half_life, rampup, batch

    def beta(self, step: int) -> float:
        """The weight the average keeps at step ``step`` (0-based)."""
        half_life = self.half_life
        if self.rampup > 0:
            half_life = min(half_life, self.rampup * (step + 1) * self.batch)
        return 0.5 ** (self.batch / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, net: N, step: int) -> None:
        """Move the average towards ``net``'s weights; its buffers (batch-norm statistics) are copied as they are."""
        ema_params: list[torch.Tensor] = list(self.module.parameters())
        params: list[torch.Tensor] = list(net.parameters())
        torch._foreach_lerp_(ema_params, params, 1.0 - self.beta(step))
        for b_ema, b in zip(self.module.buffers(), net.buffers(), strict=True):
            b_ema.copy_(b)


def for_use(ckpt: dict[str, Any], name: str) -> Any:
    """A network's weights for use from a checkpoint: ``<name>_ema``, the moving average, when the run kept one."""
    return ckpt[f"{name}_ema"] if f"{name}_ema" in ckpt else ckpt.get(name)
