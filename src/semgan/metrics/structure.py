"""Structure metrics: how label maps are put together, which pixel statistics do not see.

SWD, FID and class shares score a map of scattered specks like a map of clean objects if the colours and
local textures match. Pixel-level exactness is SemGAN's whole point, so these count the pieces: per class,
the connected components of every map (4-connectivity, ``scipy.ndimage.label``'s default), and compare
their distribution with the reals'.

- ``count_tv``: per class, the total-variation distance between the histograms of components per map
  (0, 1, 2, 3, 4, 5 or more) of reals and fakes; ``count_tv_mean`` averages it over the classes the reals use.
- ``fragments``: the share of maps holding a component smaller than ``min_size`` pixels (specks), for fakes
  and for reals (``fragments_real``): a generator should not draw more of them than the data has.
- ``one_per_class``: the share of maps with exactly one component in every class that has exactly one in at
  least 90% of the real maps (``one_per_class_classes``; on Colored Shapes: circle, rectangle, square). Absent
  where no class qualifies (facades, streets).
- ``presence``: per class, the share of maps that contain it at all, reals and fakes: a class a generator
  never draws shows here even when its pixel share is small; ``presence_min`` is the rarest class's share
  (over the classes the reals use).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from semgan.errors import SemGANError

MAX_COUNT = 5  # the count histogram's last bin holds 5 or more components
ONE_PER_CLASS_SHARE = 0.9  # a class is "one per map" when at least this share of real maps has exactly one
DEFAULT_MIN_SIZE = 5  # pixels; smaller components are fragments
LOST_REAL_SHARE = 0.1  # a class the reals draw in at least this share of maps ...
LOST_FAKE_SHARE = 0.02  # ... is lost when the samples draw it in fewer than this share


def component_stats(labels: torch.Tensor, num_classes: int, min_size: int = DEFAULT_MIN_SIZE
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per map and class: the number of 4-connected components and whether one is smaller than ``min_size``.

    Args:
        labels: (N, H, W) integer class maps.

    Returns:
        counts (N, K) int64 and has_fragment (N, K) bool.
    """
    from scipy import ndimage

    maps = labels.detach().cpu().numpy()
    N = maps.shape[0]
    # 4-connectivity within a map, none across maps: one C call labels a whole stack.
    cross = np.zeros((3, 3, 3), dtype=bool)
    cross[1] = ndimage.generate_binary_structure(2, 1)
    counts = np.zeros((N, num_classes), dtype=np.int64)
    fragment = np.zeros((N, num_classes), dtype=bool)
    for k in range(num_classes):
        comp, n = ndimage.label(maps == k, structure=cross)  # (N, H, W), ids 1..n
        if n == 0:
            continue
        flat = comp.reshape(N, -1)
        first = np.zeros(n + 1, dtype=np.int64)  # the map of each component
        rows = np.nonzero(flat)
        first[flat[rows]] = rows[0]
        sizes = np.bincount(comp.ravel(), minlength=n + 1)
        counts[:, k] = np.bincount(first[1:], minlength=N)
        small = np.nonzero(sizes[1:] < min_size)[0] + 1
        fragment[np.unique(first[small]), k] = True
    return torch.from_numpy(counts), torch.from_numpy(fragment)


def _count_histogram(counts: torch.Tensor) -> torch.Tensor:
    """(N, K) counts -> (K, MAX_COUNT + 1) share of maps with 0, 1, ..., MAX_COUNT or more components."""
    bins = counts.clamp(max=MAX_COUNT)
    hist = torch.stack([(bins == c).double().mean(0) for c in range(MAX_COUNT + 1)], dim=1)
    return hist


def structure_metrics(real_labels: torch.Tensor, fake_labels: torch.Tensor, num_classes: int, *,
                      min_size: int = DEFAULT_MIN_SIZE) -> dict[str, Any]:
    """Compare the connected components of real and generated label maps (see the module docstring).

    Args:
        real_labels: (N, H, W) integer class maps.
        fake_labels: (M, H, W) integer class maps.
        num_classes: K.
        min_size: components smaller than this many pixels are fragments.

    Returns:
        A JSON-able dict: ``count_tv`` (K,), ``count_tv_mean``, ``fragments``, ``fragments_real``,
        ``presence`` and ``presence_real`` (K,), ``presence_min`` and ``presence_min_real``, and when a class
        qualifies ``one_per_class``, ``one_per_class_real`` and ``one_per_class_classes``.
    """
    for what, labels in (("real", real_labels), ("fake", fake_labels)):
        if labels.dim() != 3 or labels.dtype.is_floating_point or labels.numel() == 0:
            raise SemGANError(f"{what} labels must be a non-empty (N, H, W) integer tensor, got {labels.dtype} "
                              f"{tuple(labels.shape)}")
    real_counts, real_frag = component_stats(real_labels, num_classes, min_size)
    fake_counts, fake_frag = component_stats(fake_labels, num_classes, min_size)
    tv = 0.5 * (_count_histogram(real_counts) - _count_histogram(fake_counts)).abs().sum(1)  # (K,)
    used = (real_counts > 0).any(0)
    result: dict[str, Any] = {
        "count_tv": [round(float(v), 6) for v in tv],
        "count_tv_mean": float(tv[used].mean()) if bool(used.any()) else 0.0,
        "fragments": float(fake_frag.any(1).double().mean()),
        "fragments_real": float(real_frag.any(1).double().mean()),
        "presence": [round(float(v), 6) for v in (fake_counts > 0).double().mean(0)],
        "presence_real": [round(float(v), 6) for v in (real_counts > 0).double().mean(0)],
        # the rarest class: a generator that never draws one of the reals' classes scores 0 here
        "presence_min": float((fake_counts[:, used] > 0).double().mean(0).min()) if bool(used.any()) else 1.0,
        "presence_min_real": float((real_counts[:, used] > 0).double().mean(0).min()) if bool(used.any()) else 1.0,
        "min_size": min_size,
    }
    single = [k for k in range(num_classes)
              if float((real_counts[:, k] == 1).double().mean()) >= ONE_PER_CLASS_SHARE]
    if single:
        result["one_per_class"] = float((fake_counts[:, single] == 1).all(1).double().mean())
        result["one_per_class_real"] = float((real_counts[:, single] == 1).all(1).double().mean())
        result["one_per_class_classes"] = single
    return result


def lost_classes(presence: list[float], presence_real: list[float], *, real_share: float = LOST_REAL_SHARE,
                 fake_share: float = LOST_FAKE_SHARE) -> list[int]:
    """The classes a generator has lost: drawn in at least ``real_share`` of the real maps, in fewer than
    ``fake_share`` of the samples (the ``presence`` and ``presence_real`` of :func:`structure_metrics`).

    A class that is merely rare in the data (under ``real_share``) is never counted: a few hundred samples
    cannot tell its absence from bad luck.
    """
    if len(presence) != len(presence_real):
        raise SemGANError(f"presence has {len(presence)} classes, presence_real {len(presence_real)}; expected the "
                          "same class set")
    return [k for k, (fake, real) in enumerate(zip(presence, presence_real, strict=True))
            if real >= real_share and fake < fake_share]
