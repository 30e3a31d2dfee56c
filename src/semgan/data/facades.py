"""CMP Facade Database (Tyleček & Šára, GCPR 2013) label maps and photos, and pix2pix's ``facades`` AB jpgs.

Registered datasets (fields of :class:`~semgan.config.DataConfig`; ``classes`` must be empty or ``"cmp12"``,
the only class set):

- ``facades``: ``root`` holds ``base/`` (``cmp_b0001..0378.{jpg,png,xml}``) and/or ``extended/``
  (``cmp_x0001..0228``). The label PNGs are mode P whose pixel value is the class **1..12**; class = value - 1
  (the PNG palette, MATLAB ``jet(12)``, is ignored). Values 0 and 13..255 are errors naming files and values.
  ``split``: ``all`` (default: every part present), ``base``, ``extended``, or ``train`` / ``val``, a seeded
  90/10 split of ``all`` (:func:`train_val_split`; the dataset has no official split).
- ``facades-pix2pix``: ``root`` holds pix2pix's ``{train,val,test}/<n>.jpg`` (512x256; photo left, label
  right).
  The label colours are *not* the CMP palette; they are decoded by nearest colour of the measured
  ``PIX2PIX_FACADES_PALETTE`` in YCbCr with weights (1, 0.25, 0.25), and the dataset's palette is that one.
  ``split``: ``train`` (default), ``val``, ``test`` or ``all``.

Maps are resized to ``size x size`` (default 128, as in the paper) with PIL NEAREST, squashing the aspect
ratio.
Both have photos for a labels -> photo (pix2pix) stage (:func:`semgan.data.pairs_from_config`): the CMP
``cmp_*.jpg`` next to each label PNG, or the left half of each AB jpg.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from semgan.config import DataConfig
from semgan.data.cache import DataSource
from semgan.data.classes import CMP_FACADES, PIX2PIX_FACADES
from semgan.data.dataset import LabelDataset
from semgan.data.decode import decode_to_dataset, map_values, nearest_color, read_index_values, read_photo
from semgan.data.files import list_files, out_size, require_root, train_val_split
from semgan.data.pix2pix_ab import ab_source
from semgan.data.registry import register_source
from semgan.errors import SemGANError

DEFAULT_SIZE = 128
PARTS = ("base", "extended")
SPLITS = ("all", "base", "extended", "train", "val")
#: Share of maps in the seeded validation split (our choice; the dataset has no official split).
VAL_FRACTION = 0.1
LAYOUT = "base/ and/or extended/ holding the CMP label PNGs (cmp_b0001.png, ...) next to their photos (.jpg)"
_COLOR_HINT = (
    "CMP label PNGs are mode P with values 1..12; do not convert them to RGB. Colour label images "
    "(e.g. pix2pix jpgs) must be decoded by nearest colour: use the 'facades-pix2pix' dataset"
)


def read_cmp_labels(path: str | os.PathLike[str], size: int | None = None) -> np.ndarray:
    """Read one CMP label PNG into class indices.

    Args:
        path: mode-P PNG with values 1..12.
        size: resize to size x size with PIL NEAREST (``None``: native size).

    Returns:
        (H, W) uint8 class indices in 0..11.

    Raises:
        BadFileError: unreadable file, a colour image, or a value outside 1..12 (0 included).
    """
    raw = read_index_values(Path(path), hint=_COLOR_HINT)
    return map_values(raw, CMP_FACADES, size)


def decode_facades_colors(rgb: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 pix2pix facades label colours -> (H, W) uint8 classes 0..11, nearest colour in YCbCr.

    Args:
        rgb: the label half of an AB jpg.
        palette: (12, 3) uint8 colours to decode with (default: the measured ``PIX2PIX_FACADES_PALETTE``).
    """
    pal = PIX2PIX_FACADES.palette_array() if palette is None else palette
    return nearest_color(rgb, pal)[0].astype(np.uint8)


def _check_classes(classes: str, dataset: str) -> None:
    if classes not in ("", CMP_FACADES.name):
        raise SemGANError(f"{dataset} has one class set, {CMP_FACADES.name!r} (12 classes); got classes={classes!r}")


def _cmp_files(root: Path, split: str | None, seed: int) -> tuple[list[Path], str, list[str]]:
    """Label PNGs of ``split``, in order: base then extended, natural order inside each."""
    split = split or "all"
    if split not in SPLITS:
        raise SemGANError(f"facades: unknown split {split!r}; expected one of: {', '.join(SPLITS)}")
    if split in PARTS:
        parts = [split]
    else:
        parts = [p for p in PARTS if (root / p).is_dir()]
        if not parts:
            hint = " (it holds cmp_*.png itself: pass its parent folder)" if any(root.glob("cmp_*.png")) else ""
            raise SemGANError(f"{root} has neither base/ nor extended/{hint}; expected {LAYOUT}")
    files: list[Path] = []
    for part in parts:
        files += list_files(root / part, ["*.png"], what=LAYOUT)
    if split in ("train", "val"):
        train, val = train_val_split([f.stem for f in files], seed=seed)
        files = [files[i] for i in (train if split == "train" else val)]
        if not files:
            raise SemGANError(f"facades: split {split!r} of a single map is empty; use split 'all'")
    return files, split, parts


def _decode_pair(label_path: Path, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    raw = read_index_values(label_path, hint=_COLOR_HINT)
    photo = read_photo(label_path.with_suffix(".jpg"), raw.shape, size)
    return map_values(raw, CMP_FACADES, size), photo


def _split_meta(split: str, parts: list[str], seed: int) -> dict[str, object]:
    meta: dict[str, object] = {"split": split, "parts": parts}
    if split in ("train", "val"):
        meta.update(split_seed=seed, val_fraction=VAL_FRACTION, split_rule="sha256(f'{seed}:{stem}') rank")
    return meta


@register_source("facades", paired=True)
def facades_source(cfg: DataConfig) -> DataSource:
    """CMP Facade label maps from ``base/`` and/or ``extended/`` (``cfg.seed`` drives the train/val split); their
    photos are the ``cmp_*.jpg`` next to each PNG.

    A pair is bad when its photo is missing or its size differs from the map's (an error listing all of them, or
    skipped with ``skip_bad``). Labels are resized with PIL NEAREST, photos with PIL BICUBIC (antialiased).
    """
    size = out_size(cfg.size, "facades", DEFAULT_SIZE)
    _check_classes(cfg.classes, "facades")
    base = require_root(cfg.root or None, "facades", f"the folder holding {LAYOUT}")
    files, split, parts = _cmp_files(base, cfg.split or None, cfg.seed)
    meta = {"size": size, **_split_meta(split, parts, cfg.seed)}

    def build() -> LabelDataset:
        return decode_to_dataset("facades", base, files, partial(read_cmp_labels, size=size), CMP_FACADES,
                                 what="label maps", skip_bad=cfg.skip_bad,
                                 meta={"format": "CMP label PNGs (values 1..12 -> classes 0..11)", **meta})

    def build_pairs() -> LabelDataset:
        return decode_to_dataset("facades", base, files, partial(_decode_pair, size=size), CMP_FACADES,
                                 what="photo/label pairs", skip_bad=cfg.skip_bad,
                                 meta={"format": "CMP label PNGs + photos", **meta}, photos=True)

    config: dict[str, object] = {"size": size, "classes": CMP_FACADES.name, "split": split, "skip_bad": cfg.skip_bad}
    if split in ("train", "val"):
        config["seed"] = cfg.seed
    return DataSource("facades", base, tuple(files), config, build, build_pairs)


@register_source("facades-pix2pix", paired=True)
def facades_pix2pix_source(cfg: DataConfig) -> DataSource:
    """Facade label maps decoded from pix2pix AB jpgs, with the left halves as photos (``seed`` is unused: the
    folders are the splits)."""
    _check_classes(cfg.classes, "facades-pix2pix")
    return ab_source(cfg, "facades-pix2pix", size=out_size(cfg.size, "facades-pix2pix", DEFAULT_SIZE),
                     decode_label=decode_facades_colors, class_set=PIX2PIX_FACADES, classes=CMP_FACADES.name,
                     palette_note="measured colour")
