"""Scoring a generator against its training data, once (``semgan evaluate``) or during training.

The images reach the metrics by the one path documented in :mod:`semgan.metrics`: reals and SemGAN samples
are argmax -> palette -> uint8; the RGB baseline is scored on its raw output, and again (``snapped``) after
nearest-palette snapping, so that both views of the baseline are on record.

During training, :class:`Evaluator` runs every ``eval.every`` steps, appends to ``metric-<name>.jsonl``,
logs TensorBoard scalars under ``eval/``, and keeps ``checkpoints/best-<key>.pt`` for each headline number
(the paper reports the best value during training; lower is better for all of them).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from semgan.checkpoint import save_checkpoint
from semgan.config import EvalConfig
from semgan.data import LabelDataset
from semgan.labels import colorize
from semgan.metrics import METRICS, compute_metrics
from semgan.models import Generator
from semgan.sample import sample

# The number that decides "best" for each metric (a path into its result; lower is better for all).
HEADLINE: dict[str, tuple[str, ...]] = {
    "swd": ("swd", "avg"),
    "fid": ("fid",),
    "ms_ssim": ("ms_ssim",),
    "semantic": ("semantic", "fsd"),
}


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
) -> dict[str, Any]:
    """Sample as many maps as there are reals and score them.

    Args:
        G: a trained generator (either mode).
        dataset: the training data; its first ``n`` of a seeded permutation (or all) are the reals.
        metrics: names from :data:`semgan.metrics.METRICS`.
        n: images per set; 0 = the whole training set.
        seed: seeds the real subset, the latents and the metrics' own randomness.

    Returns:
        The metrics dict of :func:`semgan.metrics.compute_metrics` plus ``mode`` and, for the baseline,
        ``snapped`` (the same metrics on its nearest-palette snapping).
    """
    for name in metrics:
        METRICS.get(name)  # unknown names fail before sampling
    real_labels = real_subset(dataset, n, seed).long()  # (N, H, W)
    real_images = colorize(real_labels, dataset.palette)  # (N, 3, H, W) uint8
    fakes = sample(G, len(real_labels), dataset.palette, generator=torch.Generator().manual_seed(seed + 1),
                   progress=progress)
    dev = device if device is not None else next(G.parameters()).device

    def score(fake_images: torch.Tensor, names: list[str]) -> dict[str, Any]:
        return compute_metrics(real_images, fake_images, names, generator=torch.Generator().manual_seed(seed + 2),
                               real_labels=real_labels, fake_labels=fakes.labels, palette=dataset.palette,
                               device=dev)

    result = {"mode": G.cfg.mode, **score(fakes.images, list(metrics))}
    if G.cfg.mode == "gan":
        snapped = [m for m in metrics if m != "semantic"]  # semantic already reads the snapped labels
        if snapped:
            result["snapped"] = score(fakes.label_images, snapped)
    return result


def headline(result: dict[str, Any], metric: str) -> float | None:
    """The single number of ``metric`` in a result dict, or None if absent."""
    value: Any = result
    for key in HEADLINE.get(metric, (metric,)):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


class Evaluator:
    """A training hook: evaluate every ``cfg.every`` steps (and at the last step), log, keep the best."""

    def __init__(self, cfg: EvalConfig, total_steps: int) -> None:
        self.cfg, self.total_steps = cfg, total_steps
        # Fail before training, not at the first evaluation an hour later.
        for name in cfg.metrics:
            METRICS.get(name)
        if "fid" in cfg.metrics:
            from semgan.metrics.fid import inception_weights_path

            inception_weights_path()  # raises with the install command when the weights are missing

    def due(self, step: int) -> bool:
        if not self.cfg.metrics:
            return False
        return (self.cfg.every > 0 and step % self.cfg.every == 0) or step == self.total_steps

    def __call__(self, trainer: Any, out: Path) -> None:
        step = trainer.step
        if not self.due(step):
            return
        result = evaluate_generator(trainer.G, trainer.dataset, self.cfg.metrics, n=self.cfg.n, seed=self.cfg.seed)
        result["step"] = step
        ckpt_dir = out / "checkpoints"
        state: dict[str, Any] | None = None
        for name in self.cfg.metrics:
            entry = {"step": step, name: result.get(name), "n": result["n_fake"]}
            if "snapped" in result and name in result["snapped"]:
                entry["snapped"] = result["snapped"][name]
            with (out / f"metric-{name}.jsonl").open("a") as f:
                f.write(json.dumps(entry) + "\n")
            for key, value in _scalars(name, result.get(name)).items():
                trainer.log_scalar(f"eval/{key}", value, step)
            current = headline(result, name)
            if current is None or not math.isfinite(current):
                continue
            best_path = ckpt_dir / f"best-{name}.pt"
            best = _best_so_far(out / f"metric-{name}.jsonl", name, exclude_step=step)
            if best is None or current < best:
                state = state or trainer.state_dict()
                save_checkpoint(best_path, {**state, "metric": {"name": name, "value": current}})


def _scalars(name: str, value: Any) -> dict[str, float]:
    """Flatten a metric's value to TensorBoard scalars (lists, such as class shares, are skipped)."""
    if isinstance(value, int | float):
        return {name: float(value)}
    if isinstance(value, dict):
        out: dict[str, float] = {}
        for k, v in value.items():
            out.update(_scalars(f"{name}/{k}", v))
        return out
    return {}


def _best_so_far(path: Path, name: str, exclude_step: int) -> float | None:
    best: float | None = None
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if entry["step"] == exclude_step:
            continue
        value = headline({name: entry.get(name)}, name)
        if value is not None and math.isfinite(value) and (best is None or value < best):
            best = value
    return best
