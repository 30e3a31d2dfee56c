"""Evaluation metrics: SWD, MS-SSIM, FID and semantic label-map checks, behind one registry and entry point.

**The one path by which images reach the metrics.** Every metric sees ``images``: (N, 3, H, W) uint8 RGB in
[0, 255], real and generated alike, rendered the same way:

- reals and SemGAN samples: ``probs`` / ``labels`` -> argmax -> ``labels.colorize(labels, palette)`` -> uint8;
- baseline (RGB GAN) samples: their tanh output through ``labels.rgb_to_uint8`` (scored as is), and scored a
  second time snapped to the palette (``colorize(snap_to_palette(images, palette), palette)``); say which;
- labels for the semantic metrics: the argmax labels for reals and SemGAN samples, and nearest-palette snapping
  (``labels.snap_to_palette``) of the uint8 images for the baseline (and for plain image folders).

``compute_metrics`` validates names against ``METRICS`` and returns a flat, JSON-able dict::

    {"swd": {"64": .., "32": .., "16": .., "avg": ..}, "ms_ssim": .., "ms_ssim_real": .., "ms_ssim_gap": .., "fid": ..,
     "kid": .., "kid_std": .., "semantic": {...}, "structure": {...}, "l1": .., "n_real": N, "n_fake": M}

``l1`` is for paired sets (pix2pix's translations against their photos): the mean absolute difference on the
[0, 1] scale. Report N with every number (FID is biased by small N; SWD needs equal counts; ProGAN uses 16384
images for SWD and 10,000 pairs for MS-SSIM).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semgan.errors import SemGANError
from semgan.labels import snap_to_palette

# The submodules, not their same-named functions, so that ``semgan.metrics.swd`` stays the module.
from semgan.metrics import fid, kid, ms_ssim, semantic, structure, swd
from semgan.registry import Registry


@dataclass(frozen=True)
class MetricInputs:
    """Everything a registered metric may read; built once by :func:`compute_metrics`.

    Attributes:
        real_images: (N, 3, H, W) uint8.
        fake_images: (M, 3, H, W) uint8.
        generator: the only source of randomness (SWD).
        real_labels: (N, H, W) integer labels, or None (then snapped from the images when needed).
        fake_labels: (M, H, W) integer labels, or None.
        palette: (K, 3) uint8 class colours, or None.
        fid_cache_dir: FID real-statistics cache folder (None = default).
        progress: progress bars on stderr for long computations (FID features).
    """

    real_images: torch.Tensor
    fake_images: torch.Tensor
    generator: torch.Generator
    real_labels: torch.Tensor | None
    fake_labels: torch.Tensor | None
    palette: torch.Tensor | None
    fid_cache_dir: str | Path | None
    progress: bool = True
    memo: dict[str, torch.Tensor] = field(default_factory=dict)  # Inception features, shared by FID and KID


MetricFn = Callable[[MetricInputs], dict[str, Any]]
METRICS: Registry[MetricFn] = Registry("metric")


@METRICS.register("swd")
def _swd(inp: MetricInputs) -> dict[str, Any]:
    return {"swd": swd.swd(inp.real_images, inp.fake_images, generator=inp.generator)}


@METRICS.register("ms_ssim")
def _ms_ssim(inp: MetricInputs) -> dict[str, Any]:
    fake, real = ms_ssim.ms_ssim_pairs(inp.fake_images), ms_ssim.ms_ssim_pairs(inp.real_images)
    # Diversity should match the data's, not be minimised: the gap to the reals' own value is what to judge.
    return {"ms_ssim": fake, "ms_ssim_real": real, "ms_ssim_gap": abs(fake - real)}


@METRICS.register("fid")
def _fid(inp: MetricInputs) -> dict[str, Any]:
    mu, sigma = fid.real_statistics(inp.real_images, cache_dir=inp.fid_cache_dir, progress=inp.progress,
                                    features=lambda: _features(inp, "real"))
    fake_mu, fake_sigma = fid.feature_statistics(_features(inp, "fake"))
    return {"fid": fid.frechet_distance(mu, sigma, fake_mu, fake_sigma)}


@METRICS.register("kid")
def _kid(inp: MetricInputs) -> dict[str, Any]:
    return kid.kid(_features(inp, "real"), _features(inp, "fake"), generator=inp.generator)


def _features(inp: MetricInputs, which: str) -> torch.Tensor:
    """FID Inception features of the real or fake set, computed once for FID and KID together."""
    if which not in inp.memo:
        images = inp.real_images if which == "real" else inp.fake_images
        inp.memo[which] = fid.extract_features(images, progress=inp.progress)
    return inp.memo[which]


@METRICS.register("l1")
def _l1(inp: MetricInputs) -> dict[str, Any]:
    # Paired sets only (pix2pix: a translated map against its own photo): the i-th fake belongs to the i-th real.
    if inp.real_images.shape != inp.fake_images.shape:
        raise SemGANError(f"l1 compares paired images, but the sets are {tuple(inp.real_images.shape)} and "
                          f"{tuple(inp.fake_images.shape)}; expected equal shapes, in the same order")
    diff = (inp.real_images.float() - inp.fake_images.float()).abs().mean()
    return {"l1": float(diff) / 255}  # mean absolute difference per channel, on the [0, 1] scale


@METRICS.register("semantic")
def _semantic(inp: MetricInputs) -> dict[str, Any]:
    if inp.palette is None:
        raise SemGANError("the semantic metrics need the class palette (K, 3) the images are rendered with")
    pal = inp.palette
    real_labels = inp.real_labels if inp.real_labels is not None else snap_to_palette(inp.real_images, pal)
    fake_labels = inp.fake_labels if inp.fake_labels is not None else snap_to_palette(inp.fake_images, pal)
    return {
        "semantic": semantic.semantic_metrics(
            real_labels,
            fake_labels,
            int(pal.shape[0]),
            real_images=inp.real_images,
            fake_images=inp.fake_images,
            palette=pal,
        )
    }


@METRICS.register("structure")
def _structure(inp: MetricInputs) -> dict[str, Any]:
    if inp.palette is None:
        raise SemGANError("the structure metrics need the class palette (K, 3) the images are rendered with")
    pal = inp.palette
    real_labels = inp.real_labels if inp.real_labels is not None else snap_to_palette(inp.real_images, pal)
    fake_labels = inp.fake_labels if inp.fake_labels is not None else snap_to_palette(inp.fake_images, pal)
    return {"structure": structure.structure_metrics(real_labels, fake_labels, int(pal.shape[0]))}


def compute_metrics(
    real_images: torch.Tensor,
    fake_images: torch.Tensor,
    names: Sequence[str],
    *,
    generator: torch.Generator,
    real_labels: torch.Tensor | None = None,
    fake_labels: torch.Tensor | None = None,
    palette: torch.Tensor | np.ndarray | None = None,
    fid_cache_dir: str | Path | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Compute the named metrics between a real and a generated image set.

    Args:
        real_images: (N, 3, H, W) uint8 RGB renders of the reals.
        fake_images: (M, 3, H, W) uint8 RGB generated images (see the module docstring for the one path).
        names: metric names from ``METRICS`` (``swd``, ``ms_ssim``, ``fid``, ``semantic``, ``structure``), run
            in this order.
        generator: explicit randomness for SWD.
        real_labels: (N, H, W) integer labels for ``semantic``; snapped from the images when None.
        fake_labels: (M, H, W) integer labels for ``semantic``; snapped from the images when None.
        palette: (K, 3) uint8 class colours; required by ``semantic``.
        fid_cache_dir: FID real-statistics cache folder.
        device: where to compute; the images' device when None.
        progress: progress bars on stderr for long computations (FID features).

    Returns:
        A JSON-able dict: one entry per metric (see the module docstring) plus ``n_real`` and ``n_fake``.
    """
    fns = [(name, METRICS.get(name)) for name in names]  # unknown names fail before any work
    for what, images in (("real", real_images), ("fake", fake_images)):
        if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise SemGANError(
                f"{what} images must be (N, 3, H, W) uint8 RGB, got {images.dtype} of shape {tuple(images.shape)}"
            )
    dev = torch.device(device) if device is not None else real_images.device
    inp = MetricInputs(
        real_images=real_images.to(dev),
        fake_images=fake_images.to(dev),
        generator=generator,
        real_labels=None if real_labels is None else real_labels.to(dev),
        fake_labels=None if fake_labels is None else fake_labels.to(dev),
        palette=None if palette is None else torch.as_tensor(palette, dtype=torch.uint8).to(dev),
        fid_cache_dir=fid_cache_dir,
        progress=progress,
    )
    result: dict[str, Any] = {}
    for _, fn in fns:
        result.update(fn(inp))
    result["n_real"] = int(real_images.shape[0])
    result["n_fake"] = int(fake_images.shape[0])
    return result


__all__ = ["METRICS", "MetricFn", "MetricInputs", "compute_metrics", "fid", "kid", "ms_ssim", "semantic",
           "structure", "swd"]
