"""Cityscapes label maps (Cordts et al. 2016), from the official layout or from pix2pix's AB jpgs.

Registered datasets (arguments as in :func:`semgan.data.load_dataset`; ``seed`` is unused):

- ``cityscapes``: ``root`` holds the official layout ``gtFine/{split}/{city}/*_gtFine_labelIds.png``
  (mode L, labelIds 0..33; torchvision's layout). ``split``: ``train`` (default, 2975), ``val`` (500),
  ``test`` (1525, labels not public) or ``trainval``. Cities and files in sorted (natural) order.
- ``cityscapes-pix2pix``: ``root`` holds pix2pix's ``{train,val}/<n>.jpg`` (512x256; left photo, right
  ``gtFine_color`` resized to 256x256). The right half is decoded by nearest Cityscapes colour in YCbCr with
  weights (1, 0.25, 0.25); the 29 distinct colours decode to labelIds as in
  :func:`semgan.data.classes.cityscapes_colors` (black -> unlabeled, so void in every set but ``full34``).

``classes`` picks the class set: ``cityscapes22`` (default, our documented reading of the paper's "22 main
classes"), ``full34``, ``train19`` (trainIds 0..18, void = 19) or ``categories8``. Maps are resized to
``size x size`` (default 128, as in the paper) with PIL NEAREST on the index map, squashing 2048x1024 to a
square as pix2pix does.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from semgan.data.base import LabelDataset
from semgan.data.classes import ClassSet, cityscapes_class_set, cityscapes_colors
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
    require_dir,
    require_root,
    skipped_meta,
)
from semgan.errors import SemGANError

DEFAULT_SIZE = 128
SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "val": ("val",),
    "test": ("test",),
    "trainval": ("train", "val"),
}
LAYOUT = "the official Cityscapes layout gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png"
_COLOR_HINT = (
    "Cityscapes *_gtFine_labelIds.png files are mode L; colour maps (*_gtFine_color.png, pix2pix jpgs) "
    "must be decoded by nearest colour instead: use the 'cityscapes-pix2pix' dataset for AB jpgs, or the "
    "'folder' dataset with encoding 'color'"
)


def read_cityscapes_labels(
    path: str | os.PathLike[str], classes: str | ClassSet | None = None, size: int | None = None
) -> np.ndarray:
    """Read one ``*_gtFine_labelIds.png`` into class indices.

    Args:
        path: the labelIds PNG (mode L, values 0..33).
        classes: class-set name or object (default ``cityscapes22``).
        size: resize to size x size with PIL NEAREST (``None``: native 2048x1024 -> (1024, 2048)).

    Returns:
        (H, W) uint8 class indices.

    Raises:
        BadFileError: unreadable file, a colour image, or values outside 0..33.
    """
    class_set = classes if isinstance(classes, ClassSet) else cityscapes_class_set(classes)
    raw = read_index_values(Path(path), hint=_COLOR_HINT)
    return map_values(raw, class_set, size)


def decode_cityscapes_colors(rgb: np.ndarray, classes: str | ClassSet | None = None) -> np.ndarray:
    """(H, W, 3) uint8 ``gtFine_color`` colours -> (H, W) uint8 class indices, by nearest colour in YCbCr."""
    class_set = classes if isinstance(classes, ClassSet) else cityscapes_class_set(classes)
    colors, label_ids = cityscapes_colors()
    nearest, _ = nearest_color(rgb, colors)
    return class_set.lut()[label_ids[nearest]].astype(np.uint8)


def _split_parts(split: str | None) -> tuple[str, tuple[str, ...]]:
    name = split or "train"
    if name not in SPLITS:
        raise SemGANError(f"cityscapes: unknown split {name!r}; expected one of: {', '.join(SPLITS)}")
    return name, SPLITS[name]


def _label_files(root: Path, parts: tuple[str, ...]) -> list[Path]:
    require_dir(root / "gtFine", f"{LAYOUT} (unzip gtFine_trainvaltest.zip into {root})")
    files: list[Path] = []
    for part in parts:
        files += list_files(root / "gtFine" / part, ["*/*_gtFine_labelIds.png"], what=LAYOUT.replace("{split}", part))
    return files


def _photo_path(root: Path, label_path: Path) -> Path:
    # gtFine/{split}/{city}/{stem}_gtFine_labelIds.png -> leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png
    split, city = label_path.parent.parent.name, label_path.parent.name
    stem = label_path.name[: -len("_gtFine_labelIds.png")]
    return root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"


def _decode_pair(pair: tuple[Path, Path], class_set: ClassSet, size: int) -> tuple[np.ndarray, np.ndarray]:
    label_path, photo_path = pair
    raw = read_index_values(label_path, hint=_COLOR_HINT)
    return map_values(raw, class_set, size), read_photo(photo_path, raw.shape, size)


@register_source("cityscapes")
def cityscapes_source(
    *, root: str | None, size: int | None, classes: str | None, split: str | None, seed: int, skip_bad: bool
) -> DataSource:
    """Cityscapes label maps from ``gtFine/{split}/{city}/*_gtFine_labelIds.png`` (``seed`` is unused)."""
    del seed  # the official splits need none
    check_size(size, "cityscapes")
    out_size = DEFAULT_SIZE if size is None else size
    class_set = cityscapes_class_set(classes)
    split_name, parts = _split_parts(split)
    base = require_root(root, "cityscapes", f"the folder holding gtFine/, in {LAYOUT}")
    files = _label_files(base, parts)

    def build() -> LabelDataset:
        maps, kept, skipped = decode_all(
            files,
            partial(read_cityscapes_labels, classes=class_set, size=out_size),
            name_of=lambda p: relative_name(p, base),
            what="label maps",
            skip_bad=skip_bad,
            dataset="cityscapes",
        )
        names = [relative_name(files[i], base) for i in kept]
        meta = {
            "source": str(base),
            "format": "gtFine labelIds",
            "split": split_name,
            "size": out_size,
            "resize": RESIZE_CONVENTION,
            **skipped_meta(skipped),
        }
        return label_dataset("cityscapes", maps, names, class_set, meta)

    config = {"size": out_size, "classes": class_set.name, "split": split_name, "skip_bad": skip_bad}
    return DataSource("cityscapes", base, tuple(files), config, build)


def load_cityscapes_pairs(
    root: str | os.PathLike[str],
    *,
    size: int = DEFAULT_SIZE,
    classes: str | None = None,
    split: str | None = None,
    skip_bad: bool = False,
) -> LabelDataset:
    """Label maps with their ``leftImg8bit`` photos, for a labels -> photo (pix2pix) stage. Not cached.

    Each pair is checked for equal photo and label sizes; a missing or mismatched photo is a bad pair.

    Returns:
        The maps with their ``photos``, (N, 3, size, size) uint8, resized bicubic (antialiased).
    """
    check_size(size, "cityscapes")
    class_set = cityscapes_class_set(classes)
    split_name, parts = _split_parts(split)
    base = require_root(root, "cityscapes", f"the folder holding gtFine/ and leftImg8bit/, in {LAYOUT}")
    files = _label_files(base, parts)
    pairs = [(f, _photo_path(base, f)) for f in files]
    decoded, kept, skipped = decode_all(
        pairs,
        partial(_decode_pair, class_set=class_set, size=size),
        name_of=lambda p: relative_name(p[0], base),
        what="photo/label pairs",
        skip_bad=skip_bad,
        dataset="cityscapes",
    )
    names = [relative_name(files[i], base) for i in kept]
    meta = {
        "source": str(base),
        "format": "gtFine labelIds + leftImg8bit",
        "split": split_name,
        "size": size,
        "resize": RESIZE_CONVENTION,
        "photo_resize": "PIL BICUBIC",
        **skipped_meta(skipped),
    }
    return label_dataset("cityscapes", [d[0] for d in decoded], names, class_set, meta,
                         photos=[d[1] for d in decoded])


@register_source("cityscapes-pix2pix")
def cityscapes_pix2pix_source(
    *, root: str | None, size: int | None, classes: str | None, split: str | None, seed: int, skip_bad: bool
) -> DataSource:
    """Cityscapes label maps decoded from pix2pix AB jpgs (right half) by nearest colour; no ``seed``."""
    del seed
    check_size(size, "cityscapes-pix2pix")
    out_size = DEFAULT_SIZE if size is None else size
    class_set = cityscapes_class_set(classes)
    base = require_root(root, "cityscapes-pix2pix", "the folder holding pix2pix's train/ and val/ AB jpgs")
    files, split_name = ab_files(base, split, "cityscapes-pix2pix")

    def build() -> LabelDataset:
        return _decode_ab_set(base, files, class_set, out_size, split_name, skip_bad, photos=False)

    config = {"size": out_size, "classes": class_set.name, "split": split_name, "skip_bad": skip_bad}
    return DataSource("cityscapes-pix2pix", base, tuple(files), config, build)


def _decode_ab_set(
    base: Path, files: list[Path], class_set: ClassSet, size: int, split: str, skip_bad: bool, photos: bool
) -> LabelDataset:
    return decode_ab_set("cityscapes-pix2pix", base, files, partial(decode_cityscapes_colors, classes=class_set),
                         class_set, size=size, split=split, skip_bad=skip_bad, photos=photos, palette_note="colour")


def load_cityscapes_pix2pix_pairs(
    root: str | os.PathLike[str],
    *,
    size: int = DEFAULT_SIZE,
    classes: str | None = None,
    split: str | None = None,
    skip_bad: bool = False,
) -> LabelDataset:
    """Decoded label maps with the left-half photos of pix2pix ``cityscapes`` AB jpgs. Not cached."""
    check_size(size, "cityscapes-pix2pix")
    class_set = cityscapes_class_set(classes)
    base = require_root(root, "cityscapes-pix2pix", "the folder holding pix2pix's train/ and val/ AB jpgs")
    files, split_name = ab_files(base, split, "cityscapes-pix2pix")
    return _decode_ab_set(base, files, class_set, size, split_name, skip_bad, photos=True)
