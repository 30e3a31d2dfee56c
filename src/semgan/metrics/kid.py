"""KID, the kernel Inception distance (Binkowski et al. 2018), as torch-fidelity defines it.

Unbiased MMD^2 between FID Inception features (pool_3, 2048-d) under the cubic polynomial kernel
k(x, y) = (x . y / d + 1)^3, averaged over ``subsets`` random subsets of ``subset_size`` features from each set
(torch-fidelity: 100 subsets of 1000, or of the smaller set's size), drawn without replacement. Unlike FID it is
unbiased in N, so it suits a few hundred maps; report its mean and std over subsets (x1e3 is common).
"""

from __future__ import annotations

import torch

from semgan.errors import SemGANError

SUBSETS = 100
SUBSET_SIZE = 1000


def polynomial_mmd2(x: torch.Tensor, y: torch.Tensor, degree: int = 3, coef0: float = 1.0) -> float:
    """Unbiased MMD^2 of (m, d) samples ``x`` and ``y`` under k(a, b) = (a . b / d + coef0) ** degree (float64)."""
    x, y = x.double(), y.double()
    m, d = x.shape
    if y.shape != (m, d) or m < 2:
        raise SemGANError(f"MMD needs two equal-sized sets of at least 2 samples, got {tuple(x.shape)} and "
                          f"{tuple(y.shape)}")
    k_xx = (x @ x.t() / d + coef0) ** degree
    k_yy = (y @ y.t() / d + coef0) ** degree
    k_xy = (x @ y.t() / d + coef0) ** degree
    off_xx = k_xx.sum() - k_xx.diagonal().sum()
    off_yy = k_yy.sum() - k_yy.diagonal().sum()
    return float((off_xx + off_yy) / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kid(real_features: torch.Tensor, fake_features: torch.Tensor, *, generator: torch.Generator,
        subsets: int = SUBSETS, subset_size: int = SUBSET_SIZE) -> dict[str, float]:
    """KID between (N, d) and (M, d) features: ``{"kid": mean, "kid_std": std}`` over the subsets (std with
    ddof 0, as torch-fidelity). ``generator`` draws the subsets."""
    size = min(subset_size, real_features.shape[0], fake_features.shape[0])
    if size < 2:
        raise SemGANError(f"KID needs at least 2 images per set, got {real_features.shape[0]} and "
                          f"{fake_features.shape[0]}")
    values = []
    for _ in range(subsets):
        i = torch.randperm(real_features.shape[0], generator=generator)[:size]
        j = torch.randperm(fake_features.shape[0], generator=generator)[:size]
        values.append(polynomial_mmd2(real_features[i], fake_features[j]))
    t = torch.tensor(values, dtype=torch.float64)
    return {"kid": float(t.mean()), "kid_std": float(t.std(unbiased=False))}
