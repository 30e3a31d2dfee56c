"""Decoding source files into label maps, and the one path from decoded files to a dataset.

Conventions shared by every file-backed loader (Cityscapes, CMP Facades, pix2pix AB jpgs, user folders):

- **Resizing** label maps: PIL ``NEAREST`` on the (H, W) index map, which samples pixel *centres* (32 -> 4 px
  picks 4, 12, 20, 28; ``torch.nn.functional.interpolate(mode="nearest")`` would pick 0, 8, 16, 24, i.e.
  ``"nearest-exact"`` is the torch equivalent). ``size`` gives a square ``size x size`` map, squashing the
  aspect ratio as pix2pix does. Values are checked at full resolution *before* resizing, so a bad value is
  found even where the resize would not sample it. Colours are decoded at full resolution, then the index map
  is resized; colours and one-hot maps are never interpolated.
- **Bad files**: every file is decoded and every problem collected; the default is one
  :class:`~semgan.errors.SemGANError` listing all offending files (the first ``MAX_LISTED`` printed);
  ``skip_bad=True`` drops them, logs a warning with the count and records them in ``meta["skipped"]``.

A dataset module lists its files and says how to decode one; :func:`decode_to_dataset` does the rest.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
from PIL import Image

from semgan.data.classes import INVALID, ClassSet, describe_values
from semgan.data.dataset import LabelDataset, label_dataset
from semgan.data.files import check_memory, relative_name
from semgan.errors import SemGANError
from semgan.labels import check_lossless, check_pixels, open_image

log = logging.getLogger("semgan.data")

T = TypeVar("T")
R = TypeVar("R")

#: How many offending files an error message lists before "... and N more".
MAX_LISTED = 20
#: The one label-resize convention (see the module docstring).
RESIZE_CONVENTION = "PIL NEAREST on the index map (pixel centres), square, aspect ratio squashed"
#: The one photo-resize convention of paired data (antialiased).
PHOTO_RESIZE = "PIL BICUBIC"
#: Chroma down-weighted: JPEG 4:2:0 subsampling smears chroma across label edges far more than luma.
YCBCR_WEIGHTS = (1.0, 0.25, 0.25)


class BadFileError(SemGANError):
    """A problem with one source file; collected over all files before it is reported (or skipped)."""


# --------------------------------------------------------------------------------------------- one file


def read_index_values(path: Path, *, hint: str) -> np.ndarray:
    """Raw pixel values of an index map: (H, W) uint8, or int32 for 16/32-bit files.

    Args:
        path: a PNG of mode L or P (pixel value = class value; a P palette is ignored), or I/I;16.
        hint: what to do instead when the file holds colours (mode RGB/RGBA/...), appended to that error.

    Raises:
        BadFileError: unreadable or truncated file, or a colour image.
    """
    try:
        img = open_image(path)
        check_lossless(img, path)
    except SemGANError as exc:
        raise BadFileError(str(exc)) from None
    if img.mode in ("L", "P"):
        return np.asarray(img, dtype=np.uint8)
    if img.mode == "1":
        return np.asarray(img, dtype=np.uint8)  # bilevel: 0/1
    if img.mode.startswith("I"):
        return np.asarray(img).astype(np.int32)
    raise BadFileError(f"mode-{img.mode} image where an index map (mode L or P) was expected; {hint}")


def check_values(raw: np.ndarray, class_set: ClassSet) -> None:
    """Check that every value in ``raw`` is accepted by ``class_set`` (at full resolution).

    Raises:
        BadFileError: naming every value present that the class set does not accept.
    """
    if not raw.size:
        return
    valid = class_set.valid_values()
    lo, hi = int(raw.min()), int(raw.max())
    # Fast path: min/max are vectorised and cheap, and every built-in set accepts a contiguous range.
    if valid[-1] - valid[0] + 1 == len(valid) and valid[0] <= lo and hi <= valid[-1]:
        return
    flat = raw.reshape(-1)
    if lo < 0:
        raise BadFileError(f"negative values {describe_values(sorted(set(flat[flat < 0].tolist())))}")
    # bincount suits bytes; 16/32-bit maps may hold huge values, so those go through unique.
    present = np.flatnonzero(np.bincount(flat, minlength=256)) if raw.dtype == np.uint8 else np.unique(flat)
    lut = class_set.lut()
    bad = [int(v) for v in present if v > 255 or lut[v] == INVALID]
    if bad:
        raise BadFileError(
            f"values {describe_values(bad)} out of range; expected {class_set.source} "
            f"(accepted: {describe_values(valid)})"
        )


def map_values(raw: np.ndarray, class_set: ClassSet, size: int | None = None) -> np.ndarray:
    """Source values -> class indices through ``class_set``, optionally resized (PIL NEAREST).

    Values are checked at full resolution; 8-bit maps are then resized before the table lookup, which is
    equivalent (nearest neighbour only samples pixels) and much cheaper.

    Args:
        raw: (H, W) source values (uint8, or int32 from 16-bit files).
        class_set: the value -> class table.
        size: resize to size x size (``None``: keep the size).

    Returns:
        (H, W) or (size, size) uint8 class indices.

    Raises:
        BadFileError: naming every value present that the class set does not accept.
    """
    check_values(raw, class_set)
    lut = class_set.lut()
    if raw.dtype == np.uint8:
        return lut[resize_labels(raw, size)].astype(np.uint8)
    return resize_labels(lut[raw].astype(np.uint8), size)


def resize_labels(labels: np.ndarray, size: int | None) -> np.ndarray:
    """(H, W) uint8 -> (size, size) uint8 with PIL NEAREST (pixel centres); ``None`` keeps the size.

    >>> resize_labels(np.arange(32, dtype=np.uint8)[None].repeat(32, 0), 4)[0].tolist()
    [4, 12, 20, 28]
    """
    if size is None or labels.shape == (size, size):
        return labels
    return np.asarray(Image.fromarray(labels).resize((size, size), Image.Resampling.NEAREST))


def resize_photo(
    img: Image.Image, size: int | None, resample: Image.Resampling = Image.Resampling.BICUBIC
) -> np.ndarray:
    """A photo as (3, size, size) uint8, resized with an antialiased filter (bicubic by default)."""
    img = img.convert("RGB")
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), resample)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()


def read_photo(path: Path, label_shape: tuple[int, int], size: int | None) -> np.ndarray:
    """Read the photo of a photo/label pair as (3, size, size) uint8, checking it has the label map's size.

    JPEGs are decoded at a reduced scale first when that still leaves at least ``size`` pixels per side
    (PIL ``draft``, DCT-domain downscaling, as ``Image.thumbnail`` does); this cuts decoding time several-fold.

    Args:
        path: the photo.
        label_shape: (H, W) of the label map at full resolution.
        size: output size (``None``: native).

    Raises:
        BadFileError: missing or unreadable photo, or a size different from the label map's.
    """
    if not path.is_file():
        raise BadFileError(f"photo not found: {path}")
    try:
        img = Image.open(path)
        check_pixels(img, path)
        w, h = img.size
        if (h, w) != label_shape:
            raise BadFileError(
                f"photo {path.name} is {w}x{h} but the label map is {label_shape[1]}x{label_shape[0]}; "
                "expected equal sizes"
            )
        if size is not None and img.format == "JPEG":
            img.draft("RGB", (size, size))
        img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:  # as in labels.open_image
        raise BadFileError(f"cannot read image {path}: {exc}") from None
    except SemGANError as exc:  # over the pixel budget
        raise BadFileError(str(exc)) from None
    return resize_photo(img, size)


_RGB_TO_YCBCR = np.array(  # JPEG (JFIF / BT.601 full range); the +128 chroma offsets cancel in differences
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float64
)


def nearest_color(
    rgb: np.ndarray,
    palette: np.ndarray,
    *,
    space: str = "ycbcr",
    weights: Sequence[float] = YCBCR_WEIGHTS,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode a colour label image by nearest palette colour.

    The distance is ``sum_c weights[c] * (x_c - p_c)^2`` in YCbCr (default; weights ``(1, 0.25, 0.25)``
    down-weight chroma, which JPEG 4:2:0 blurs) or in plain RGB (``space="rgb"``, weights ignored).
    Only the distinct colours are compared, so large lossless images cost little more than small ones.

    Args:
        rgb: (H, W, 3) uint8 colour image.
        palette: (K, 3) uint8 class colours.

    Returns:
        indices: (H, W) int64 in [0, K), the nearest colour.
        distance: (H, W) float64, the Euclidean distance to it (weighted in YCbCr).
    """
    if space not in ("ycbcr", "rgb"):
        raise SemGANError(f"colour space must be 'ycbcr' or 'rgb', got {space!r}")
    H, W, _ = rgb.shape
    codes = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    uniq, inverse = np.unique(codes.reshape(-1), return_inverse=True)
    colors = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1).astype(np.float64)  # (U, 3)
    pal = palette.astype(np.float64)  # (K, 3)
    w = np.ones(3)
    if space == "ycbcr":
        colors, pal, w = (
            colors @ _RGB_TO_YCBCR.T,
            pal @ _RGB_TO_YCBCR.T,
            np.asarray(weights, dtype=np.float64),
        )
    d2 = (((colors[:, None, :] - pal[None, :, :]) ** 2) * w).sum(-1)  # (U, K)
    best = d2.argmin(1)
    dist = np.sqrt(d2[np.arange(len(uniq)), best])
    return best[inverse].reshape(H, W), dist[inverse].reshape(H, W)


# ------------------------------------------------------------------------------ many files, bad-file policy

#: Smaller sets decode in-process: starting workers costs more than it saves.
PARALLEL_MIN_ITEMS = 64


def _num_workers(workers: int | None, n: int) -> int:
    if workers is not None:
        return max(1, workers)
    env = os.environ.get("SEMGAN_WORKERS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise SemGANError(f"SEMGAN_WORKERS must be a positive integer, got {env!r}")
        return int(env)
    return min(8, os.cpu_count() or 1) if n >= PARALLEL_MIN_ITEMS else 1


def _call(fn: Callable[[T], R], item: T) -> R | SemGANError:
    """Run ``fn(item)``, returning a per-file SemGANError instead of raising it (module level: picklable)."""
    try:
        return fn(item)
    except SemGANError as exc:
        return exc


def _map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R | SemGANError]:
    """``[_call(fn, item) for item in items]``, in ``workers`` forked processes when that is worth it."""
    if workers > 1 and len(items) > 1 and "fork" in mp.get_all_start_methods():
        try:
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
                chunk = max(1, len(items) // (workers * 8))
                return list(pool.map(partial(_call, fn), items, chunksize=chunk))
        except (OSError, BrokenProcessPool) as exc:  # e.g. no /dev/shm or a killed worker: decode here
            log.warning("parallel decoding failed (%s); decoding in this process", exc)
    return [_call(fn, item) for item in items]


def decode_all(
    items: Sequence[T],
    fn: Callable[[T], R],
    *,
    name_of: Callable[[T], str],
    what: str,
    skip_bad: bool,
    dataset: str,
    workers: int | None = None,
) -> tuple[list[R], list[int], list[dict[str, str]]]:
    """Decode every item, collecting per-file problems instead of stopping at the first.

    Decoding runs in a pool of forked worker processes for large sets: Pillow holds the GIL while it decodes
    PNGs, so threads do not help (measured), and forking avoids re-importing torch in every worker.

    Args:
        items: what to decode (paths, or (label, photo) pairs), in dataset order.
        fn: decodes one item; raises :class:`BadFileError` (or any SemGANError) for a problem with that item.
            Must be picklable (a module-level function or a ``functools.partial`` of one).
        name_of: the name of an item in messages (a path relative to the dataset root).
        what: a plural noun for messages, e.g. ``"label maps"``.
        skip_bad: drop bad items (warning + record) instead of raising.
        dataset: dataset name for messages.
        workers: worker processes (default: ``$SEMGAN_WORKERS``, else the CPU count capped at 8, for sets
            of at least ``PARALLEL_MIN_ITEMS`` items; 1 decodes in this process).

    Returns:
        results: decoded values of the good items, in order.
        kept: their indices into ``items``.
        skipped: ``{"file": name, "reason": message}`` for each bad item (empty unless ``skip_bad``).
    """
    outcomes = _map(fn, items, _num_workers(workers, len(items)))
    results: list[R] = []
    kept: list[int] = []
    bad: list[dict[str, str]] = []
    for i, (item, out) in enumerate(zip(items, outcomes, strict=True)):
        if isinstance(out, SemGANError):
            bad.append({"file": name_of(item), "reason": str(out)})
        else:
            results.append(out)
            kept.append(i)
    if bad and not skip_bad:
        raise SemGANError(
            f"{dataset}: {len(bad)} of {len(items)} {what} are bad; fix or remove them, "
            f"or pass skip_bad=True (--skip-bad) to skip them:\n{format_bad(bad)}"
        )
    if bad:
        log.warning("%s: skipped %d of %d bad %s:\n%s", dataset, len(bad), len(items), what, format_bad(bad))
    if not results:
        raise SemGANError(f"{dataset}: none of the {len(items)} {what} could be used")
    return results, kept, bad


def format_bad(bad: Sequence[dict[str, str]], limit: int = MAX_LISTED) -> str:
    """One ``  file: reason`` line per bad file, at most ``limit`` of them, then a count of the rest."""
    lines = [f"  {b['file']}: {b['reason']}" for b in bad[:limit]]
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more")
    return "\n".join(lines)


def skipped_meta(skipped: list[dict[str, str]]) -> dict[str, object]:
    """The ``meta`` entries that record skipped files."""
    return {"num_skipped": len(skipped), "skipped": skipped}


def _label_path(item: object) -> Path:
    """The label file of an item: the item itself, or the first of a (label, photo) pair."""
    return cast(Path, item[0] if isinstance(item, tuple) else item)


def decode_to_dataset(
    dataset: str,
    root: Path,
    items: Sequence[T],
    decode: Callable[[T], Any],
    class_set: ClassSet,
    *,
    what: str,
    skip_bad: bool,
    meta: Mapping[str, object],
    photos: bool = False,
) -> LabelDataset:
    """Decode every item under the bad-file policy and stack the results into a :class:`LabelDataset`.

    Args:
        dataset: the dataset's name, of the result and in messages.
        root: the source root; each item is named by its label file's path relative to it (in messages and
            ``meta["files"]``).
        items: what to decode, in dataset order: label files, or (label file, photo file) pairs.
        decode: decodes one item (picklable, see :func:`decode_all`) into (H, W) uint8 class indices, or with
            ``photos`` into ``(labels, photo)`` with the photo (3, H, W) uint8.
        class_set: the class names and palette of the result.
        what: a plural noun for messages, e.g. ``"label maps"``.
        skip_bad: drop bad items (warning + ``meta["skipped"]``) instead of raising.
        meta: what the dataset module records (format, size, split, ...); it gains ``source``, ``resize``
            (and ``photo_resize``), the skipped files, ``class_set``, ``num_classes`` and ``files``.
        photos: ``decode`` also returns the photo; the result holds them in ``photos``.
    """
    size = meta.get("size")
    check_memory(len(items), size if isinstance(size, int) else None, photos=photos, dataset=dataset)
    decoded, kept, skipped = decode_all(
        items,
        decode,
        name_of=lambda item: relative_name(_label_path(item), root),
        what=what,
        skip_bad=skip_bad,
        dataset=dataset,
    )
    names = [relative_name(_label_path(items[i]), root) for i in kept]
    full_meta: dict[str, object] = {"source": str(root), **meta, "resize": RESIZE_CONVENTION}
    if photos:
        full_meta["photo_resize"] = PHOTO_RESIZE
    full_meta.update(skipped_meta(skipped))
    if not photos:
        return label_dataset(dataset, decoded, names, class_set, full_meta)
    return label_dataset(dataset, [d[0] for d in decoded], names, class_set, full_meta,
                         photos=[d[1] for d in decoded])
