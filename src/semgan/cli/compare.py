"""``semgan compare`` (train SemGAN and the baseline, then report) and ``semgan report`` (the report alone)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semgan.cli.common import OUT, POSITIVE, SubParsers, add_data_root, complete_with, count, metrics_help
from semgan.comparison import COMPARE_FILE, read_compare
from semgan.config import PRESETS, apply_cli, from_dict, get_preset
from semgan.errors import SemGANError

MAX_SEEDS = 100


def _cmd_compare(args: argparse.Namespace) -> int:
    from semgan.compare import compare
    from semgan.train import TrainingInterrupted

    out: Path = args.out
    if args.preset is None:
        if not (out / COMPARE_FILE).is_file():
            raise SemGANError(
                f"--preset is required to start a comparison; choose one of: {', '.join(PRESETS.names())}"
            )
        base = from_dict(read_compare(out)["config"])  # continuing: the compare's own config is the base
    else:
        base = get_preset(args.preset)
        if base.model.family != "semgan":
            raise SemGANError(
                f"--preset {args.preset} trains a {base.model.family} model; compare trains SemGAN against its RGB "
                "baseline, so it takes the semgan presets: "
                + ", ".join(n for n in PRESETS.names() if get_preset(n).model.family == "semgan"))
    cfg = apply_cli(base, args.set, {
        "train.steps": args.steps, "eval.metrics": args.metrics, "eval.every": args.eval_every,
        "data.root": None if args.data_root is None else str(args.data_root),
    })
    try:
        compare(cfg, out, seeds=args.seeds, progress=not args.no_progress)
    except TrainingInterrupted as exc:
        print(f"semgan: {exc}\nsemgan: rerun the same compare command to continue the comparison", file=sys.stderr)
        return 130
    print(f"comparison folder: {out}\n  report: {out / 'report.md'}, {out / 'report.html'}\n"
          f"  runs:   {', '.join(r['name'] for r in read_compare(out)['runs'])}")
    return 0


def add_compare(subparsers: SubParsers) -> None:
    """Add the ``compare`` command."""
    from semgan.compare import DEFAULT_EVALUATIONS, DEFAULT_METRICS

    p = subparsers.add_parser(
        "compare", help="train SemGAN and the RGB baseline with one configuration and report both",
        description="Train SemGAN and the RGB GAN baseline with the same configuration (only the output head "
        "differs), evaluate both on the same schedule, and write DIR/report.md and DIR/report.html. Rerun the "
        "same command to continue an interrupted comparison.",
    )
    complete_with(p.add_argument(
        "--preset", help=f"one of: {', '.join(PRESETS.names())} (default when DIR holds a compare: its own)"),
        PRESETS.names())
    p.add_argument("--out", required=True, type=OUT,
                   help="compare folder: DIR/semgan-s<seed>, DIR/gan-s<seed>, DIR/report.{md,html}")
    p.add_argument("--steps", type=POSITIVE, help="total steps of each run (train.steps); may grow on a later call")
    p.add_argument("--seeds", type=count(1, MAX_SEEDS, "each seed trains every model of the comparison from "
                   "scratch"), default=1, help=f"training seeds per model (at most {MAX_SEEDS})")
    p.add_argument("--metrics", help=f"{metrics_help()} (default {','.join(DEFAULT_METRICS)})")
    p.add_argument("--eval-every", type=POSITIVE,
                   help=f"steps between evaluations (default: steps // {DEFAULT_EVALUATIONS}; and at the last step)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set eval.n=2048 (repeatable; see `semgan presets`)")
    add_data_root(p, "dataset folder (data.root)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_compare)


def _cmd_report(args: argparse.Namespace) -> int:
    from semgan.report import REPORT_HTML, build_report

    md = build_report(args.dir)
    print(f"report: {md}, {md.with_name(REPORT_HTML)}\n  plots: {md.parent / 'plots'}, grids: {md.parent / 'grids'}")
    return 0


def add_report(subparsers: SubParsers) -> None:
    """Add the ``report`` command."""
    p = subparsers.add_parser(
        "report", help="rebuild the report of a compare folder from its runs (no training)",
        description="Rebuild DIR/report.md and DIR/report.html (tables, plots, sample grids) from the runs of a "
        "`semgan compare` folder, without training.",
    )
    p.add_argument("dir", type=Path, help="a folder written by semgan compare")
    p.set_defaults(func=_cmd_report)
