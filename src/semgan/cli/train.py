"""``semgan train``, ``semgan pix2pix train|translate`` and ``semgan presets``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from semgan.cli.common import NON_NEGATIVE, OUT, SEED, SubParsers, add_data_root, add_device, complete_with
from semgan.config import (
    MODES,
    PRESET_HELP,
    PRESETS,
    EncoderModelConfig,
    RunConfig,
    apply_cli,
    flatten,
    get_preset,
    to_dict,
)
from semgan.devices import resolve_device
from semgan.errors import SemGANError
from semgan.run_dir import RunDir


def _cmd_train(args: argparse.Namespace) -> int:
    from semgan.train import TrainingInterrupted, saved_config, train

    base: RunConfig
    if args.preset is None and args.family == "encoder" and not args.resume:
        base = get_preset("encoder-cpu")
    elif args.preset is None:
        if not args.resume:
            raise SemGANError(f"--preset is required to start a run; choose one of: {', '.join(PRESETS.names())}")
        base = saved_config(args.out)  # resuming: the run's own config is the base
    else:
        base = get_preset(args.preset)
    if args.family == "encoder" and not args.resume and base.model.family == "encoder":
        base = _encoder_base(args, base)
    cfg = apply_cli(base, args.set, {"model.mode": args.mode, "train.steps": args.steps,
                                     "data.root": None if args.data_root is None else str(args.data_root),
                                     "model.generator": getattr(args, "generator", None)})
    if args.family is not None and cfg.model.family != args.family:
        if args.preset is None:  # resuming a run of another family
            command = "semgan train" if cfg.model.family == "semgan" else f"semgan {cfg.model.family} train"
            raise SemGANError(f"{args.out} is a {cfg.model.family} run, not a {args.family} one; resume it with "
                              f"`{command} --resume --out {args.out}`")
        raise SemGANError(f"--preset {args.preset} trains a {cfg.model.family} model; `semgan {args.family} train` "
                          f"takes the {args.family} presets: " + ", ".join(_family_presets(args.family)))
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


def _encoder_base(args: argparse.Namespace, cfg: RunConfig) -> RunConfig:
    """``semgan encoder train``: the encoder preset on the data of the generator (unless --set data.* is given)."""
    from dataclasses import replace

    from semgan.model_files import read_model

    generator = args.generator or cfg.model_as(EncoderModelConfig).generator
    if not generator:
        raise SemGANError("semgan encoder train needs --generator G: the trained SemGAN generator to encode for")
    if not any(s.startswith("data.") for s in args.set):  # the generator's own data, unless told otherwise
        cfg = replace(cfg, data=read_model(generator).cfg.data)
    return cfg


def _family_presets(family: str) -> list[str]:
    return [n for n in PRESETS.names() if get_preset(n).model.family == family]


def _add_train_arguments(p: argparse.ArgumentParser, presets: list[str]) -> None:
    complete_with(p.add_argument(
        "--preset", help=f"one of: {', '.join(presets)} (default when resuming: the run's own)"), presets)
    p.add_argument("--out", required=True, type=OUT, help="run folder (new or empty; or a run with --resume)")
    p.add_argument("--steps", type=NON_NEGATIVE, help="total steps of the run (train.steps)")
    add_data_root(p, "dataset folder (data.root), e.g. the CMP folder holding base/")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set model.ks=7 (repeatable; see `semgan presets`)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out up to --steps")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train, mode=None, family=None)


def add_family_group(sub: SubParsers, family: str, help: str, train_help: str,
                     description: str | None = None) -> tuple[SubParsers, argparse.ArgumentParser]:
    """``semgan FAMILY train`` for a family's command group: the group's subcommands and its train parser (the
    family's presets offered), to which the caller adds the family's own options and commands."""
    group = sub.add_parser(family, help=help)
    group_sub = group.add_subparsers(dest=f"{family}_command", required=True, metavar="COMMAND")
    p = group_sub.add_parser("train", help=train_help, description=description)
    _add_train_arguments(p, _family_presets(family))
    p.set_defaults(family=family)
    return group_sub, p


def add_train(sub: SubParsers) -> None:
    """``semgan train``."""
    p = sub.add_parser("train", help="train SemGAN or the RGB baseline (or any family's preset)")
    _add_train_arguments(p, PRESETS.names())
    p.add_argument("--mode", choices=MODES, help="semgan (softmax head) or gan (RGB baseline)")


def _cmd_translate(args: argparse.Namespace) -> int:
    from semgan.dream import translate_folder
    from semgan.model_files import load_translator

    tr = load_translator(args.run, args.checkpoint, resolve_device(args.device, key="--device"))
    out = translate_folder(tr, args.labels, args.out, seed=args.seed, dropout=not args.no_dropout)
    print(f"translated {args.labels} with {tr.source} (step {tr.step}) -> {out}/photos, {out}/grid.png")
    return 0


def add_pix2pix(sub: SubParsers) -> None:
    """``semgan pix2pix train|translate``."""
    pix_sub, _ = add_family_group(sub, "pix2pix", "train a label map -> photo translator; translate folders of maps",
                                  "train pix2pix on paired maps and photos (a seeded share held out)")
    p = pix_sub.add_parser("translate", help="turn a folder of label maps into photos")
    p.add_argument("run", type=Path, help="pix2pix run folder or checkpoint file")
    p.add_argument("--labels", type=Path, required=True, help="folder of index PNGs (e.g. semgan sample's labels/)")
    p.add_argument("--out", type=OUT, required=True, help="new folder: OUT/photos/<name>.png and OUT/grid.png")
    p.add_argument("--checkpoint", default="latest", help="checkpoint name in RUN/checkpoints")
    p.add_argument("--seed", type=SEED, default=0, help="seeds the translator's dropout")
    p.add_argument("--no-dropout", action="store_true",
                   help="turn pix2pix's dropout (its noise source) off: the photos its ONNX export gives")
    add_device(p)
    p.set_defaults(func=_cmd_translate)


def _cmd_presets(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps({name: flatten(PRESETS.get(name)) for name in PRESETS.names()}, indent=2))
        return 0
    for name in PRESETS.names():
        print(f"{name}: {PRESET_HELP[name]}")
        for section, values in to_dict(PRESETS.get(name)).items():
            print(f"  {section + ':':7s}" + " ".join(f"{k}={v if v != '' else repr(v)}" for k, v in values.items()))
    return 0


def add_presets(sub: SubParsers) -> None:
    """``semgan presets``."""
    p = sub.add_parser("presets", help="list every preset with its values")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_presets)
