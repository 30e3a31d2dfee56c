"""Source files: listing in a stable order, naming, the checks on a dataset's root and size, and seeded splits.

Every file-backed loader lists its files here, sorted by relative path in natural order (digit runs compared as
numbers, so pix2pix's ``2.jpg`` comes before ``10.jpg``); never ``os.listdir`` order.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from semgan.errors import SemGANError


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


def require_root(root: str | os.PathLike[str] | None, dataset: str, what: str) -> Path:
    """The source root as an absolute directory path; ``None`` or a missing folder is an error."""
    if root is None:
        raise SemGANError(f"dataset {dataset!r} needs a root: {what}")
    return require_dir(Path(root).expanduser().resolve(), what)


MAX_SIZE = 4096  # 16x the paper's largest maps (256 px); one map at this size is already 16 MiB


def check_size(size: int | None, dataset: str) -> None:
    """``size`` must be a positive int of at most ``MAX_SIZE`` (or ``None``)."""
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise SemGANError(f"{dataset}: size must be a positive integer (maps are size x size), got {size!r}")
    if size is not None and size > MAX_SIZE:
        raise SemGANError(f"{dataset}: size {size} is over the maximum of {MAX_SIZE}: every map would be resized to "
                          f"{size}x{size} ({size * size / 2**20:,.0f} MiB a map, photos three times that); "
                          "the paper's largest maps are 256 px")


def check_memory(count: int, size: int | None, *, photos: bool, dataset: str) -> None:
    """Refuse to decode ``count`` maps of ``size`` x ``size`` (and their photos) when they cannot fit in memory."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not Linux: no check rather than a wrong one
        return
    if size is None or available <= 0:
        return
    need = 2 * count * size * size * (4 if photos else 1)  # decoded once, then stacked: two copies at the peak
    if need > available:
        raise SemGANError(f"{dataset}: {count} maps at {size}x{size}{' with photos' if photos else ''} need about "
                          f"{need / 2**30:,.1f} GiB to decode, but {available / 2**30:,.1f} GiB of memory is free; "
                          "choose a smaller --size (data.size)")


def out_size(size: int, dataset: str, default: int | None) -> int | None:
    """The map size of a :class:`~semgan.config.DataConfig` ``size`` (0: ``default``, the dataset's own)."""
    check_size(size or None, dataset)
    return size or default


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
