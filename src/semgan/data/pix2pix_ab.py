"""pix2pix's AB images (photo left, colour label right, width = 2 x height), shared by ``facades-pix2pix`` and
``cityscapes-pix2pix``: listing by split folder, splitting and decoding, and the source both datasets make.

The pix2pix datasets (Isola et al. 2017, ``datasets/download_pix2pix_dataset.sh`` in
junyanz/pytorch-CycleGAN-and-pix2pix) store each pair as one jpg in ``{train,val,test}/<n>.jpg``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from semgan.config import DataConfig
from semgan.data.cache import DataSource
from semgan.data.classes import ClassSet
from semgan.data.dataset import LabelDataset
from semgan.data.decode import BadFileError, decode_to_dataset, resize_labels, resize_photo
from semgan.data.files import list_files, require_root
from semgan.errors import SemGANError
from semgan.labels import open_image

AB_SPLITS = ("train", "val", "test")

#: (h, h, 3) uint8 colours of a label half -> (h, h) uint8 class indices, at native resolution.
ColorDecoder = Callable[[np.ndarray], np.ndarray]


def ab_files(root: Path, split: str | None, dataset: str) -> tuple[list[Path], str]:
    """The AB images of ``split`` (``train`` by default, or ``all`` = every split folder present).

    Returns:
        files: ``root/<split>/*.jpg`` (also ``.jpeg``/``.png``), in natural order, split after split.
        split: the split name used.
    """
    split = split or "train"
    layout = f"pix2pix AB images in {root}/{{{','.join(AB_SPLITS)}}}/<n>.jpg"
    if split == "all":
        parts = [s for s in AB_SPLITS if (root / s).is_dir()]
        if not parts:
            raise SemGANError(f"{dataset}: no split folder ({', '.join(AB_SPLITS)}) under {root}; expected {layout}")
    elif split in AB_SPLITS:
        parts = [split]
    else:
        raise SemGANError(f"{dataset}: unknown split {split!r}; expected one of: {', '.join(AB_SPLITS)}, all")
    files: list[Path] = []
    for part in parts:
        files += list_files(root / part, ["*.jpg", "*.jpeg", "*.png"], what=layout)
    return files, split


def open_ab(path: Path) -> tuple[Image.Image, Image.Image]:
    """Split a pix2pix AB image (photo left, label right; width = 2 x height) into its RGB halves.

    Raises:
        BadFileError: unreadable file, or a width that is not twice the height.
    """
    try:
        img = open_image(path)
    except SemGANError as exc:
        raise BadFileError(str(exc)) from None
    w, h = img.size
    if w != 2 * h:
        raise BadFileError(f"size {w}x{h} is not a pix2pix AB pair (width = 2 x height, photo left, label right)")
    img = img.convert("RGB")
    return img.crop((0, 0, h, h)), img.crop((h, 0, w, h))


def decode_ab_labels(path: Path, decode_label: ColorDecoder, size: int | None) -> np.ndarray:
    """The right half of one AB image decoded to (size, size) uint8 labels (``None``: native size)."""
    _, b = open_ab(path)
    return resize_labels(decode_label(np.asarray(b, dtype=np.uint8)), size)


def decode_ab_pair(path: Path, decode_label: ColorDecoder, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """One AB image as (size, size) uint8 labels (right half) and its (3, size, size) uint8 photo (left half,
    bicubic)."""
    a, b = open_ab(path)
    return resize_labels(decode_label(np.asarray(b, dtype=np.uint8)), size), resize_photo(a, size)


def ab_source(
    cfg: DataConfig,
    dataset: str,
    *,
    size: int | None,
    decode_label: ColorDecoder,
    class_set: ClassSet,
    classes: str,
    palette_note: str,
) -> DataSource:
    """The source of a pix2pix AB dataset: ``cfg.root/<split>/*.jpg``, labels decoded by ``decode_label``.

    Args:
        cfg: the data section (``root``, ``split``, ``skip_bad``; ``seed`` is unused: the folders are the splits).
        dataset: the dataset's name.
        size: output size (``None``: native).
        decode_label: decodes a label half (picklable: a module-level function or a ``partial`` of one).
        class_set: the class names and palette of the result.
        classes: the class-set name the cache key records.
        palette_note: names the palette decoded against, in ``meta["format"]``.
    """
    base = require_root(cfg.root or None, dataset, "the folder holding pix2pix's train/, val/ (and test/) AB jpgs")
    files, split = ab_files(base, cfg.split or None, dataset)
    meta = {
        "format": f"pix2pix AB jpgs, right half decoded by nearest {palette_note} (YCbCr 1, .25, .25)",
        "split": split,
        "size": size,
    }

    def build(photos: bool) -> LabelDataset:
        decode = partial(decode_ab_pair if photos else decode_ab_labels, decode_label=decode_label, size=size)
        return decode_to_dataset(dataset, base, files, decode, class_set, what="AB images", skip_bad=cfg.skip_bad,
                                 meta=meta, photos=photos)

    config: dict[str, object] = {"size": size, "classes": classes, "split": split, "skip_bad": cfg.skip_bad}
    return DataSource(dataset, base, tuple(files), config, partial(build, False), partial(build, True))
