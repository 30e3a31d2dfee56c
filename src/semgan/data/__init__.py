"""Datasets. Every loader returns a :class:`LabelDataset` (``labels`` uint8 N x H x W, ``class_names``,
``palette``), registered by name in ``DATASETS`` and loaded from a :class:`~semgan.config.DataConfig`::

    dataset_from_config(cfg)    # the label maps (file-backed datasets through the cache)
    pairs_from_config(cfg)      # the maps with their photos, for pix2pix
    prepare_from_config(cfg)    # decode a file-backed dataset once into the cache
    load_dataset("shapes")      # the same, with the config's fields as keywords

The modules, by concern: :mod:`~semgan.data.registry` (the registry and these loaders),
:mod:`~semgan.data.dataset` (``LabelDataset``), :mod:`~semgan.data.classes` (class tables),
:mod:`~semgan.data.files` (listing, naming, splits), :mod:`~semgan.data.decode` (decoding, the bad-file policy,
``decode_to_dataset``), :mod:`~semgan.data.cache` (prepare once, load fast), :mod:`~semgan.data.pix2pix_ab`
(pix2pix's AB jpgs), and one module per dataset: ``shapes``, ``cityscapes``, ``facades``, ``folder``.
"""

from __future__ import annotations

# Importing the dataset modules registers their loaders.
from semgan.data import cityscapes, facades, folder, shapes  # noqa: F401
from semgan.data.dataset import LabelDataset, holdout_split, share_by_name
from semgan.data.registry import (
    DATASETS,
    SOURCES,
    dataset_from_config,
    load_dataset,
    paired_datasets,
    pairs_from_config,
    prepare_dataset,
    prepare_from_config,
)

__all__ = [
    "DATASETS",
    "SOURCES",
    "LabelDataset",
    "dataset_from_config",
    "holdout_split",
    "share_by_name",
    "load_dataset",
    "paired_datasets",
    "pairs_from_config",
    "prepare_dataset",
    "prepare_from_config",
]
