"""The dataset registry, and the loaders: each takes one :class:`~semgan.config.DataConfig`.

``DATASETS`` maps a name to a loader ``loader(cfg: DataConfig) -> LabelDataset`` that ignores the fields it has
no use for (Colored Shapes is generated, so it ignores ``root``). A file-backed dataset registers a *source*
instead, with :func:`register_source`: ``source(cfg) -> DataSource`` lists its files and says how to decode
them (maps alone, and maps with photos for pix2pix), without decoding anything; its loader goes through the
cache (:mod:`semgan.data.cache`).

:func:`dataset_from_config`, :func:`pairs_from_config` and :func:`prepare_from_config` take the config;
:func:`load_dataset` and :func:`prepare_dataset` take its fields as keywords instead,
for a quick call from Python or the command line.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from semgan.config import DataConfig
from semgan.data.cache import DataSource, load_cached, prepare_source
from semgan.data.dataset import LabelDataset
from semgan.data.files import check_size
from semgan.errors import SemGANError
from semgan.registry import Registry

Loader = Callable[[DataConfig], LabelDataset]
#: Every dataset by name: name -> loader.
DATASETS: Registry[Loader] = Registry("dataset")

SourceFactory = Callable[[DataConfig], DataSource]
#: Datasets that are decoded from files and can be prepared into a cache: name -> source factory.
SOURCES: Registry[SourceFactory] = Registry("file-backed dataset")

_PAIRED: set[str] = set()
#: Generated datasets that also make a photo of every map (no folder to read): name -> loader of the pairs.
GENERATED_PAIRS: Registry[Loader] = Registry("generated paired dataset")


def register_source(name: str, *, paired: bool = False) -> Callable[[SourceFactory], SourceFactory]:
    """Register a source factory under ``name`` in ``SOURCES``, and its cached loader in ``DATASETS``.

    Args:
        name: the dataset's name.
        paired: the sources it makes have photos (``DataSource.build_pairs``): pix2pix can train on it.
    """

    def deco(factory: SourceFactory) -> SourceFactory:
        SOURCES.add(name, factory)
        if paired:
            _PAIRED.add(name)

        def loader(cfg: DataConfig) -> LabelDataset:
            return load_cached(factory(cfg))

        loader.__name__ = loader.__qualname__ = f"load_{name.replace('-', '_')}"
        loader.__doc__ = f"Load {name!r} through the cache. See ``{factory.__module__}.{factory.__name__}``."
        DATASETS.add(name, loader)
        return factory

    return deco


def paired_datasets() -> tuple[str, ...]:
    """The datasets whose maps have photos: what pix2pix trains on."""
    return tuple(sorted(_PAIRED | set(GENERATED_PAIRS)))


def data_config(
    name: str,
    *,
    root: str | os.PathLike[str] | None = None,
    size: int | None = None,
    classes: str | None = None,
    split: str | None = None,
    seed: int = 0,
    skip_bad: bool = False,
) -> DataConfig:
    """The :class:`~semgan.config.DataConfig` of keyword arguments (``None``: the dataset's default)."""
    check_size(size, name)  # DataConfig reads 0 as "the dataset's own"; a keyword 0 is a mistake
    return DataConfig(name=name, root="" if root is None else str(root), size=size or 0, classes=classes or "",
                      split=split or "", seed=seed, skip_bad=skip_bad)


def dataset_from_config(
    cfg: DataConfig, *, root: str | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> LabelDataset:
    """Load the dataset ``cfg`` describes; a file-backed one through the cache.

    Args:
        cfg: the data section of a run.
        root: overrides ``cfg.root`` when given.
        cache_dir: cache root instead of :func:`semgan.io.cache_root`'s default.
    """
    if root:
        cfg = dataclasses.replace(cfg, root=str(root))
    if cfg.name in SOURCES:
        return load_cached(SOURCES.get(cfg.name)(cfg), cache_dir)
    return DATASETS.get(cfg.name)(cfg)


def pairs_from_config(cfg: DataConfig) -> LabelDataset:
    """The label maps of ``cfg`` with their photos (``LabelDataset.photos``), for pix2pix. Not cached.

    Paired data: the CMP Facade folder (``facades``), pix2pix's AB jpgs (``facades-pix2pix``,
    ``cityscapes-pix2pix``), Cityscapes with ``leftImg8bit`` (``cityscapes``), or your ``folder`` of maps with
    ``data.photos``, a folder of photos named like the maps.
    """
    if cfg.name in GENERATED_PAIRS:
        return GENERATED_PAIRS.get(cfg.name)(cfg)
    if cfg.name not in _PAIRED:
        raise SemGANError(f"dataset {cfg.name!r} has no photos to pair with its maps; pix2pix needs one of "
                          f"{', '.join(paired_datasets())}")
    if not cfg.root:
        raise SemGANError(f"dataset {cfg.name!r} needs its folder: pass --data-root DIR (data.root)")
    build_pairs = SOURCES.get(cfg.name)(cfg).build_pairs
    if build_pairs is None:  # a registration error, not the user's
        raise SemGANError(f"dataset {cfg.name!r} is registered as paired but its source has no photos")
    return build_pairs()


def prepare_from_config(
    cfg: DataConfig, *, cache_dir: str | os.PathLike[str] | None = None, force: bool = False
) -> Path:
    """Decode the file-backed dataset ``cfg`` describes into its cache entry, unless a valid one exists.

    Args:
        cfg: the data section; ``cfg.name`` must be in ``SOURCES``.
        cache_dir: cache root instead of :func:`semgan.io.cache_root`'s default.
        force: rebuild even when a valid cache exists.

    Returns:
        The cache folder, holding ``labels.npy`` and ``manifest.json``.
    """
    if cfg.name not in SOURCES and cfg.name in DATASETS:
        raise SemGANError(
            f"dataset {cfg.name!r} is not read from files, so there is nothing to prepare; "
            f"file-backed datasets: {', '.join(SOURCES.names())}"
        )
    return prepare_source(SOURCES.get(cfg.name)(cfg), cache_dir, force=force)


def load_dataset(
    name: str,
    *,
    root: str | None = None,
    size: int | None = None,
    classes: str | None = None,
    split: str | None = None,
    seed: int = 0,
    skip_bad: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> LabelDataset:
    """Load a registered dataset by name, e.g. ``load_dataset("shapes")``: :func:`dataset_from_config` with
    the fields of a :class:`~semgan.config.DataConfig` as keywords (``None``: the dataset's default), and
    ``cache_dir`` for file-backed datasets (None: :func:`semgan.io.cache_root`)."""
    cfg = data_config(name, root=root, size=size, classes=classes, split=split, seed=seed, skip_bad=skip_bad)
    return dataset_from_config(cfg, cache_dir=cache_dir)


def prepare_dataset(
    name: str,
    root: str | os.PathLike[str],
    size: int | None = None,
    classes: str | None = None,
    *,
    split: str | None = None,
    seed: int = 0,
    skip_bad: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> Path:
    """Decode a file-backed dataset once and cache it; later loads with the same arguments take milliseconds.
    :func:`prepare_from_config` with the config's fields as arguments.

    Args:
        name: a dataset in ``SOURCES`` (``cityscapes``, ``cityscapes-pix2pix``, ``facades``,
            ``facades-pix2pix``, ``folder``).
        root: the dataset's source folder.
        size: maps are resized to size x size (``None``: the dataset's default).
        classes: class set (Cityscapes) or classes file (folder).
        split: dataset-specific split.
        seed: seed for seeded splits.
        skip_bad: skip bad files (recorded in the manifest) instead of failing.
        cache_dir: cache root instead of :func:`semgan.io.cache_root`'s default.
        force: rebuild even when a valid cache exists.

    Returns:
        The cache folder, holding ``labels.npy`` and ``manifest.json``.
    """
    cfg = data_config(name, root=root, size=size, classes=classes, split=split, seed=seed, skip_bad=skip_bad)
    return prepare_from_config(cfg, cache_dir=cache_dir, force=force)
