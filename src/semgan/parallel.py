"""Batch statistics across data-parallel ranks: what makes N processes compute one process's update.

Under ``torchrun`` every rank holds ``batch / N`` samples of the global batch, rank-major (rank r holds rows
``r * b .. (r + 1) * b - 1``). A loss that is a mean over samples needs nothing but averaged gradients (the
training engine averages every gradient over ranks). A statistic *of the batch* does: feature-matching
means, minibatch stddev and batch norm only see the global batch if they are computed across ranks.

The gradient rule. The global objective is the mean of the ranks' losses and the engine divides the summed
gradients by N, so a rank must backpropagate the sum over ranks of the gradients that reach its own samples:

- a mean over ranks, ``s = mean_r(x_r)``, has the backward ``grad x_r = mean_r'(grad s_r')``, the same
  all-reduce-mean as the forward (:meth:`BatchSync.mean`);
- a gather of every rank's rows has the backward ``grad x_r = (sum_r' grad X_r')[own rows]``
  (:meth:`BatchSync.gather`).

With one process (:data:`LOCAL`) every method is the plain local operation, so single-process numerics are
untouched. Collectives in a forward pass must run on every rank in the same order; they do, because every
rank runs the same step.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn


class _AllReduceMean(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Any, world: int) -> torch.Tensor:
        ctx.group, ctx.world = group, world
        y = x.detach().clone()
        dist.all_reduce(y, group=group)
        return y.div_(world)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        g = grad.detach().clone()
        dist.all_reduce(g, group=ctx.group)
        return g.div_(ctx.world), None, None


class _GatherBatch(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Any, world: int, rank: int) -> torch.Tensor:
        ctx.group, ctx.world, ctx.rank = group, world, rank
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.detach().contiguous(), group=group)
        return torch.cat(parts)  # (N * b, ...): the global batch in rank order

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        g = grad.detach().contiguous().clone()
        dist.all_reduce(g, group=ctx.group)
        return g.chunk(ctx.world)[ctx.rank], None, None, None


class BatchSync:
    """Batch statistics over the global batch of ``world`` ranks (or over the local batch when ``world == 1``).

    Args:
        world: number of ranks.
        rank: this process's rank.
        group: the process group of the ranks (None = the default group).
    """

    def __init__(self, world: int = 1, rank: int = 0, group: Any = None) -> None:
        self.world, self.rank, self.group = world, rank, group

    @property
    def active(self) -> bool:
        return self.world > 1

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over dim 0 of the global batch: (b, ...) -> (...) (equal local batch sizes)."""
        local = x.mean(0)
        return _AllReduceMean.apply(local, self.group, self.world) if self.active else local

    def mean_over_ranks(self, x: torch.Tensor) -> torch.Tensor:
        """The elementwise mean of ``x`` over ranks (differentiable)."""
        return _AllReduceMean.apply(x, self.group, self.world) if self.active else x

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Every rank's rows, in rank order: (b, ...) -> (world * b, ...) (differentiable)."""
        return _GatherBatch.apply(x, self.group, self.world, self.rank) if self.active else x

    def own(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch: (world * b, ...) -> (b, ...)."""
        return x.chunk(self.world)[self.rank] if self.active else x

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's share of a global batch drawn identically on every rank (indices, latents)."""
        return self.own(x)


LOCAL = BatchSync()


def average_gradients(params: list[torch.Tensor], group: Any = None) -> None:
    """Average ``.grad`` over ranks in one all-reduce (flattened), as StyleGAN2-ADA does for its GANs.

    Every rank ends with the same gradient, so identical optimizers keep identical weights without the DDP
    wrapper, whose hooks assume one forward and one backward per step (a GAN step has several of each).
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, group=group)
    flat.div_(dist.get_world_size(group))
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d over the global batch, on any backend (torch's ``SyncBatchNorm`` needs CUDA).

    Same parameters and buffers as :class:`torch.nn.BatchNorm2d`, so checkpoints move between the two. The
    statistics are computed in fp32 with one all-reduce of (mean, mean of squares).
    """

    sync: BatchSync = LOCAL

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.sync.active):
            return super().forward(x)
        B, C, H, W = x.shape
        xf = x.float()
        local = torch.cat([xf.mean((0, 2, 3)), (xf * xf).mean((0, 2, 3))])  # (2C,)
        mean, sq = self.sync.mean_over_ranks(local).chunk(2)  # (C,), (C,)
        var = (sq - mean * mean).clamp_min(0)  # biased, as batch norm normalises with
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            n = B * H * W * self.sync.world
            with torch.no_grad():
                assert self.num_batches_tracked is not None
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked.item())
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * (n / max(n - 1, 1)), m)
        y = (xf - mean.view(1, C, 1, 1)) * torch.rsqrt(var + self.eps).view(1, C, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, C, 1, 1) + self.bias.view(1, C, 1, 1)
        return y.to(x.dtype)


def sync_batchnorm(module: nn.Module, sync: BatchSync) -> nn.Module:
    """Replace every BatchNorm2d inside ``module`` by a :class:`SyncBatchNorm2d` over ``sync`` (same values).

    Call it before an optimizer holds the parameters: the new layers have new parameter tensors.
    """
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            new = SyncBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                  child.track_running_stats)
            new.load_state_dict(child.state_dict())
            new.sync = sync
            setattr(module, name, new.to(next(child.buffers(), torch.empty(0)).device))
        else:
            sync_batchnorm(child, sync)
    return module
