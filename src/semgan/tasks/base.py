"""The model-family interface: the part of training that differs between families.

The loop (:func:`semgan.train.fit`) owns the run folder, logging, checkpoints, resume, signals, the
evaluation schedule, precision, compilation and the other ranks. A family owns what only it knows:

- its networks and optimizers (built through the :class:`~semgan.train.engine.Engine`);
- one training step with its losses (``train_step``), which draws its own batch;
- its state (weights, optimizer moments, data order, its RNGs), for exact resume;
- what a sample grid shows, how it is evaluated, and what an evaluation says of its health.

SemGAN and its RGB baseline are the family ``semgan`` (:mod:`semgan.tasks.semgan`); pix2pix is ``pix2pix``
(:mod:`semgan.tasks.pix2pix`): paired label maps and photos, no latent, an L1 + adversarial loss, the same five
methods over other data. A family also says which data it loads (``load_data``: maps alone, or maps with photos).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import torch
from torch import nn

from semgan.config import MODEL_FAMILIES, EvalConfig, ModelSection, RunConfig
from semgan.data import LabelDataset
from semgan.registry import Registry

if TYPE_CHECKING:
    from semgan.model_files import TrainedModel


class Task(Protocol):
    """One model family's side of training."""

    #: the trainable networks by name, e.g. ``{"G": G, "D": D}`` (the modules themselves, never wrappers)
    networks: dict[str, nn.Module]

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        """Take training step ``step`` (0-based): draw a batch, update every network once.

        Returns detached scalar tensors (losses, D outputs) for logging; nothing here may wait for the device.
        """
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything the family needs to continue bit for bit: weights, optimizers, data order, its RNGs.

        The loop adds the step, config, dataset, torch's global RNG states and the engine's state.
        """
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def sample_grid(self) -> torch.Tensor:
        """A (3, H, W) uint8 picture of the model now, from fixed inputs (so grids over steps compare)."""
        ...

    def evaluate(self, cfg: EvalConfig, *, progress: bool = False) -> dict[str, Any] | None:
        """Score the model (every rank takes part); the metrics dict on rank 0, None on the others."""
        ...

    def health(self, result: dict[str, Any]) -> str | None:
        """What an evaluation's ``result`` says is broken in the model (a class it no longer draws), in one
        sentence, or None when healthy or when the family has no such signal. The collapse guard rolls back on it.
        """
        ...

    def reseed(self, seed: int) -> None:
        """Fresh streams for the family's own RNGs (data order, latents, jitter), from ``seed``: after a rollback
        the run goes on along another path than the one that collapsed."""
        ...


class TaskBuilder(Protocol):
    """A family's task class: ``build(cfg, dataset, engine) -> Task``, the data it trains on, and how a trained
    model of the family is put to use (:mod:`semgan.model_files` calls the last four)."""

    def __call__(self, cfg: RunConfig, dataset: LabelDataset, engine: Any) -> Task: ...

    def load_data(self, cfg: RunConfig) -> LabelDataset: ...

    def use_weights(self, ckpt: dict[str, Any]) -> dict[str, Any]:
        """The state dicts a model for use takes from a checkpoint, by network name (the moving average of a
        network when the run kept one)."""
        ...

    def use_networks(self, cfg: RunConfig, data: dict[str, Any], meta: dict[str, Any]) -> dict[str, nn.Module]:
        """The networks for use, freshly built (called on the meta device to check a file's shapes); ``data`` is
        the training data's description (``class_names``, ``palette``, ``resolution``), ``meta`` what the family
        saved of its model beyond the config (its state's ``meta`` entry; the encoder: its generator's config)."""
        ...

    def for_use(self, model: TrainedModel, networks: dict[str, nn.Module]) -> Any:
        """The object users call (a generator that samples maps, a translator), from the loaded networks."""
        ...

    def describe(self, cfg: RunConfig) -> tuple[str, str]:
        """For a model card: what the model is, in a phrase, and a Markdown block showing how to use it."""
        ...


FAMILIES: Registry[TaskBuilder] = Registry("model family")
T = TypeVar("T")


def register_family(section: type[ModelSection]) -> Callable[[T], T]:
    """Register a family's task class under the name of its model section (:func:`semgan.config.model_section`),
    so that the name is spelled once: in the section's ``family`` field."""
    name = section.__dataclass_fields__["family"].default  # type: ignore[attr-defined]
    if name not in MODEL_FAMILIES or MODEL_FAMILIES.get(name) is not section:
        raise ValueError(f"{section.__name__} is not a registered model section (semgan.config.model_section)")
    return FAMILIES.register(name)  # type: ignore[return-value]


def family(cfg: RunConfig) -> TaskBuilder:
    """The registered family of ``cfg.model.family``."""
    return FAMILIES.get(cfg.model.family)


def build_task(cfg: RunConfig, dataset: LabelDataset, engine: Any) -> Task:
    """The task of ``cfg.model.family``."""
    return family(cfg)(cfg, dataset, engine)


def load_task_data(cfg: RunConfig) -> LabelDataset:
    """The data ``cfg``'s family trains on."""
    return family(cfg).load_data(cfg)


def parts_state(parts: dict[str, Any]) -> dict[str, Any]:
    """The state dicts of a task's networks and optimizers, by name (``{"G": ..., "opt_G": ...}``)."""
    return {name: part.state_dict() for name, part in parts.items()}


def load_parts_state(parts: dict[str, Any], state: dict[str, Any]) -> None:
    """The inverse of :func:`parts_state`."""
    for name, part in parts.items():
        part.load_state_dict(state[name])
