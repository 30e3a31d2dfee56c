"""Losses, as pure functions (paper, appendix B: D with binary cross-entropy, G with feature matching).

Every loss is computed in fp32 whatever the autocast dtype of the networks (the feature-matching differences
are tiny: ~1e-4 at the start of training, below bf16's resolution of their operands). Batch means go through
a :class:`~semgan.parallel.BatchSync`, so that with several ranks they are means over the global batch.
"""

from __future__ import annotations

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
    feature matching (``train.g_loss=ns``)."""
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
