"""Prepare once, load fast: decoding label files into arrays, the bad-file policy, and the on-disk cache.

Conventions shared by every file-backed loader (Cityscapes, CMP Facades, pix2pix AB jpgs, user folders):

- **File order**: sorted by relative path in natural order (digit runs compared as numbers, so pix2pix's
  ``2.jpg`` comes before ``10.jpg``); never ``os.listdir`` order.
- **Resizing** label maps: PIL ``NEAREST`` on the (H, W) index map, which samples pixel *centres* (32 -> 4 px
  picks 4, 12, 20, 28; ``torch.nn.functional.interpolate(mode="nearest")`` would pick 0, 8, 16, 24, i.e.
  ``"nearest-exact"`` is the torch equivalent). ``size`` gives a square ``size x size`` map, squashing the
  aspect ratio as pix2pix does. Values are checked at full resolution *before* resizing, so a bad value is
  found even where the resize would not sample it. Colours are decoded at full resolution, then the index map
  is resized; colours and one-hot maps are never interpolated.
- **Bad files**: every file is decoded and every problem collected; the default is one
  :class:`~semgan.errors.SemGANError` listing all offending files (the first ``MAX_LISTED`` printed);
  ``skip_bad=True`` drops them, logs a warning with the count and records them in ``meta["skipped"]``.
- **Cache**: one folder per (dataset, source root, arguments) under ``cache_root()``, holding ``labels.npy``
  (uint8, read with ``allow_pickle=False``) and ``manifest.json``. A cache is *valid* when the manifest
  matches the current source: cache format, package version, dataset name, source root, file count, the
  content hash of the source files (relative names, byte sizes and mtimes) and the arguments (size, class set,
  split, ...), and the array matches its recorded SHA-256. Loaders use a valid cache, build and write one when
  none exists, and rebuild a stale one with a warning that says what changed. ``SEMGAN_CACHE=off`` disables
  caching.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

import semgan
from semgan.data import DATASETS
from semgan.data.base import LabelDataset
from semgan.data.classes import INVALID, ClassSet, describe_values
from semgan.errors import SemGANError
from semgan.io import atomic_write
from semgan.labels import check_pixels, open_image
from semgan.registry import Registry

log = logging.getLogger("semgan.data")

T = TypeVar("T")
R = TypeVar("R")

#: How many offending files an error message lists before "... and N more".
MAX_LISTED = 20
#: Bumped whenever the cache layout or the decoding changes in a way the package version would not show.
CACHE_FORMAT = 1
#: The one label-resize convention (see the module docstring).
RESIZE_CONVENTION = "PIL NEAREST on the index map (pixel centres), square, aspect ratio squashed"
#: Chroma down-weighted: JPEG 4:2:0 subsampling smears chroma across label edges far more than luma.
YCBCR_WEIGHTS = (1.0, 0.25, 0.25)

_OFF = ("off", "0", "none", "false", "no")


class BadFileError(SemGANError):
    """A problem with one source file; collected over all files before it is reported (or skipped)."""


# ------------------------------------------------------------------------------------------------ files


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key comparing digit runs as numbers: ``"img2"`` < ``"img10"``.

    >>> sorted(["10.jpg", "2.jpg", "1.jpg"], key=natural_key)
    ['1.jpg', '2.jpg', '10.jpg']
    """
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", text) if p)


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a directory, else a SemGANError naming it and what it should hold."""
    if not path.is_dir():
        state = "is not a directory" if path.exists() else "does not exist"
        raise SemGANError(f"{path} {state}; expected {what}")
    return path


def list_files(folder: Path, patterns: Iterable[str], *, what: str) -> list[Path]:
    """Files under ``folder`` matching any glob pattern, in natural order of relative path.

    Paths with a component starting with ``.`` (hidden folders, e.g. a ``.git`` or a cache) are left out.
    An empty result is an error naming the folder and the patterns.
    """
    require_dir(folder, what)
    found: set[Path] = set()
    for pattern in patterns:
        for path in folder.glob(pattern):
            rel = path.relative_to(folder)
            if path.is_file() and not any(part.startswith(".") for part in rel.parts):
                found.add(path)
    if not found:
        raise SemGANError(f"no files matching {' or '.join(patterns)} under {folder}; expected {what}")
    return sorted(found, key=lambda p: natural_key(p.relative_to(folder).as_posix()))


def relative_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (POSIX separators), or the full path if it lies elsewhere."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------- decoding


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


def stack_maps(maps: Sequence[np.ndarray], names: Sequence[str], dataset: str) -> torch.Tensor:
    """Stack (H, W) uint8 maps into an (N, H, W) uint8 tensor; differing sizes are an error naming them."""
    shapes = {m.shape for m in maps}
    if len(shapes) > 1:
        examples = ", ".join(f"{n} {m.shape[1]}x{m.shape[0]}" for n, m in list(zip(names, maps, strict=True))[:3])
        raise SemGANError(
            f"{dataset}: maps have {len(shapes)} different sizes (e.g. {examples}); pass a size to resize "
            "them to size x size"
        )
    return torch.from_numpy(np.stack(maps)) if maps else torch.zeros(0, 0, 0, dtype=torch.uint8)


def label_dataset(
    name: str, maps: Sequence[np.ndarray], names: list[str], class_set: ClassSet, meta: dict[str, object],
    photos: Sequence[np.ndarray] | None = None,
) -> LabelDataset:
    """Stack decoded maps (and their (3, H, W) photos, for paired data) into a :class:`LabelDataset` with the
    class set's names and palette.

    ``meta`` gains ``class_set``, ``num_classes`` and ``files`` (the kept files' names, in order).
    """
    return LabelDataset(
        name=name,
        labels=stack_maps(maps, names, name),
        class_names=class_set.class_names,
        palette=torch.from_numpy(class_set.palette_array()),
        meta={**meta, "class_set": class_set.name, "num_classes": class_set.num_classes, "files": names},
        photos=None if photos is None else torch.from_numpy(np.stack(photos)),
    )


def train_val_split(
    names: Sequence[str], *, val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[int], list[int]]:
    """A seeded, documented train/val split by hashing names.

    Each name is ranked by SHA-256 of ``f"{seed}:{name}"``; the first ``round(n * val_fraction)`` form val
    (at least one and at most n - 1 when n >= 2).
    Unlike a permutation, the result does not depend on the NumPy version, and adding files (e.g. the extended
    set next to the base set) only moves the rank threshold: on the old files, the old and new val sets are
    nested, never reshuffled.

    Args:
        names: one stable name per item, e.g. the file stem ``"cmp_b0001"``.
        val_fraction: share of items in val, in (0, 1).
        seed: changes the split.

    Returns:
        (train, val) lists of indices into ``names``, each in increasing order.

    >>> train, val = train_val_split([f"cmp_b{i:04d}" for i in range(1, 11)], val_fraction=0.2)
    >>> len(train), len(val), sorted(train + val) == list(range(10))
    (8, 2, True)
    """
    if not 0.0 < val_fraction < 1.0:
        raise SemGANError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    def key(i: int) -> str:  # file names need not be UTF-8
        return hashlib.sha256(f"{seed}:{names[i]}".encode("utf-8", "surrogateescape")).hexdigest()

    rank = sorted(range(len(names)), key=key)
    # At least one item on each side as soon as there are two, so that a small set never yields an empty split.
    n = len(names)
    n_val = min(n - 1, max(1, round(n * val_fraction))) if n >= 2 else 0
    return sorted(rank[n_val:]), sorted(rank[:n_val])


def skipped_meta(skipped: list[dict[str, str]]) -> dict[str, object]:
    """The ``meta`` entries that record skipped files."""
    return {"num_skipped": len(skipped), "skipped": skipped}


# ------------------------------------------------------------------------------------------------ cache


@dataclass(frozen=True, eq=False)
class DataSource:
    """Everything a cached dataset is built from, gathered without decoding anything.

    Attributes:
        name: registered dataset name.
        root: the source root (absolute).
        files: every source file the maps are decoded from, in dataset order (hashed for staleness).
        config: every argument that changes the output (size, class set, split, skip_bad, ...), JSON-able.
        build: decodes the files into the dataset.
    """

    name: str
    root: Path
    files: tuple[Path, ...]
    config: dict[str, object]
    build: Callable[[], LabelDataset]


SourceFactory = Callable[..., DataSource]
#: Datasets that are decoded from files and can be prepared into a cache: name -> source factory taking
#: ``root, size, classes, split, seed, skip_bad`` as keywords.
SOURCES: Registry[SourceFactory] = Registry("file-backed dataset")


def register_source(name: str) -> Callable[[SourceFactory], SourceFactory]:
    """Register a source factory under ``name`` in ``SOURCES``, and a cached loader in ``DATASETS``."""

    def deco(factory: SourceFactory) -> SourceFactory:
        SOURCES.add(name, factory)

        def loader(
            *,
            root: str | None = None,
            size: int | None = None,
            classes: str | None = None,
            split: str | None = None,
            seed: int = 0,
            skip_bad: bool = False,
        ) -> LabelDataset:
            return load_cached(
                factory(root=root, size=size, classes=classes, split=split, seed=seed, skip_bad=skip_bad)
            )

        loader.__name__ = loader.__qualname__ = f"load_{name.replace('-', '_')}"
        loader.__doc__ = f"Load {name!r} through the cache. See ``{factory.__module__}.{factory.__name__}``."
        DATASETS.add(name, loader)
        return factory

    return deco


def require_root(root: str | os.PathLike[str] | None, dataset: str, what: str) -> Path:
    """The source root as an absolute directory path; ``None`` or a missing folder is an error."""
    if root is None:
        raise SemGANError(f"dataset {dataset!r} needs a root: {what}")
    return require_dir(Path(root).expanduser().resolve(), what)


def check_size(size: int | None, dataset: str) -> None:
    """``size`` must be a positive int (or ``None``)."""
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise SemGANError(f"{dataset}: size must be a positive integer (maps are size x size), got {size!r}")


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """Where caches live: ``cache_dir`` if given, else ``$SEMGAN_CACHE``, else ``$XDG_CACHE_HOME/semgan`` or
    ``~/.cache/semgan``; ``None`` when ``SEMGAN_CACHE`` is ``off`` (caching disabled).

    Entries go to ``<cache root>/data/<dataset>-<size>-<hash>/``. A user cache rather than ``<root>/`` because
    dataset folders are often read-only or shared.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("SEMGAN_CACHE", "").strip()
    if env.lower() in _OFF:
        return None
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "semgan"


def cache_entry(source: DataSource, cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The cache folder for ``source`` (a function of dataset, root and arguments); ``None`` if disabled."""
    base = cache_root(cache_dir)
    if base is None:
        return None
    key = json.dumps({"dataset": source.name, "root": str(source.root), "config": source.config}, sort_keys=True)
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    size = source.config.get("size")
    return base / "data" / f"{source.name}-{size if size is not None else 'native'}-{digest}"


def content_hash(files: Sequence[Path], root: Path) -> str:
    """SHA-256 over each file's relative name, byte size and mtime (ns): cheap, changes when a file does."""
    h = hashlib.sha256()
    for path in files:
        st = path.stat()
        line = f"{relative_name(path, root)}\t{st.st_size}\t{st.st_mtime_ns}\n"
        h.update(line.encode("utf-8", "surrogateescape"))  # file names need not be UTF-8
    return "sha256:" + h.hexdigest()


def _source_fields(source: DataSource) -> dict[str, object]:
    """The manifest fields a valid cache must match exactly."""
    return {
        "cache_format": CACHE_FORMAT,
        "semgan_version": semgan.__version__,
        "dataset": source.name,
        "source_root": str(source.root),
        "file_count": len(source.files),
        "content_hash": content_hash(source.files, source.root),
        "config": json.loads(json.dumps(source.config)),  # normalise tuples to lists, as read back
    }


def _array_sha256(labels: np.ndarray) -> str:
    return "sha256:" + hashlib.sha256(np.ascontiguousarray(labels).data).hexdigest()


def _read_entry(entry: Path, name: str, expected: dict[str, object]) -> tuple[LabelDataset | None, str]:
    """Load a cache entry if its manifest matches ``expected`` (:func:`_source_fields`); else ``(None, why)``,
    where ``why`` is "" if there is no cache."""
    manifest_path = entry / "manifest.json"
    if not manifest_path.is_file():
        return None, ""
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"unreadable manifest ({exc})"
    for key, value in expected.items():
        if manifest.get(key) != value:
            if key == "file_count":
                return None, f"source has {value} files, the cache was built from {manifest.get(key)}"
            if key == "content_hash":
                return None, "source files changed (names, sizes or modification times differ)"
            return None, f"{key} differs: cache has {manifest.get(key)!r}, expected {value!r}"
    try:
        labels = np.load(entry / manifest["labels_file"], allow_pickle=False)
    except (OSError, ValueError, KeyError) as exc:
        return None, f"unreadable label array ({exc})"
    if labels.dtype != np.uint8 or labels.ndim != 3 or _array_sha256(labels) != manifest.get("labels_sha256"):
        return None, "label array does not match its manifest (shape, dtype or SHA-256)"
    meta = dict(manifest.get("meta", {}))
    meta["cache"] = str(entry)
    ds = LabelDataset(
        name=name,
        labels=torch.from_numpy(labels),
        class_names=tuple(manifest["class_names"]),
        palette=torch.tensor(manifest["palette"], dtype=torch.uint8).reshape(-1, 3),
        meta=meta,
    )
    return ds, ""


def _write_entry(entry: Path, fields: dict[str, object], ds: LabelDataset, seconds: float) -> None:
    """Write ``labels.npy``, then ``manifest.json``, each atomically: no reader sees a half-written cache.

    ``fields`` were computed *before* decoding, so a source file that changes during the build makes the
    cache stale rather than silently out of date.
    """
    entry.mkdir(parents=True, exist_ok=True)
    labels = ds.labels.numpy()
    manifest = {
        **fields,
        "class_set": ds.meta.get("class_set"),
        "class_names": list(ds.class_names),
        "palette": ds.palette.tolist(),
        "num_maps": len(ds),
        "size": list(ds.resolution),
        "labels_file": "labels.npy",
        "labels_sha256": _array_sha256(labels),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(seconds, 3),
        "meta": ds.meta,
    }
    atomic_write(entry / "labels.npy", lambda f: np.save(f, labels, allow_pickle=False))
    atomic_write(entry / "manifest.json", lambda f: f.write(json.dumps(manifest, indent=1).encode()))


def _build(source: DataSource) -> tuple[LabelDataset, float]:
    t0 = time.perf_counter()
    ds = source.build()
    return ds, time.perf_counter() - t0


def load_cached(source: DataSource, cache_dir: str | os.PathLike[str] | None = None) -> LabelDataset:
    """Load ``source`` from its cache if valid; otherwise decode it and (re)write the cache.

    A stale cache is rebuilt with a warning saying what changed; a cache that cannot be written (read-only
    location) only costs a warning. Skipped files are reported again on every load from cache.
    """
    entry = cache_entry(source, cache_dir)
    fields = _source_fields(source) if entry is not None else {}
    if entry is not None:
        ds, why = _read_entry(entry, source.name, fields)
        if ds is not None:
            num_skipped = ds.meta.get("num_skipped", 0)
            if isinstance(num_skipped, int) and num_skipped:
                log.warning(
                    "%s: the cached set at %s skipped %d bad files (see meta['skipped'])",
                    source.name,
                    entry,
                    num_skipped,
                )
            return ds
        if why:
            log.warning("%s: cache %s is stale (%s); rebuilding from %s", source.name, entry, why, source.root)
    ds, seconds = _build(source)
    ds.meta["cache"] = None
    if entry is not None:
        try:
            _write_entry(entry, fields, ds, seconds)
            ds.meta["cache"] = str(entry)
            log.info("%s: cached %d maps in %s (%.1f s to decode)", source.name, len(ds), entry, seconds)
        except OSError as exc:
            log.warning("%s: could not write the cache %s (%s); loaded from source", source.name, entry, exc)
    return ds


def _source(name: str, **kwargs: object) -> DataSource:
    if name not in SOURCES and name in DATASETS:
        raise SemGANError(
            f"dataset {name!r} is not read from files, so there is nothing to prepare; "
            f"file-backed datasets: {', '.join(SOURCES.names())}"
        )
    return SOURCES.get(name)(**kwargs)


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

    Args:
        name: a dataset in ``SOURCES`` (``cityscapes``, ``cityscapes-pix2pix``, ``facades``,
            ``facades-pix2pix``, ``folder``).
        root: the dataset's source folder.
        size: maps are resized to size x size (``None``: the dataset's default).
        classes: class set (Cityscapes) or classes file (folder).
        split: dataset-specific split.
        seed: seed for seeded splits.
        skip_bad: skip bad files (recorded in the manifest) instead of failing.
        cache_dir: cache root instead of :func:`cache_root`'s default.
        force: rebuild even when a valid cache exists.

    Returns:
        The cache folder, holding ``labels.npy`` and ``manifest.json``.
    """
    source = _source(name, root=str(root), size=size, classes=classes, split=split, seed=seed, skip_bad=skip_bad)
    entry = cache_entry(source, cache_dir)
    if entry is None:
        raise SemGANError("caching is disabled (SEMGAN_CACHE=off); unset it or pass a cache_dir to prepare")
    fields = _source_fields(source)
    if not force:
        ds, why = _read_entry(entry, name, fields)
        if ds is not None:
            log.info("%s: %s is already prepared and up to date", name, entry)
            return entry
        if why:
            log.warning("%s: cache %s is stale (%s); rebuilding", name, entry, why)
    ds, seconds = _build(source)
    try:
        _write_entry(entry, fields, ds, seconds)
    except OSError as exc:
        raise SemGANError(
            f"cannot write the cache {entry}: {exc}; pass another cache_dir or set SEMGAN_CACHE"
        ) from None
    log.info("%s: prepared %d maps in %.1f s -> %s", name, len(ds), seconds, entry)
    return entry


def load_with_cache(
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
    """Like :func:`semgan.data.load_dataset`, with an explicit cache root for file-backed datasets."""
    if name in SOURCES:
        factory = SOURCES.get(name)
        return load_cached(
            factory(root=root, size=size, classes=classes, split=split, seed=seed, skip_bad=skip_bad),
            cache_dir,
        )
    return DATASETS.get(name)(root=root, size=size, classes=classes, split=split, seed=seed, skip_bad=skip_bad)


# --------------------------------------------------------------------------------------- pix2pix AB jpgs

AB_SPLITS = ("train", "val", "test")


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


def decode_ab(
    path: Path, decode_label: Callable[[np.ndarray], np.ndarray], size: int | None, photo: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode one AB image: the right half's colours to (size, size) uint8 labels, the left half to a photo.

    Args:
        path: the AB image (width = 2 x height).
        decode_label: (h, h, 3) uint8 colours -> (h, h) uint8 class indices, at native resolution.
        size: output size (``None``: native).
        photo: also return the left half as (3, size, size) uint8 (bicubic); else ``None``.
    """
    a, b = open_ab(path)
    labels = resize_labels(decode_label(np.asarray(b, dtype=np.uint8)), size)
    return labels, (resize_photo(a, size) if photo else None)


def decode_ab_set(
    dataset: str,
    base: Path,
    files: list[Path],
    decode_label: Callable[[np.ndarray], np.ndarray],
    class_set: ClassSet,
    *,
    size: int,
    split: str,
    skip_bad: bool,
    photos: bool,
    palette_note: str,
) -> LabelDataset:
    """Decode pix2pix AB jpgs (photo left, colour label right) into a dataset, with its photos if asked.

    Shared by ``cityscapes-pix2pix`` and ``facades-pix2pix``; ``palette_note`` names the palette in ``meta``.
    """
    decoded, kept, skipped = decode_all(
        files,
        partial(decode_ab, decode_label=decode_label, size=size, photo=photos),
        name_of=lambda p: relative_name(p, base),
        what="AB images",
        skip_bad=skip_bad,
        dataset=dataset,
    )
    names = [relative_name(files[i], base) for i in kept]
    meta = {
        "source": str(base),
        "format": f"pix2pix AB jpgs, right half decoded by nearest {palette_note} (YCbCr 1, .25, .25)",
        "split": split,
        "size": size,
        "resize": RESIZE_CONVENTION,
        **skipped_meta(skipped),
    }
    return label_dataset(dataset, [d[0] for d in decoded], names, class_set, meta,
                         photos=[d[1] for d in decoded if d[1] is not None] if photos else None)
