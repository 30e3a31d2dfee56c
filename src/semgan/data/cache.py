"""Prepare once, load fast: the on-disk cache of decoded datasets.

One folder per (dataset, source root, arguments), ``<cache root>/data/<dataset>-<size>-<hash>/`` under
:func:`semgan.io.cache_root`, holding ``labels.npy`` (uint8, read with ``allow_pickle=False``) and
``manifest.json``. A cache is *valid* when the manifest matches the current source: cache format, package
version, dataset name, source root, file count, the content hash of the source files (relative names, byte sizes
and mtimes) and the arguments (size, class set, split, ...), and the array matches its recorded SHA-256. Loaders
use a valid cache, build and write one when none exists, and rebuild a stale one with a warning that says what
changed. ``SEMGAN_CACHE=off`` disables caching.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

import semgan
from semgan.data.dataset import LabelDataset
from semgan.data.files import relative_name
from semgan.errors import SemGANError
from semgan.io import atomic_write, cache_root

log = logging.getLogger("semgan.data")

#: Bumped whenever the cache layout or the decoding changes in a way the package version would not show.
CACHE_FORMAT = 1


@dataclass(frozen=True, eq=False)
class DataSource:
    """Everything a file-backed dataset is built from, gathered without decoding anything.

    Attributes:
        name: registered dataset name.
        root: the source root (absolute).
        files: every source file the maps are decoded from, in dataset order (hashed for staleness).
        config: every argument that changes the output (size, class set, split, skip_bad, ...), JSON-able.
        build: decodes the files into the dataset (what the cache holds).
        build_pairs: decodes the maps with their photos, for pix2pix (never cached); ``None`` for a dataset
            without photos.
    """

    name: str
    root: Path
    files: tuple[Path, ...]
    config: dict[str, object]
    build: Callable[[], LabelDataset]
    build_pairs: Callable[[], LabelDataset] | None = None


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


def prepare_source(source: DataSource, cache_dir: str | os.PathLike[str] | None = None, *, force: bool = False) -> Path:
    """Decode ``source`` into its cache entry unless a valid one exists (``force``: rebuild anyway).

    Returns:
        The cache folder, holding ``labels.npy`` and ``manifest.json``.

    Raises:
        SemGANError: caching is off (``SEMGAN_CACHE=off`` and no ``cache_dir``), or the entry cannot be written.
    """
    name = source.name
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
