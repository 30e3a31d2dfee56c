"""``semgan data prepare|info|preview``: prepare, inspect and preview datasets::

    semgan data prepare facades --data-root /data/CMP --size 128
    semgan data info facades --data-root /data/CMP
    semgan data preview facades --data-root /data/CMP --out grid.png --n 16

``--root``, the old spelling of ``--data-root``, still works (hidden from help, with a warning).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np
import torch

from semgan.cli.common import OUT, POSITIVE, SEED, SubParsers, add_data_root
from semgan.data import DATASETS, SOURCES, LabelDataset, load_dataset, prepare_dataset
from semgan.errors import SemGANError
from semgan.labels import colorize, make_grid, write_rgb_png


def _add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", choices=DATASETS.names(), help=f"dataset: {', '.join(DATASETS.names())}")
    add_data_root(p, "the dataset's source folder (not needed for generated datasets)", deprecated=["--root"])
    p.add_argument(
        "--size",
        type=POSITIVE,
        help="resize maps to SIZE x SIZE with nearest neighbour (default: the dataset's own, 128 for "
        "Cityscapes and Facades, native for folder)",
    )
    p.add_argument(
        "--classes",
        help="class set (cityscapes: cityscapes22, full34, train19, categories8) or a classes file (folder)",
    )
    p.add_argument(
        "--split",
        help="dataset split (cityscapes: train/val/test/trainval; facades: all/base/extended/"
        "train/val; pix2pix: train/val/test/all; folder: a subfolder)",
    )
    p.add_argument("--seed", type=SEED, default=0, help="seed of seeded splits")
    p.add_argument("--skip-bad", action="store_true", help="skip bad files (reported) instead of stopping")
    p.add_argument("--cache-dir", help="cache root (default: $SEMGAN_CACHE or ~/.cache/semgan)")


def add_data(subparsers: SubParsers) -> argparse.ArgumentParser:
    """Add the ``data`` command with ``prepare``, ``info`` and ``preview`` subcommands.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers()``.

    Returns:
        The ``data`` parser.
    """
    data = subparsers.add_parser(
        "data",
        help="prepare, inspect and preview datasets",
        description="Prepare, inspect and preview label-map datasets.",
    )
    sub = data.add_subparsers(dest="data_command", metavar="{prepare,info,preview}", required=True)

    p = sub.add_parser("prepare", help="decode a dataset once into the cache (labels.npy + manifest.json)")
    _add_source_args(p)
    p.add_argument("--force", action="store_true", help="rebuild even if a valid cache exists")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("info", help="print the map count and per-class pixel shares")
    _add_source_args(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("preview", help="write a colour grid of label maps")
    _add_source_args(p)
    p.add_argument("--out", required=True, type=OUT, help="output PNG path")
    p.add_argument("--n", type=POSITIVE, default=16, help="number of maps, evenly spaced over the set")
    p.set_defaults(func=cmd_preview)
    return data


def _enable_logging() -> None:
    # Warnings (skipped files, stale caches) and progress lines must reach the user even when the main CLI has
    # not configured logging; add a plain handler only then, so a configured setup is left alone.
    logger = logging.getLogger("semgan.data")
    if not logger.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _root(args: argparse.Namespace) -> str | None:
    return None if args.data_root is None else str(args.data_root)


def _load(args: argparse.Namespace) -> LabelDataset:
    return load_dataset(
        args.name,
        root=_root(args),
        size=args.size,
        classes=args.classes,
        split=args.split,
        seed=args.seed,
        skip_bad=args.skip_bad,
        cache_dir=args.cache_dir,
    )


def cmd_prepare(args: argparse.Namespace) -> int:
    """``semgan data prepare``: decode the dataset into the cache and print where it went."""
    _enable_logging()
    root = _root(args)
    if args.name not in SOURCES:  # generated in memory on every use: nothing to decode or cache
        raise SemGANError(f"data prepare {args.name}: {args.name} is generated, not read from files, so there is "
                          f"nothing to prepare; it is made when a run needs it (`semgan data info {args.name}` "
                          "shows it). Prepare applies to " + ", ".join(SOURCES.names()))
    if root is None:
        raise SemGANError(f"data prepare {args.name}: --data-root is required (the dataset's source folder)")
    t0 = time.perf_counter()
    entry = prepare_dataset(
        args.name,
        root,
        args.size,
        args.classes,
        split=args.split,
        seed=args.seed,
        skip_bad=args.skip_bad,
        cache_dir=args.cache_dir,
        force=args.force,
    )
    print(f"{args.name}: cache at {entry} ({time.perf_counter() - t0:.1f} s)")
    return 0


def format_info(ds: LabelDataset) -> str:
    """Map count, size, skipped files and per-class pixel shares as a text table."""
    H, W = ds.resolution
    lines = [f"{ds.name}: {len(ds)} maps of {H}x{W}, {ds.num_classes} classes"]
    skipped = ds.meta.get("num_skipped")
    if isinstance(skipped, int) and skipped:
        lines.append(f"skipped {skipped} bad files (see meta['skipped'])")
    if ds.meta.get("cache"):
        lines.append(f"cache: {ds.meta['cache']}")
    width = max(len(n) for n in ds.class_names)
    lines.append(f"{'idx':>4}  {'class':<{width}}  {'share %':>8}")
    for k, (name, share) in enumerate(zip(ds.class_names, ds.class_shares(), strict=True)):
        lines.append(f"{k:>4}  {name:<{width}}  {100 * share:>8.2f}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    """``semgan data info``: print the map count and the per-class pixel shares with class names."""
    _enable_logging()
    print(format_info(_load(args)))
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    """``semgan data preview``: write ``--n`` maps, evenly spaced over the set, as one colour grid PNG."""
    _enable_logging()
    ds = _load(args)
    idx = np.unique(np.linspace(0, len(ds) - 1, min(args.n, len(ds))).round().astype(np.int64))
    images = colorize(ds.labels[torch.from_numpy(idx)], ds.palette)  # (n, 3, H, W) uint8
    try:
        write_rgb_png(args.out, make_grid(images))
    except OSError as exc:
        raise SemGANError(f"cannot write {args.out}: {exc}") from None
    print(f"{args.name}: wrote {len(idx)} maps to {args.out}")
    return 0
