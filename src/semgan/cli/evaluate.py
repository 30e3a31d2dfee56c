"""``semgan metrics`` (two folders of images) and ``semgan evaluate`` (a trained run against its data)."""

from __future__ import annotations

import argparse
from pathlib import Path

from semgan.cli.common import (
    NON_NEGATIVE,
    OUT,
    POSITIVE,
    SEED,
    SubParsers,
    add_data_root,
    add_device,
    metric_names,
    metrics_description,
    metrics_help,
    print_metrics,
    writable_file,
)
from semgan.devices import resolve_device
from semgan.errors import SemGANError

DEFAULT_METRICS = "swd,ms_ssim,semantic"


def _cmd_metrics(args: argparse.Namespace) -> int:
    from semgan.metrics.folders import fid_against_statistics, save_folder_statistics, score_folders

    device = resolve_device(args.device, key="--device")
    if args.save_stats is not None:
        writable_file(args.save_stats)
        count = save_folder_statistics(args.real, args.save_stats, n=args.n, device=device, progress=not args.json,
                                       skip_bad=args.skip_bad)
        print(f"FID statistics of {count} images in {args.real} -> {args.save_stats}")
        if args.fake is None:
            return 0
    if args.fake is None:
        raise SemGANError("give a FAKE folder to score, or --save-stats FILE to store REAL's FID statistics")
    if args.real.suffix == ".npz":
        names = metric_names(args.metrics)
        if names != ["fid"]:
            raise SemGANError(f"{args.real} holds FID statistics, which give FID only; got --metrics "
                              f"{args.metrics}: pass --metrics fid")
        result = fid_against_statistics(args.real, args.fake, n=args.n, device=device, progress=not args.json,
                                        skip_bad=args.skip_bad)
    else:
        result = score_folders(args.real, args.fake, metric_names(args.metrics), n=args.n, seed=args.seed,
                               device=device, progress=not args.json, skip_bad=args.skip_bad)
    print_metrics(result, args.json)
    return 0


def add_metrics(sub: SubParsers) -> None:
    """``semgan metrics``."""
    p = sub.add_parser("metrics", help="score two folders of images (SWD, MS-SSIM, FID, semantic)",
                       description="Score a folder of generated images against a folder of reference images.\n\n"
                       + metrics_description())
    p.add_argument("real", type=Path, help="folder of reference images (PNG/JPG; RGB, grey or palette), or FID "
                   "statistics (.npz: mu, sigma, as pytorch-fid writes them) with --metrics fid")
    p.add_argument("fake", type=Path, nargs="?", help="folder of generated images")
    p.add_argument("--save-stats", type=Path, metavar="FILE",
                   help="write REAL's FID statistics to FILE (.npz, pytorch-fid's format) for later runs")
    p.add_argument("--metrics", default=DEFAULT_METRICS, help=metrics_help())
    p.add_argument("--n", type=POSITIVE, help="use the first N images of each folder (sorted by name)")
    p.add_argument("--seed", type=SEED, default=0, help="seeds the metrics' randomness (SWD's projections)")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out unreadable or odd-sized images (each named in a warning) instead of stopping")
    add_device(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_metrics)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from semgan.data import dataset_from_config
    from semgan.evaluate import evaluate_generator
    from semgan.model_files import load_generator

    if args.out:
        writable_file(args.out)
    run = load_generator(args.run, args.checkpoint, resolve_device(args.device, key="--device"))
    dataset = dataset_from_config(run.cfg.data, root=str(args.data_root) if args.data_root else None)
    if list(dataset.class_names) != list(run.class_names):
        raise SemGANError(f"the run was trained on classes {list(run.class_names)}; "
                          f"the data now has {list(dataset.class_names)}")
    scores = evaluate_generator(run.G, dataset, metric_names(args.metrics), n=args.n, seed=args.seed,
                                progress=not args.json)
    assert scores is not None  # one process: the scores come back here
    result = {"run": str(args.run), "step": run.step, **scores}
    print_metrics(result, args.json)  # first: a failing write below must not cost the numbers
    if args.out:
        from semgan.io import write_json

        try:
            write_json(args.out, result)
        except OSError as exc:
            raise SemGANError(f"cannot write --out {args.out}: {exc.strerror or exc}; the scores are printed "
                              "above") from exc
    return 0


def add_evaluate(sub: SubParsers) -> None:
    """``semgan evaluate``."""
    p = sub.add_parser("evaluate", help="sample a trained run and score it against its training data",
                       description="Sample a trained run and score the samples against its training data.\n\n"
                       + metrics_description())
    p.add_argument("run", type=Path, help="run folder (or checkpoint file)")
    p.add_argument("--metrics", default=DEFAULT_METRICS, help=metrics_help())
    p.add_argument("--n", type=NON_NEGATIVE, default=0, help="images per set (0: the whole training set)")
    p.add_argument("--seed", type=SEED, default=0, help="seeds the latents and the metrics")
    p.add_argument("--checkpoint", default="latest", help="latest, or best-<metric>")
    add_data_root(p, "dataset folder, if it moved since training")
    add_device(p)
    p.add_argument("--out", type=OUT, help="also write the result to this JSON file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_evaluate)
