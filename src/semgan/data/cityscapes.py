"""Cityscapes label maps (Cordts et al. 2016), from the official layout or from pix2pix's AB jpgs.

Registered datasets (fields of :class:`~semgan.config.DataConfig`; ``seed`` is unused):

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
square as pix2pix does. Both have photos for a labels -> photo (pix2pix) stage
(:func:`semgan.data.pairs_from_config`): ``leftImg8bit`` next to ``gtFine``, or the left half of each AB jpg.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from semgan.config import DataConfig
from semgan.data.cache import DataSource
from semgan.data.classes import ClassSet, cityscapes_class_set, cityscapes_colors
from semgan.data.dataset import LabelDataset
from semgan.data.decode import decode_to_dataset, map_values, nearest_color, read_index_values, read_photo
from semgan.data.files import list_files, out_size, require_dir, require_root
from semgan.data.pix2pix_ab import ab_source
from semgan.data.registry import register_source
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


def _decode_pair(pair: tuple[Path, Path], class_set: ClassSet, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    label_path, photo_path = pair
    raw = read_index_values(label_path, hint=_COLOR_HINT)
    return map_values(raw, class_set, size), read_photo(photo_path, raw.shape, size)


@register_source("cityscapes", paired=True)
def cityscapes_source(cfg: DataConfig) -> DataSource:
    """Cityscapes label maps from ``gtFine/{split}/{city}/*_gtFine_labelIds.png`` (``seed`` is unused: the
    official splits need none); their photos are the matching ``leftImg8bit/{split}/{city}/*_leftImg8bit.png``.

    A pair is bad when its photo is missing or its size differs from the map's. Labels are resized with PIL
    NEAREST, photos with PIL BICUBIC (antialiased).
    """
    size = out_size(cfg.size, "cityscapes", DEFAULT_SIZE)
    class_set = cityscapes_class_set(cfg.classes or None)
    split, parts = _split_parts(cfg.split or None)
    base = require_root(cfg.root or None, "cityscapes", f"the folder holding gtFine/ (and leftImg8bit/), in {LAYOUT}")
    files = _label_files(base, parts)
    meta = {"split": split, "size": size}

    def build() -> LabelDataset:
        return decode_to_dataset("cityscapes", base, files,
                                 partial(read_cityscapes_labels, classes=class_set, size=size), class_set,
                                 what="label maps", skip_bad=cfg.skip_bad, meta={"format": "gtFine labelIds", **meta})

    def build_pairs() -> LabelDataset:
        pairs = [(f, _photo_path(base, f)) for f in files]
        return decode_to_dataset("cityscapes", base, pairs, partial(_decode_pair, class_set=class_set, size=size),
                                 class_set, what="photo/label pairs", skip_bad=cfg.skip_bad,
                                 meta={"format": "gtFine labelIds + leftImg8bit", **meta}, photos=True)

    config: dict[str, object] = {"size": size, "classes": class_set.name, "split": split, "skip_bad": cfg.skip_bad}
    return DataSource("cityscapes", base, tuple(files), config, build, build_pairs)


@register_source("cityscapes-pix2pix", paired=True)
def cityscapes_pix2pix_source(cfg: DataConfig) -> DataSource:
    """Cityscapes label maps decoded from pix2pix AB jpgs (right half) by nearest colour, with the left halves as
    photos (``seed`` is unused: the folders are the splits)."""
    class_set = cityscapes_class_set(cfg.classes or None)
    return ab_source(cfg, "cityscapes-pix2pix", size=out_size(cfg.size, "cityscapes-pix2pix", DEFAULT_SIZE),
                     decode_label=partial(decode_cityscapes_colors, classes=class_set), class_set=class_set,
                     classes=class_set.name, palette_note="colour")
