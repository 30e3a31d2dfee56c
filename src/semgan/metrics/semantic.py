"""Label-map metrics that SWD, FID and MS-SSIM are blind to (metrics.md section 4).

- **label validity**: share of pixels whose colour lies within ``tolerance`` (Euclidean RGB distance) of a
  palette colour. Argmax -> palette renders are valid by construction; a baseline RGB GAN's raw output is not.
- **class frequency**: per-class pixel shares of both sets, their L1 distance, total variation (L1 / 2) and
  Jensen-Shannon divergence (base 2, so in [0, 1]). Catches a generator that over- or under-draws a class, which
  SWD misses (its per-set normalisation hides global colour statistics).
- **FSD** (Semantic Palette, Le Moing et al. 2021, ``tools/fsd/fsd_score.py``): the Fréchet distance between the
  Gaussians fitted to the per-image class-proportion vectors (N, K) of the two sets (mean, covariance ddof=1).
"""

from __future__ import annotations

import numpy as np
import torch

from semgan.errors import SemGANError
from semgan.labels import palette_distances
from semgan.metrics.checks import check_images
from semgan.metrics.fid import feature_statistics, frechet_distance

DEFAULT_TOLERANCE = 10.0  # RGB units; exact palette renders have distance 0, JPEG-ish noise stays within a few


def _check_labels(labels: torch.Tensor, num_classes: int, what: str) -> None:
    if labels.dim() != 3 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise SemGANError(
            f"{what} labels must be an (N, H, W) integer tensor, got {labels.dtype} {tuple(labels.shape)}"
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise SemGANError(
            f"{what} labels hold values in [{int(labels.min())}, {int(labels.max())}], "
            f"expected class indices in [0, {num_classes - 1}] for {num_classes} classes"
        )


def label_validity(
    images: torch.Tensor,
    palette: torch.Tensor | np.ndarray,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    batch_size: int = 64,
) -> float:
    """Share of pixels within ``tolerance`` (Euclidean, RGB units) of some palette colour.

    Args:
        images: (N, 3, H, W) uint8 images.
        palette: (K, 3) uint8 class colours.
        tolerance: largest RGB distance that still counts as on-palette.
        batch_size: images per (B, K, H, W) distance computation (bounds memory).

    Returns:
        A float in [0, 1].

    >>> pal = torch.tensor([[0, 0, 0], [255, 255, 255]], dtype=torch.uint8)
    >>> img = torch.tensor([[[[0, 255, 128, 5]]]], dtype=torch.uint8).expand(1, 3, 1, 4)
    >>> label_validity(img, pal)
    0.75
    """
    check_images(images, "label validity images", uint8=False)
    pal = torch.as_tensor(palette)
    if pal.dim() != 2 or pal.shape[1] != 3 or pal.shape[0] == 0:
        raise SemGANError(f"a palette must be (K, 3) RGB colours, got shape {tuple(pal.shape)}")
    valid = 0
    for lo in range(0, images.shape[0], batch_size):
        d2 = palette_distances(images[lo : lo + batch_size], pal)  # (B, K, H, W) squared distances
        # |x|^2 - 2 x.p + |p|^2 in float32 is exact for 0..255 integers (all terms < 2^24).
        valid += int((d2.min(dim=1).values <= tolerance * tolerance).sum())
    return valid / max(1, images.shape[0] * images.shape[2] * images.shape[3])


def class_histograms(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-image class proportions: (N, H, W) integer labels -> (N, K) float64, rows summing to 1."""
    _check_labels(labels, num_classes, "")
    N = labels.shape[0]
    flat = labels.reshape(N, -1).long()
    # One bincount over (image, class) pairs instead of N separate ones.
    offsets = torch.arange(N, device=labels.device).view(N, 1) * num_classes
    counts = torch.bincount((flat + offsets).reshape(-1), minlength=N * num_classes).view(N, num_classes)
    return counts.double() / max(1, flat.shape[1])


def class_shares(labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """(K,) float64 share of all pixels of the set that belong to each class."""
    _check_labels(labels, num_classes, "")
    counts = torch.bincount(labels.reshape(-1).long(), minlength=num_classes).double()
    return (counts / max(1, labels.numel())).cpu().numpy()


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits between two discrete distributions (0 log 0 = 0), in [0, 1].

    >>> round(js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])), 6)
    1.0
    """
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def class_frequency_distance(real_shares: np.ndarray, fake_shares: np.ndarray) -> dict[str, float]:
    """L1, total variation (L1 / 2) and JS divergence (bits) between two (K,) class-share vectors."""
    l1 = float(np.abs(np.asarray(real_shares) - np.asarray(fake_shares)).sum())
    return {"l1": l1, "tv": l1 / 2, "js": js_divergence(real_shares, fake_shares)}


def fsd(real_labels: torch.Tensor, fake_labels: torch.Tensor, num_classes: int) -> float:
    """Fréchet Semantic Distance: Fréchet distance between Gaussians of per-image class proportions (N, K).

    Each set needs at least 2 images (covariance with ddof=1).
    """
    for what, labels in (("real", real_labels), ("fake", fake_labels)):
        if labels.shape[0] < 2:
            raise SemGANError(f"FSD needs at least 2 {what} label maps, got {labels.shape[0]}")
    mu1, s1 = feature_statistics(class_histograms(real_labels, num_classes))
    mu2, s2 = feature_statistics(class_histograms(fake_labels, num_classes))
    return frechet_distance(mu1, s1, mu2, s2)


def semantic_metrics(
    real_labels: torch.Tensor,
    fake_labels: torch.Tensor,
    num_classes: int,
    *,
    real_images: torch.Tensor | None = None,
    fake_images: torch.Tensor | None = None,
    palette: torch.Tensor | np.ndarray | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict[str, object]:
    """All semantic metrics in one JSON-able dict.

    Args:
        real_labels: (N, H, W) integer labels of the real set.
        fake_labels: (M, H', W') integer labels of the generated set.
        num_classes: K.
        real_images: (N, 3, H, W) uint8 renders of the reals, for ``validity_real`` (needs ``palette``).
        fake_images: (M, 3, H', W') uint8 generated images, for ``validity_fake`` (needs ``palette``).
        palette: (K, 3) uint8 class colours.
        tolerance: RGB distance for label validity.

    Returns:
        ``{"num_classes", "class_share_real", "class_share_fake", "class_share_l1", "class_share_tv",
        "class_share_js", "fsd"}`` plus ``"validity_real"`` / ``"validity_fake"`` when the images are given.
    """
    _check_labels(real_labels, num_classes, "real")
    _check_labels(fake_labels, num_classes, "fake")
    share_real, share_fake = class_shares(real_labels, num_classes), class_shares(fake_labels, num_classes)
    dist = class_frequency_distance(share_real, share_fake)
    out: dict[str, object] = {
        "num_classes": num_classes,
        "class_share_real": [float(v) for v in share_real],
        "class_share_fake": [float(v) for v in share_fake],
        "class_share_l1": dist["l1"],
        "class_share_tv": dist["tv"],
        "class_share_js": dist["js"],
        "fsd": fsd(real_labels, fake_labels, num_classes),
    }
    for key, images in (("validity_real", real_images), ("validity_fake", fake_images)):
        if images is not None:
            if palette is None:
                raise SemGANError("label validity needs the palette the images are supposed to use")
            out[key] = label_validity(images, palette, tolerance=tolerance)
    return out
