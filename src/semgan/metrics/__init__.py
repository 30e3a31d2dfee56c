"""Evaluation metrics: SWD, MS-SSIM, FID and semantic label-map checks, behind one registry and entry point.

**The one path by which images reach the metrics.** Every metric sees ``images``: (N, 3, H, W) uint8 RGB in
[0, 255], real and generated alike, rendered the same way:

- reals and SemGAN samples: ``probs`` / ``labels`` -> argmax -> ``labels.colorize(labels, palette)`` -> uint8;
- baseline (RGB GAN) samples: their tanh output through ``labels.rgb_to_uint8`` (scored as is), and scored a
  second time snapped to the palette (``colorize(snap_to_palette(images, palette), palette)``); say which;
- labels for the semantic metrics: the argmax labels for reals and SemGAN samples, and nearest-palette snapping
  (``labels.snap_to_palette``) of the uint8 images for the baseline (and for plain image folders).

**One description per metric.** ``METRICS`` maps each name to a :class:`MetricSpec`: the function, the path
to its headline number (the one that ranks evaluations, picks ``best-<name>.pt`` and is bolded in the report)
and which direction is better. :func:`headline` reads that number out of a result.

``compute_metrics`` validates names against ``METRICS`` and returns a flat, JSON-able dict::

    {"swd": {"64": .., "32": .., "16": .., "avg": ..}, "ms_ssim": .., "ms_ssim_real": .., "ms_ssim_gap": .., "fid": ..,
     "kid": .., "kid_std": .., "semantic": {...}, "structure": {...}, "l1": .., "n_real": N, "n_fake": M}

``l1`` is for paired sets (pix2pix's translations against their photos): the mean absolute difference on the
[0, 1] scale; ``miou`` and ``pixel_acc`` for paired label maps (an encoder's reconstructions, a segmenter's
predictions), as :mod:`semgan.metrics.segmentation` computes them. Report N with every number (FID is biased
by small N; SWD needs equal counts; ProGAN uses 16384 images for SWD and 10,000 pairs for MS-SSIM).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semgan.errors import SemGANError
from semgan.labels import snap_to_palette

# The submodules, not their same-named functions, so that ``semgan.metrics.swd`` stays the module.
from semgan.metrics import fid, kid, ms_ssim, segmentation, semantic, structure, swd
from semgan.metrics.checks import check_images
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


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: how to compute it, and the one number (and direction) it is judged by.

    Attributes:
        name: the registry name; also names ``metric-<name>.jsonl`` and ``checkpoints/best-<name>.pt``.
        fn: computes the metric's entries of the flat result dict.
        headline: the path to its headline number in a result, e.g. ``("swd", "avg")``.
        higher_is_better: the headline's better direction.
        description: one line, for help texts.
    """

    name: str
    fn: MetricFn
    headline: tuple[str, ...]
    higher_is_better: bool = False
    description: str = ""

    def value(self, result: dict[str, Any]) -> float | None:
        """The headline number in ``result`` (a result dict or a ``metric-<name>.jsonl`` line), or None."""
        return _lookup(result, self.headline)

    def best(self, values: Iterable[float]) -> float:
        """The better end of ``values`` (not empty)."""
        return max(values) if self.higher_is_better else min(values)

    def improves(self, value: float, earlier: Iterable[float]) -> bool:
        """Whether ``value`` beats every one of ``earlier`` (true when there is none)."""
        rest = list(earlier)
        return not rest or (value > max(rest) if self.higher_is_better else value < min(rest))


METRICS: Registry[MetricSpec] = Registry("metric")


def register_metric(
    name: str, *, headline: tuple[str, ...] | None = None, higher_is_better: bool = False, description: str = ""
) -> Callable[[MetricFn], MetricFn]:
    """Register the decorated function as metric ``name`` (headline: its top-level entry ``name`` by default)."""

    def deco(fn: MetricFn) -> MetricFn:
        METRICS.add(name, MetricSpec(name, fn, headline or (name,), higher_is_better, description))
        return fn

    return deco


def _lookup(result: dict[str, Any], path: Sequence[str]) -> float | None:
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def headline(result: dict[str, Any], metric: str) -> float | None:
    """The headline number of ``metric`` in a result dict, or None if absent (an unregistered name: its own
    top-level entry)."""
    return _lookup(result, METRICS.get(metric).headline if metric in METRICS else (metric,))


@register_metric("swd", headline=("swd", swd.KEY_AVG),
                 description="sliced Wasserstein distance x 1e3 (ProGAN), per level and averaged")
def _swd(inp: MetricInputs) -> dict[str, Any]:
    return {"swd": swd.swd(inp.real_images, inp.fake_images, generator=inp.generator)}


# Diversity should match the data's, not be minimised: the gap to the reals' own value is what to judge.
@register_metric("ms_ssim", headline=("ms_ssim_gap",),
                 description="diversity: MS-SSIM of sample pairs against the reals' own value")
def _ms_ssim(inp: MetricInputs) -> dict[str, Any]:
    fake, real = ms_ssim.ms_ssim_pairs(inp.fake_images), ms_ssim.ms_ssim_pairs(inp.real_images)
    return {"ms_ssim": fake, "ms_ssim_real": real, "ms_ssim_gap": abs(fake - real)}


@register_metric("fid", description="Fréchet Inception distance")
def _fid(inp: MetricInputs) -> dict[str, Any]:
    mu, sigma = fid.real_statistics(inp.real_images, cache_dir=inp.fid_cache_dir, progress=inp.progress,
                                    features=lambda: _features(inp, "real"))
    fake_mu, fake_sigma = fid.feature_statistics(_features(inp, "fake"))
    return {"fid": fid.frechet_distance(mu, sigma, fake_mu, fake_sigma)}


@register_metric("kid", description="kernel Inception distance, less biased than FID for a few hundred images")
def _kid(inp: MetricInputs) -> dict[str, Any]:
    return kid.kid(_features(inp, "real"), _features(inp, "fake"), generator=inp.generator)


def _features(inp: MetricInputs, which: str) -> torch.Tensor:
    """FID Inception features of the real or fake set, computed once for FID and KID together."""
    if which not in inp.memo:
        images = inp.real_images if which == "real" else inp.fake_images
        inp.memo[which] = fid.extract_features(images, progress=inp.progress)
    return inp.memo[which]


@register_metric("l1", description="mean absolute difference of paired images on [0, 1] (pix2pix)")
def _l1(inp: MetricInputs) -> dict[str, Any]:
    # Paired sets only (pix2pix: a translated map against its own photo): the i-th fake belongs to the i-th real.
    if inp.real_images.shape != inp.fake_images.shape:
        raise SemGANError(f"l1 compares paired images, but the sets are {tuple(inp.real_images.shape)} and "
                          f"{tuple(inp.fake_images.shape)}; expected equal shapes, in the same order")
    diff = (inp.real_images.float() - inp.fake_images.float()).abs().mean()
    return {"l1": float(diff) / 255}  # mean absolute difference per channel, on the [0, 1] scale


@register_metric("miou", higher_is_better=True,
                 description="paired label maps: mean IoU over the classes present (also pixel_acc, per-class iou)")
def _miou(inp: MetricInputs) -> dict[str, Any]:
    real, fake, K = _paired_labels(inp, "miou")
    scores = segmentation.segmentation_scores(real, fake, K)
    return {"miou": scores["miou"], "miou_pixel_acc": scores["pixel_acc"], "miou_iou": scores["iou"]}


@register_metric("pixel_acc", higher_is_better=True,
                 description="paired label maps: the share of pixels whose class agrees")
def _pixel_acc(inp: MetricInputs) -> dict[str, Any]:
    real, fake, K = _paired_labels(inp, "pixel_acc")
    return {"pixel_acc": segmentation.segmentation_scores(real, fake, K)["pixel_acc"]}


def _paired_labels(inp: MetricInputs, name: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The labels of two paired sets (the i-th fake belongs to the i-th real), snapped from the images if needed,
    and K."""
    if inp.palette is None:
        raise SemGANError(f"{name} needs the class palette (K, 3) the images are rendered with")
    if inp.real_images.shape != inp.fake_images.shape:
        raise SemGANError(f"{name} compares paired label maps, but the sets are {tuple(inp.real_images.shape)} and "
                          f"{tuple(inp.fake_images.shape)}; expected equal shapes, in the same order")
    real = inp.real_labels if inp.real_labels is not None else snap_to_palette(inp.real_images, inp.palette)
    fake = inp.fake_labels if inp.fake_labels is not None else snap_to_palette(inp.fake_images, inp.palette)
    return real, fake, int(inp.palette.shape[0])


@register_metric("semantic", headline=("semantic", "fsd"),
                 description="label validity, class shares, Fréchet segmentation distance")
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


@register_metric("structure", headline=("structure", "count_tv_mean"),
                 description="connected components per class: counts, fragments, presence")
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
    fns = [METRICS.get(name).fn for name in names]  # unknown names fail before any work
    check_images(real_images, "real images")
    check_images(fake_images, "fake images")
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
    for fn in fns:
        result.update(fn(inp))
    result["n_real"] = int(real_images.shape[0])
    result["n_fake"] = int(fake_images.shape[0])
    return result


def check_metric_names(names: Iterable[str]) -> list[str]:
    """``names`` as a list, after checking each is registered (a typo fails naming the valid metrics)."""
    names = list(names)
    for name in names:
        METRICS.get(name)
    return names


__all__ = ["METRICS", "MetricFn", "MetricInputs", "MetricSpec", "check_metric_names", "compute_metrics", "fid",
           "headline", "kid", "ms_ssim", "register_metric", "segmentation", "semantic", "structure", "swd"]
