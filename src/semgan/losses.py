"""Losses, as pure functions (paper, appendix B: D with binary cross-entropy, G with feature matching).

Every loss is computed in fp32 whatever the autocast dtype of the networks (the feature-matching differences
are tiny: ~1e-4 at the start of training, below bf16's resolution of their operands). Batch means go through
a :class:`~semgan.parallel.BatchSync`, so that with several ranks they are means over the global batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from semgan.parallel import LOCAL, BatchSync


def d_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator binary cross-entropy: real -> 1, fake -> 0, summed over the two halves (ashpy's min-max)."""
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def d_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The hinge loss of D (Lim and Ye 2017; Miyato et al. 2018): E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return F.relu(1 - real_logits.float()).mean() + F.relu(1 + fake_logits.float()).mean()


def g_hinge(fake_logits: torch.Tensor) -> torch.Tensor:
    """G's side of the hinge game: -E[D(G(z))]."""
    return -fake_logits.float().mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mescheder et al. 2018: E[|grad_x D(x)|^2] on reals, differentiable (``real`` must require grad).

    (B,) logits of (B, C, H, W) inputs -> scalar; multiply by gamma / 2.
    """
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real, create_graph=True)
    return grad.float().pow(2).sum(dim=(1, 2, 3)).mean()


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """Goodfellow et al.'s non-saturating generator loss, -log D(G(z)): the plain DCGAN alternative to
    feature matching (``model.g_loss=ns``)."""
    return F.softplus(-fake_logits.float()).mean()


def feature_matching(
    real_feats: list[torch.Tensor], fake_feats: list[torch.Tensor], layer: int = -1, sync: BatchSync = LOCAL
) -> torch.Tensor:
    """Salimans et al. 2016, the variant the paper cites: || E[f(x)] - E[f(G(z))] ||^2 on one D layer.

    The batch means of one intermediate layer's activations are compared (mean over the feature dimension
    rather than the sum; Adam is invariant to that constant factor). ``layer`` indexes the D blocks.
    """
    real_mean = sync.mean(real_feats[layer].float().flatten(1))  # (F,)
    fake_mean = sync.mean(fake_feats[layer].float().flatten(1))
    return (real_mean - fake_mean).pow(2).mean()


def feature_matching_all(
    real_feats: list[torch.Tensor], fake_feats: list[torch.Tensor], sync: BatchSync = LOCAL
) -> torch.Tensor:
    """Salimans-style batch-mean matching on every D layer, averaged: the coarse statistics of the first
    layers (how much of each class, where) are matched alongside the abstract ones of the last."""
    return torch.stack([feature_matching(real_feats, fake_feats, i, sync) for i in range(len(real_feats))]).mean()


def feature_matching_l1(real_feats: list[torch.Tensor], fake_feats: list[torch.Tensor]) -> torch.Tensor:
    """ashpy's ``FeatureMatchingLoss``: per-example L1 between real and fake activations, averaged over
    every D layer. Real and fake are paired by their position in the batch, as ashpy does."""
    losses = [(r.float() - f.float()).abs().mean() for r, f in zip(real_feats, fake_feats, strict=True)]
    return torch.stack(losses).mean()


PRESENCE_TEMPERATURE = 0.1  # of the soft max-pool: a blob that fills a pooling window reads as present (~1)
PRESENCE_POOL = 3  # a class counts as drawn where it fills a 3x3 window: single pixels cannot pass for a shape
PRIOR_MARGIN = 0.5  # the class prior acts once a class falls below half the data's share or presence rate


class _WindowMean(torch.autograd.Function):
    """``avg_pool2d(x, pool, stride=1)`` bit for bit, forward and backward, about 5x faster on a CPU (where the
    class prior spent half its time in avg_pool2d and its backward). ATen sums each window in raster order and
    then divides; its backward adds ``grad / pool^2`` into each input pixel from the windows covering it, in the
    outputs' raster order. Here the same sums come as shifted slices in the same orders (tests/test_robust.py
    holds them equal to avg_pool2d's bits)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, pool: int) -> torch.Tensor:
        ctx.pool, ctx.shape = pool, x.shape  # type: ignore[attr-defined]
        oh, ow = x.shape[-2] - pool + 1, x.shape[-1] - pool + 1
        acc = x[..., :oh, :ow].clone()
        for kh in range(pool):
            for kw in range(pool):
                if kh or kw:
                    acc += x[..., kh:kh + oh, kw:kw + ow]
        return acc / (pool * pool)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        pool, shape = ctx.pool, ctx.shape  # type: ignore[attr-defined]
        oh, ow = shape[-2] - pool + 1, shape[-1] - pool + 1
        share = grad / (pool * pool)
        grad_x = grad.new_zeros(shape)
        for kh in reversed(range(pool)):  # an input pixel's covering windows, in raster order of the outputs
            for kw in reversed(range(pool)):
                grad_x[..., kh:kh + oh, kw:kw + ow] += share
        return grad_x, None


def window_mean(x: torch.Tensor, pool: int) -> torch.Tensor:
    """The means of every ``pool`` x ``pool`` window (stride 1, no padding), as ``F.avg_pool2d`` computes them.
    (..., H, W) -> (..., H - pool + 1, W - pool + 1)."""
    return _WindowMean.apply(x, pool)


def log_soft_presence(log_probs: torch.Tensor, temperature: float = PRESENCE_TEMPERATURE,
                      pool: int = PRESENCE_POOL) -> torch.Tensor:
    """How much each map draws each class, as a log: a soft max-pool of its ``pool`` x ``pool`` window means.

    The window means are weighed by ``softmax(mean / temperature)``, so the value lies between the mean and the
    max window: ~1 for a class that fills a window confidently somewhere, ~0 for a lone pixel or a class
    drawn nowhere; its gradient reaches the most likely windows rather than one. Taken in log space (each map and
    class shifted by its own max), so that a class whose probabilities underflow still has a gradient.
    (B, K, H, W) log-probs -> (B, K).
    """
    top = log_probs.flatten(2).amax(dim=2).detach()[..., None, None]  # (B, K, 1, 1)
    window = window_mean((log_probs - top).exp(), pool)  # <= 1, and >= 1/pool^2 around the max
    lp = (window.clamp(min=torch.finfo(window.dtype).tiny).log() + top).flatten(2)  # (B, K, windows)
    return torch.logsumexp(lp + (lp.exp() / temperature).log_softmax(dim=2), dim=2)


def class_prior(logits: torch.Tensor, shares: torch.Tensor, presence: torch.Tensor, sync: BatchSync = LOCAL,
                margin: float = PRIOR_MARGIN, check: bool = True) -> torch.Tensor:
    """A floor under every class of a SemGAN generator's batch: 0 while each class keeps at least ``margin`` of
    the data's pixel share and presence rate, a log barrier below.

    Two differentiable statistics of the (global) batch's softmax, each against the training maps':

    - the expected class shares ``s_k = E[probs_k]`` against the pixel shares ``pi``;
    - the presence rates ``r_k = E_maps[soft presence]`` against ``rho``, the share of maps containing class k.

    Each adds ``target_k * max(0, log(margin * target_k) - log value_k)``: nothing while the class is drawn
    about as the data has it (healthy training is left to D), and a gradient ``-target_k / value_k`` that grows
    without bound as the class fades. Computed from log-probabilities (log-sum-exp means), so a class whose
    probabilities underflow to 0 keeps a gradient of order 1 on its logits. A class the data never has
    (pi_k = rho_k = 0) adds nothing. (b, K, H, W) logits of this rank's batch, (K,) shares and presence ->
    a scalar.

    The floor is first read without a graph: while every class is above it (healthy training, nearly every
    step) the result is a constant 0 and backward skips the prior (its cost: docs/benchmarks.md). The zero
    gradient it would have added changes no bit of the update. ``check=False`` skips that read: for a caller
    that knows the prior acted on the previous step, when it most likely acts again (the check would be wasted
    work, the prior's worst case); the value is the same either way.
    """
    if check and logits.requires_grad and torch.is_grad_enabled():
        with torch.no_grad():
            if _above_floor(logits, shares, presence, sync, margin):  # the same on every rank: global statistics
                return logits.new_zeros((), dtype=torch.float32)
    return _class_prior(logits, shares, presence, sync, margin)


def _above_floor(logits: torch.Tensor, shares: torch.Tensor, presence: torch.Tensor, sync: BatchSync,
                 margin: float, temperature: float = PRESENCE_TEMPERATURE, pool: int = PRESENCE_POOL) -> bool:
    """Whether every class keeps ``margin`` of its target share and presence rate: the prior's two statistics,
    the same quantities as :func:`_class_prior`'s, in probability space (no gradient is needed, so no log-space
    guard against underflow: a class whose probabilities underflow is below the floor either way). About half
    the passes over the batch of the log-space form; it runs on each step after one where the prior did not act."""
    # Equal to the log-space values up to float rounding, so the two can disagree only on a batch within
    # ~1e-7 of the floor; either way the step is deterministic.
    probs = logits.float().softmax(dim=1)  # (b, K, H, W)
    s = sync.gather(probs.mean(dim=(0, 2, 3))[None]).mean(dim=0)  # (K,) expected class shares
    window = window_mean(probs, pool).flatten(2)  # (b, K, windows)
    weight = (window / temperature).exp()  # <= e^(1/T): no overflow, window means lie in [0, 1]
    r = sync.gather((window * weight).sum(dim=2) / weight.sum(dim=2)).mean(dim=0)  # (K,) presence rates
    return bool(((s >= margin * shares) & (r >= margin * presence)).all())


def _class_prior(logits: torch.Tensor, shares: torch.Tensor, presence: torch.Tensor, sync: BatchSync,
                 margin: float) -> torch.Tensor:
    log_probs = logits.float().log_softmax(dim=1)  # (b, K, H, W)
    K = log_probs.shape[1]
    # (K,) log of the batch's expected class shares, then of its presence rates, over the global batch
    local = torch.logsumexp(log_probs.transpose(0, 1).reshape(K, -1), dim=1) - math.log(log_probs[:, 0].numel())
    log_s = torch.logsumexp(sync.gather(local[None]), dim=0) - math.log(sync.world)
    log_q = sync.gather(log_soft_presence(log_probs))  # (B, K)
    log_r = torch.logsumexp(log_q, dim=0) - math.log(log_q.shape[0])

    def deficit(target: torch.Tensor, log_value: torch.Tensor) -> torch.Tensor:
        floor = torch.log(margin * target.clamp(min=torch.finfo(target.dtype).tiny))
        return (target * (floor - log_value).clamp(min=0)).sum()

    return deficit(shares, log_s) + deficit(presence, log_r)
