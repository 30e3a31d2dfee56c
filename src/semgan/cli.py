"""The ``semgan`` command: a thin layer over the Python API.

User errors (:class:`semgan.errors.SemGANError`) are printed as one line without a traceback, exit code 2;
an interrupted training run exits with 130 after saving its checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from semgan import __version__
from semgan.argtypes import NON_NEGATIVE, POSITIVE
from semgan.config import MODES, PRESET_HELP, PRESETS, RunConfig, apply_cli, flatten, get_preset, to_dict
from semgan.devices import resolve_device
from semgan.errors import SemGANError
from semgan.run_dir import RunDir


def _writable_file(path: Path) -> None:
    """Fail before the work, not after it, when ``path`` cannot be written."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise SemGANError(f"--out {path} is a folder; expected a file path for the JSON result")
    if not parent.is_dir():
        raise SemGANError(f"--out {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise SemGANError(f"--out {path} is not writable")


def _cmd_train(args: argparse.Namespace) -> int:
    from semgan.train import TrainingInterrupted, saved_config, train

    base: RunConfig
    if args.preset is None:
        if not args.resume:
            raise SemGANError(f"--preset is required to start a run; choose one of: {', '.join(PRESETS.names())}")
        base = saved_config(args.out)  # resuming: the run's own config is the base
    else:
        base = get_preset(args.preset)
    cfg = apply_cli(base, args.set, {"model.mode": args.mode, "train.steps": args.steps,
                                     "data.root": None if args.data_root is None else str(args.data_root)})
    if args.family is not None and cfg.model.family != args.family:
        raise SemGANError(f"--preset {args.preset} trains a {cfg.model.family} model; `semgan {args.family} train` "
                          f"takes the {args.family} presets: "
                          + ", ".join(n for n in PRESETS.names() if get_preset(n).model.family == args.family))
    if args.dry_run:
        print(json.dumps(flatten(cfg), indent=2))
        return 0
    main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 speaks for the run
    try:
        out = train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    except TrainingInterrupted as exc:
        if main_rank:
            print(f"semgan: {exc}", file=sys.stderr)
        return 130
    if not main_rank:
        return 0
    run = RunDir(out)
    print(f"run folder: {out}\n  sample grid: {run.grid_path} (every grid in {run.samples})\n"
          f"  checkpoint:  {run.checkpoint_path()}\n  logs:        {run.stats_path}, "
          f"TensorBoard: tensorboard --logdir {run.tb_dir}")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from semgan.sample import load_run, sample, write_samples

    if args.seeds is not None:
        return _sample_seeds(args)
    run = load_run(args.run, which=args.checkpoint, device=resolve_device(args.device, key="--device"))
    samples = sample(run.G, args.n, run.palette, generator=torch.Generator().manual_seed(args.seed),
                     progress=not args.no_progress)
    out = write_samples(samples, args.out)
    print(f"{args.n} samples of {run.cfg.semgan_model().mode} (step {run.step}) -> {out}/labels, {out}/color, "
          f"{out}/grid.png")
    return 0


def _sample_seeds(args: argparse.Namespace) -> int:
    """``sample --seeds 0-35,40``: one map per seed, ``color/seed0000.png`` and ``labels/seed0000.png``."""
    from semgan.api import load, parse_seeds
    from semgan.labels import make_grid, write_label_png, write_rgb_png

    seeds = parse_seeds(args.seeds)
    gen = load(args.run, checkpoint=args.checkpoint, device=args.device)
    out: Path = args.out
    names = [f"seed{s:04d}.png" for s in seeds]
    clash = [n for n in names if (out / "color" / n).exists() or (out / "labels" / n).exists()]
    if clash:
        raise SemGANError(f"--out {out} already holds {clash[0]}" + (f" and {len(clash) - 1} more" if len(clash) > 1
                          else "") + "; choose a new folder or remove them")
    maps = gen.sample_seeds(seeds)
    for sub in ("color", "labels"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        write_rgb_png(out / "color" / name, maps.images[i])
        write_label_png(out / "labels" / name, maps.labels[i], gen.palette)
    write_rgb_png(out / "grid.png", make_grid(maps.images[:64], nrow=8))
    print(f"{len(seeds)} maps (seeds {args.seeds}) of {gen.G.cfg.mode} (step {gen.step}) -> {out}/color, "
          f"{out}/labels, {out}/grid.png")
    return 0


def _metric_names(text: str) -> list[str]:
    from semgan.metrics import METRICS

    names = [m.strip() for m in text.split(",") if m.strip()]
    for name in names:
        METRICS.get(name)  # a typo fails here, naming the valid metrics
    return names


def _print_metrics(result: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        if isinstance(value, dict):
            inner = "  ".join(f"{k}={_fmt(v)}" for k, v in value.items())
            print(f"{key:14s} {inner}")
        else:
            print(f"{key:14s} {_fmt(value)}")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _cmd_metrics(args: argparse.Namespace) -> int:
    from semgan.metrics.folders import fid_against_statistics, save_folder_statistics, score_folders

    device = resolve_device(args.device, key="--device")
    if args.save_stats is not None:
        _writable_file(args.save_stats)
        count = save_folder_statistics(args.real, args.save_stats, n=args.n, device=device, progress=not args.json)
        print(f"FID statistics of {count} images in {args.real} -> {args.save_stats}")
        if args.fake is None:
            return 0
    if args.fake is None:
        raise SemGANError("give a FAKE folder to score, or --save-stats FILE to store REAL's FID statistics")
    if args.real.suffix == ".npz":
        names = _metric_names(args.metrics)
        if names != ["fid"]:
            raise SemGANError(f"{args.real} holds FID statistics, which give FID only; got --metrics "
                              f"{args.metrics}: pass --metrics fid")
        result = fid_against_statistics(args.real, args.fake, n=args.n, device=device, progress=not args.json)
    else:
        result = score_folders(args.real, args.fake, _metric_names(args.metrics), n=args.n, seed=args.seed,
                               device=device, progress=not args.json)
    _print_metrics(result, args.json)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from semgan.data import dataset_from_config
    from semgan.evaluate import evaluate_generator
    from semgan.sample import load_run

    if args.out:
        _writable_file(args.out)
    run = load_run(args.run, which=args.checkpoint, device=resolve_device(args.device, key="--device"))
    dataset = dataset_from_config(run.cfg.data, root=str(args.data_root) if args.data_root else None)
    if list(dataset.class_names) != list(run.class_names):
        raise SemGANError(f"the run was trained on classes {list(run.class_names)}; "
                          f"the data now has {list(dataset.class_names)}")
    scores = evaluate_generator(run.G, dataset, _metric_names(args.metrics), n=args.n, seed=args.seed,
                                progress=not args.json)
    assert scores is not None  # one process: the scores come back here
    result = {"run": str(args.run), "step": run.step, **scores}
    _print_metrics(result, args.json)  # first: a failing write below must not cost the numbers
    if args.out:
        from semgan.io import write_json

        try:
            write_json(args.out, result)
        except OSError as exc:
            raise SemGANError(f"cannot write --out {args.out}: {exc.strerror or exc}; the scores are printed "
                              "above") from exc
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps({name: flatten(PRESETS.get(name)) for name in PRESETS.names()}, indent=2))
        return 0
    for name in PRESETS.names():
        print(f"{name}: {PRESET_HELP[name]}")
        for section, values in to_dict(PRESETS.get(name)).items():
            print(f"  {section + ':':7s}" + " ".join(f"{k}={v if v != '' else repr(v)}" for k, v in values.items()))
    return 0


def _add_train_arguments(p: argparse.ArgumentParser, presets: list[str]) -> None:
    p.add_argument("--preset", help=f"one of: {', '.join(presets)} (default when resuming: the run's own)")
    p.add_argument("--out", required=True, type=Path, help="run folder (new or empty; or a run with --resume)")
    p.add_argument("--steps", type=NON_NEGATIVE, help="total steps of the run (train.steps)")
    p.add_argument("--data-root", type=Path, help="dataset folder (data.root), e.g. the CMP folder holding base/")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set model.ks=7 (repeatable; see `semgan presets`)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out up to --steps")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train, mode=None, family=None)


def _cmd_translate(args: argparse.Namespace) -> int:
    from semgan.dream import translate_folder
    from semgan.translate import load_translator

    tr = load_translator(args.run, which=args.checkpoint, device=resolve_device(args.device, key="--device"))
    out = translate_folder(tr, args.labels, args.out, seed=args.seed)
    print(f"translated {args.labels} with {tr.source} (step {tr.step}) -> {out}/photos, {out}/grid.png")
    return 0


def _cmd_dream(args: argparse.Namespace) -> int:
    from semgan.api import load
    from semgan.dream import check_pair, dream, interpolate, write_dream, write_walk
    from semgan.translate import load_translator

    device = resolve_device(args.device, key="--device")
    gen = load(args.generator, checkpoint=args.checkpoint, device=device)
    tr = load_translator(args.translator, device=device)
    check_pair(gen, tr, f"the generator {args.generator}")
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise SemGANError(f"--out {args.out} is not an empty folder; choose a new one")
    if args.interpolate:
        if args.n < 2:
            raise SemGANError(f"--interpolate walks between --n latents; --n {args.n} is fewer than 2")
        out = write_walk(interpolate(gen, tr, seed=args.seed, keys=args.n, frames=args.frames), gen.palette, args.out)
        print(f"a walk through {args.n} latents of seed {args.seed}, {args.frames} frames per leg -> {out}/strip.png, "
              f"{out}/walk.gif, {out}/photos")
    else:
        out = write_dream(dream(gen, tr, args.n, seed=args.seed), gen.palette, args.out)
        print(f"{args.n} maps of {gen.G.cfg.mode} (step {gen.step}) dreamed by {tr.source} -> {out}/grid.png, "
              f"{out}/maps, {out}/photos")
    return 0


DEVICE_HELP = "auto (CUDA when there is one), cpu, cuda or cuda:N"
EXAMPLES = """examples:
  semgan train --preset shapes-cpu --out runs/shapes               # ~10 min on 2 CPU cores
  semgan train --out runs/shapes --resume --steps 6000             # continue it
  semgan sample runs/shapes --seeds 0-15 --out samples             # one map per seed: seed0000.png, ...
  semgan evaluate runs/shapes --metrics swd,ms_ssim,structure
  semgan compare --preset facades-cpu --data-root data/cmp_facade_base --seeds 3 --out runs/cmp
  semgan report runs/cmp                                           # report.html with tables, grids and plots
  semgan pix2pix train --preset pix2pix-facades-cpu --data-root data/cmp_facade_base --out runs/p2p
  semgan dream --generator runs/shapes --translator runs/p2p --n 16 --out dreams
  torchrun --nproc-per-node 4 -m semgan train --preset shapes --out runs/big

`semgan COMMAND --help` shows each command's options and defaults; `semgan presets` lists every preset."""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Each option's default after its help (not for flags, required options or options without a default);
    descriptions and examples printed as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if (action.default is None or action.default is False or action.default == argparse.SUPPRESS
                or action.required or not action.option_strings or "%(default)" in help_text):
            return action.help
        return f"{help_text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Every (sub)command's parser shows defaults (argparse gives subparsers the parser's own class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="semgan", description=__doc__.splitlines()[0] if __doc__ else None, epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"semgan {__version__}")
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(  # type: ignore[assignment]
        dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train SemGAN or the RGB baseline (or any family's preset)")
    _add_train_arguments(p, PRESETS.names())
    p.add_argument("--mode", choices=MODES, help="semgan (softmax head) or gan (RGB baseline)")

    pix = sub.add_parser("pix2pix", help="train a label map -> photo translator; translate folders of maps")
    pix_sub = pix.add_subparsers(dest="pix2pix_command", required=True, metavar="COMMAND")
    p = pix_sub.add_parser("train", help="train pix2pix on paired maps and photos (a seeded share held out)")
    _add_train_arguments(p, [n for n in PRESETS.names() if get_preset(n).model.family == "pix2pix"])
    p.set_defaults(family="pix2pix")
    p = pix_sub.add_parser("translate", help="turn a folder of label maps into photos")
    p.add_argument("run", type=Path, help="pix2pix run folder or checkpoint file")
    p.add_argument("--labels", type=Path, required=True, help="folder of index PNGs (e.g. semgan sample's labels/)")
    p.add_argument("--out", type=Path, required=True, help="new folder: OUT/photos/<name>.png and OUT/grid.png")
    p.add_argument("--checkpoint", default="latest", help="checkpoint name in RUN/checkpoints")
    p.add_argument("--seed", type=int, default=0, help="seeds the translator's dropout")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(func=_cmd_translate)

    p = sub.add_parser("dream", help="dream photos: sample maps from a generator, translate them with pix2pix")
    p.add_argument("--generator", type=Path, required=True, help="SemGAN or RGB-baseline run (or exported model)")
    p.add_argument("--translator", type=Path, required=True, help="pix2pix run of the same class set")
    p.add_argument("--n", type=POSITIVE, default=16, help="maps to dream; with --interpolate: keys")
    p.add_argument("--seed", type=int, default=0, help="seeds the latents and the translator")
    p.add_argument("--out", type=Path, required=True, help="new folder for labels/, maps/, photos/ and grid.png")
    p.add_argument("--interpolate", action="store_true",
                   help="walk a spherical path through --n latents (at least 2); writes strip.png and walk.gif")
    p.add_argument("--frames", type=POSITIVE, default=16, help="frames per leg of the walk")
    p.add_argument("--checkpoint", default="latest", help="the generator's checkpoint")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(func=_cmd_dream)

    p = sub.add_parser("sample", help="sample label maps from a trained run")
    p.add_argument("run", type=Path, help="run folder, checkpoint file, or exported model folder")
    p.add_argument("--n", type=POSITIVE, default=64, help="number of samples")
    p.add_argument("--seeds", help="one map per seed instead, e.g. 0-35,40 (color/seed0000.png, labels/...)")
    p.add_argument("--seed", type=int, default=0, help="seeds the latents (the same maps on every device)")
    p.add_argument("--out", type=Path, required=True, help="writes OUT/labels/*.png, OUT/color/*.png, OUT/grid.png")
    p.add_argument("--checkpoint", default="latest", help="checkpoint name in RUN/checkpoints")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("metrics", help="score two folders of images (SWD, MS-SSIM, FID, semantic)")
    p.add_argument("real", type=Path, help="folder of reference images (PNG/JPG; RGB, grey or palette), or FID "
                   "statistics (.npz: mu, sigma, as pytorch-fid writes them) with --metrics fid")
    p.add_argument("fake", type=Path, nargs="?", help="folder of generated images")
    p.add_argument("--save-stats", type=Path, metavar="FILE",
                   help="write REAL's FID statistics to FILE (.npz, pytorch-fid's format) for later runs")
    p.add_argument("--metrics", default="swd,ms_ssim,semantic", help="comma-separated: swd,ms_ssim,fid,kid,semantic")
    p.add_argument("--n", type=POSITIVE, help="use the first N images of each folder (sorted by name)")
    p.add_argument("--seed", type=int, default=0, help="seeds the metrics' randomness (SWD's projections)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_metrics)

    p = sub.add_parser("evaluate", help="sample a trained run and score it against its training data")
    p.add_argument("run", type=Path, help="run folder (or checkpoint file)")
    p.add_argument("--metrics", default="swd,ms_ssim,semantic", help="comma-separated: swd,ms_ssim,fid,semantic")
    p.add_argument("--n", type=NON_NEGATIVE, default=0, help="images per set (0: the whole training set)")
    p.add_argument("--seed", type=int, default=0, help="seeds the latents and the metrics")
    p.add_argument("--checkpoint", default="latest", help="latest, or best-<metric>")
    p.add_argument("--data-root", type=Path, help="dataset folder, if it moved since training")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--out", type=Path, help="also write the result to this JSON file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_evaluate)

    from semgan.data.cli import add_data_parser

    add_data_parser(sub)

    from semgan.export import add_parser as add_export_parser

    add_export_parser(sub)

    from semgan.compare import add_parser as add_compare_parser
    from semgan.report import add_parser as add_report_parser

    add_compare_parser(sub)
    add_report_parser(sub)

    p = sub.add_parser("presets", help="list every preset with its values")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_presets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SemGANError as exc:
        print(f"semgan: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `semgan presets | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside training (which saves and exits 130 itself)
        print("semgan: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a file system refusal no check foresaw: one line, not a traceback
        where = f" {exc.filename}" if exc.filename else ""
        print(f"semgan: error:{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
