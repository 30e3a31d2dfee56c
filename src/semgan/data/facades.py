"""CMP Facade Database (Tyleček & Šára, GCPR 2013) label maps and photos, and pix2pix's ``facades`` AB jpgs.

Registered datasets (arguments as in :func:`semgan.data.load_dataset`; ``classes`` must be ``None`` or
``"cmp12"``, the only class set):

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
:func:`load_facade_pairs` also returns the photos for a labels -> photo (pix2pix) stage.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from semgan.data.base import LabelDataset
from semgan.data.classes import CMP_FACADES, PIX2PIX_FACADES
from semgan.data.prepare import (
    RESIZE_CONVENTION,
    DataSource,
    ab_files,
    check_size,
    decode_ab_set,
    decode_all,
    label_dataset,
    list_files,
    map_values,
    nearest_color,
    read_index_values,
    read_photo,
    register_source,
    relative_name,
    require_root,
    skipped_meta,
    train_val_split,
)
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


def _check_classes(classes: str | None, dataset: str) -> None:
    if classes not in (None, CMP_FACADES.name):
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


def _decode_pair(label_path: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    raw = read_index_values(label_path, hint=_COLOR_HINT)
    photo = read_photo(label_path.with_suffix(".jpg"), raw.shape, size)
    return map_values(raw, CMP_FACADES, size), photo


def _split_meta(split: str, parts: list[str], seed: int) -> dict[str, object]:
    meta: dict[str, object] = {"split": split, "parts": parts}
    if split in ("train", "val"):
        meta.update(split_seed=seed, val_fraction=VAL_FRACTION, split_rule="sha256(f'{seed}:{stem}') rank")
    return meta


@register_source("facades")
def facades_source(
    *, root: str | None, size: int | None, classes: str | None, split: str | None, seed: int, skip_bad: bool
) -> DataSource:
    """CMP Facade label maps from ``base/`` and/or ``extended/`` (``seed`` drives the train/val split)."""
    check_size(size, "facades")
    _check_classes(classes, "facades")
    out_size = DEFAULT_SIZE if size is None else size
    base = require_root(root, "facades", f"the folder holding {LAYOUT}")
    files, split_name, parts = _cmp_files(base, split, seed)

    def build() -> LabelDataset:
        maps, kept, skipped = decode_all(
            files,
            partial(read_cmp_labels, size=out_size),
            name_of=lambda p: relative_name(p, base),
            what="label maps",
            skip_bad=skip_bad,
            dataset="facades",
        )
        names = [relative_name(files[i], base) for i in kept]
        meta = {
            "source": str(base),
            "format": "CMP label PNGs (values 1..12 -> classes 0..11)",
            "size": out_size,
            "resize": RESIZE_CONVENTION,
            **_split_meta(split_name, parts, seed),
            **skipped_meta(skipped),
        }
        return label_dataset("facades", maps, names, CMP_FACADES, meta)

    config: dict[str, object] = {
        "size": out_size,
        "classes": CMP_FACADES.name,
        "split": split_name,
        "skip_bad": skip_bad,
    }
    if split_name in ("train", "val"):
        config["seed"] = seed
    return DataSource("facades", base, tuple(files), config, build)


def load_facade_pairs(
    root: str | os.PathLike[str],
    *,
    size: int = DEFAULT_SIZE,
    split: str | None = None,
    seed: int = 0,
    skip_bad: bool = False,
) -> LabelDataset:
    """CMP label maps with their photos (``cmp_*.jpg`` next to each PNG), for labels -> photo. Not cached.

    Each pair is checked for equal photo and label sizes; a missing photo or a size mismatch is a bad pair
    (an error listing all of them, or skipped with ``skip_bad``).

    Args:
        root: the folder holding ``base/`` and/or ``extended/``.
        size: labels resized with PIL NEAREST, photos with PIL BICUBIC (antialiased), both to size x size.
        split: as for the ``facades`` dataset.
        seed: seed of the ``train``/``val`` split.
        skip_bad: skip bad pairs instead of failing.

    Returns:
        The maps, (N, size, size) uint8 in 0..11, with their ``photos`` (N, 3, size, size) uint8.
    """
    check_size(size, "facades")
    base = require_root(root, "facades", f"the folder holding {LAYOUT}")
    files, split_name, parts = _cmp_files(base, split, seed)
    decoded, kept, skipped = decode_all(
        files,
        partial(_decode_pair, size=size),
        name_of=lambda p: relative_name(p, base),
        what="photo/label pairs",
        skip_bad=skip_bad,
        dataset="facades",
    )
    names = [relative_name(files[i], base) for i in kept]
    meta = {
        "source": str(base),
        "format": "CMP label PNGs + photos",
        "size": size,
        "resize": RESIZE_CONVENTION,
        "photo_resize": "PIL BICUBIC",
        **_split_meta(split_name, parts, seed),
        **skipped_meta(skipped),
    }
    return label_dataset("facades", [d[0] for d in decoded], names, CMP_FACADES, meta, photos=[d[1] for d in decoded])


def _decode_ab_set(
    base: Path, files: list[Path], size: int, split: str, skip_bad: bool, photos: bool
) -> LabelDataset:
    return decode_ab_set("facades-pix2pix", base, files, decode_facades_colors, PIX2PIX_FACADES, size=size,
                         split=split, skip_bad=skip_bad, photos=photos, palette_note="measured colour")


@register_source("facades-pix2pix")
def facades_pix2pix_source(
    *, root: str | None, size: int | None, classes: str | None, split: str | None, seed: int, skip_bad: bool
) -> DataSource:
    """Facade label maps decoded from pix2pix AB jpgs (``seed`` is unused: the folders are the splits)."""
    del seed
    check_size(size, "facades-pix2pix")
    _check_classes(classes, "facades-pix2pix")
    out_size = DEFAULT_SIZE if size is None else size
    base = require_root(root, "facades-pix2pix", "the folder holding pix2pix's train/, val/, test/ AB jpgs")
    files, split_name = ab_files(base, split, "facades-pix2pix")

    def build() -> LabelDataset:
        return _decode_ab_set(base, files, out_size, split_name, skip_bad, photos=False)

    config = {"size": out_size, "classes": CMP_FACADES.name, "split": split_name, "skip_bad": skip_bad}
    return DataSource("facades-pix2pix", base, tuple(files), config, build)


def load_facades_pix2pix_pairs(
    root: str | os.PathLike[str],
    *,
    size: int = DEFAULT_SIZE,
    split: str | None = None,
    skip_bad: bool = False,
) -> LabelDataset:
    """Decoded label maps with the left-half photos of pix2pix ``facades`` AB jpgs. Not cached."""
    check_size(size, "facades-pix2pix")
    base = require_root(root, "facades-pix2pix", "the folder holding pix2pix's train/, val/, test/ AB jpgs")
    files, split_name = ab_files(base, split, "facades-pix2pix")
    return _decode_ab_set(base, files, size, split_name, skip_bad, photos=True)
