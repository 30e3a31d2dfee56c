"""Datasets. Every loader returns a :class:`LabelDataset` (``labels`` uint8 N x H x W, ``class_names``,
``palette``), registered by name in ``DATASETS``.

A loader is a function taking keyword arguments only::

    loader(*, root: str | None, size: int | None, classes: str | None, split: str | None,
           seed: int, skip_bad: bool) -> LabelDataset

and ignores the ones it has no use for (Colored Shapes is generated, so it ignores ``root``).
"""

from __future__ import annotations

from collections.abc import Callable

from semgan.config import DataConfig
from semgan.data.base import LabelDataset
from semgan.registry import Registry

Loader = Callable[..., LabelDataset]
DATASETS: Registry[Loader] = Registry("dataset")


def load_dataset(
    name: str,
    *,
    root: str | None = None,
    size: int | None = None,
    classes: str | None = None,
    split: str | None = None,
    seed: int = 0,
    skip_bad: bool = False,
) -> LabelDataset:
    """Load a registered dataset by name, e.g. ``load_dataset("shapes")``."""
    return DATASETS.get(name)(root=root, size=size, classes=classes, split=split, seed=seed, skip_bad=skip_bad)


def dataset_from_config(cfg: DataConfig, *, root: str | None = None) -> LabelDataset:
    """Load the dataset a :class:`~semgan.config.DataConfig` describes (``root`` overrides ``cfg.root``)."""
    return load_dataset(cfg.name, root=root or cfg.root or None, size=cfg.size or None, classes=cfg.classes or None,
                        split=cfg.split or None, seed=cfg.seed, skip_bad=cfg.skip_bad)


# Importing the modules registers their loaders.
import semgan.data.cityscapes  # noqa: E402,F401
import semgan.data.facades  # noqa: E402,F401
import semgan.data.folder  # noqa: E402,F401
from semgan.data import shapes  # noqa: E402,F401

__all__ = ["DATASETS", "LabelDataset", "dataset_from_config", "load_dataset"]
