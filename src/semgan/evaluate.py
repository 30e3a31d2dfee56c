"""Scoring a generator against its training data, once (``semgan evaluate``) or during training.

The images reach the metrics by the one path documented in :mod:`semgan.metrics`: reals and SemGAN samples
are argmax -> palette -> uint8; the RGB baseline is scored on its raw output, and again (``snapped``) after
nearest-palette snapping, so that both views of the baseline are on record.

During training the loop's evaluator (:mod:`semgan.train.evaluation`) calls this through the family's task,
every ``eval.every`` steps; with several ranks each renders its share of the samples.
"""

from __future__ import annotations

from typing import Any

import torch

from semgan.data import LabelDataset
from semgan.distributed import DistEnv
from semgan.labels import colorize
from semgan.metrics import check_metric_names, compute_metrics
from semgan.metrics import headline as headline  # re-exported: each metric's headline is its MetricSpec's
from semgan.models import Generator
from semgan.sample import Samples, latents, render_batches


def real_subset(dataset: LabelDataset, n: int, seed: int) -> torch.Tensor:
    """(n, H, W) labels: the whole set for n <= 0 or n >= N (the paper's protocol), else a seeded subset."""
    N = len(dataset)
    if n <= 0 or n >= N:
        return dataset.labels
    idx = torch.randperm(N, generator=torch.Generator().manual_seed(seed))[:n]
    return dataset.labels[idx.sort().values]


def evaluate_generator(
    G: Generator,
    dataset: LabelDataset,
    metrics: tuple[str, ...] | list[str],
    *,
    n: int = 0,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
    env: DistEnv | None = None,
) -> dict[str, Any] | None:
    """Sample as many maps as there are reals and score them.

    Args:
        G: a trained generator (either mode).
        dataset: the training data; its first ``n`` of a seeded permutation (or all) are the reals.
        metrics: names from :data:`semgan.metrics.METRICS`.
        n: images per set; 0 = the whole training set.
        seed: seeds the real subset, the latents and the metrics' own randomness.
        env: with several ranks, each renders its share of the samples and rank 0 scores them all.

    Returns:
        The metrics dict of :func:`semgan.metrics.compute_metrics` plus ``mode`` and, for the baseline,
        ``snapped`` (the same metrics on its nearest-palette snapping); None on ranks other than 0.
    """
    check_metric_names(metrics)  # unknown names fail before sampling
    env = env or DistEnv()
    real_labels = real_subset(dataset, n, seed).long()  # (N, H, W)
    z = latents(len(real_labels), G.cfg.ld, generator=torch.Generator().manual_seed(seed + 1))  # (N, ld)
    mine = z.tensor_split(env.world)[env.rank]  # the same latents as one process would use, shared out
    fakes = render_batches(G, mine, dataset.palette, progress=progress and env.is_main)
    parts = env.gather((fakes.labels, fakes.images))
    if not env.is_main:
        return None
    fakes = Samples(labels=torch.cat([p[0] for p in parts]), images=torch.cat([p[1] for p in parts]),
                    palette=dataset.palette)
    real_images = colorize(real_labels, dataset.palette)  # (N, 3, H, W) uint8
    dev = device if device is not None else next(G.parameters()).device

    def score(fake_images: torch.Tensor, names: list[str]) -> dict[str, Any]:
        return compute_metrics(real_images, fake_images, names, generator=torch.Generator().manual_seed(seed + 2),
                               real_labels=real_labels, fake_labels=fakes.labels, palette=dataset.palette,
                               device=dev)

    result = {"mode": G.cfg.mode, **score(fakes.images, list(metrics))}
    if G.cfg.mode == "gan":
        snapped = [m for m in metrics if m not in ("semantic", "structure")]  # these read the snapped labels
        if snapped:
            result["snapped"] = score(fakes.label_images, snapped)
    return result
