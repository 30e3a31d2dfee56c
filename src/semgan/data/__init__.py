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


def pairs_from_config(cfg: DataConfig) -> LabelDataset:
    """The label maps of ``cfg`` with their photos (``LabelDataset.photos``), for pix2pix.

    Paired data: the CMP Facade folder (``facades``), pix2pix's AB jpgs (``facades-pix2pix``,
    ``cityscapes-pix2pix``), Cityscapes with ``leftImg8bit`` (``cityscapes``), or your ``folder`` of maps with
    ``data.photos``, a folder of photos named like the maps.
    """
    from semgan.data import cityscapes, facades, folder
    from semgan.errors import SemGANError

    split, bad, classes = cfg.split or None, cfg.skip_bad, cfg.classes or None
    if cfg.name == "folder":
        if not cfg.photos:
            raise SemGANError("pix2pix on a folder of label maps needs their photos: --set data.photos=DIR, a folder "
                              "of photos named like the maps (a.png -> DIR/a.jpg)")
        return folder.load_folder_pairs(_need_root(cfg), cfg.photos, size=cfg.size or None, classes=classes,
                                        split=split, skip_bad=bad)
    if cfg.name == "facades":
        return facades.load_facade_pairs(_need_root(cfg), size=cfg.size or facades.DEFAULT_SIZE, split=split,
                                         seed=cfg.seed, skip_bad=bad)
    if cfg.name == "facades-pix2pix":
        return facades.load_facades_pix2pix_pairs(_need_root(cfg), size=cfg.size or facades.DEFAULT_SIZE, split=split,
                                                  skip_bad=bad)
    if cfg.name == "cityscapes":
        return cityscapes.load_cityscapes_pairs(_need_root(cfg), size=cfg.size or cityscapes.DEFAULT_SIZE,
                                                classes=classes, split=split, skip_bad=bad)
    if cfg.name == "cityscapes-pix2pix":
        return cityscapes.load_cityscapes_pix2pix_pairs(_need_root(cfg), size=cfg.size or cityscapes.DEFAULT_SIZE,
                                                        classes=classes, split=split, skip_bad=bad)
    raise SemGANError(f"dataset {cfg.name!r} has no photos to pair with its maps; pix2pix needs one of "
                      f"{', '.join(PAIRED)}")


#: The datasets with photos: what pix2pix trains on.
PAIRED = ("facades", "facades-pix2pix", "cityscapes", "cityscapes-pix2pix", "folder")


def _need_root(cfg: DataConfig) -> str:
    from semgan.errors import SemGANError

    if not cfg.root:
        raise SemGANError(f"dataset {cfg.name!r} needs its folder: pass --data-root DIR (data.root)")
    return cfg.root

# Importing the modules registers their loaders.
import semgan.data.cityscapes  # noqa: E402,F401
import semgan.data.facades  # noqa: E402,F401
import semgan.data.folder  # noqa: E402,F401
from semgan.data import shapes  # noqa: E402,F401

__all__ = ["DATASETS", "LabelDataset", "dataset_from_config", "load_dataset", "pairs_from_config"]
