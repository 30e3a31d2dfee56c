"""``semgan sample`` and ``semgan dream``."""

from __future__ import annotations

import argparse
from pathlib import Path

from semgan.cli.common import OUT, POSITIVE, SEED, SubParsers, add_device
from semgan.devices import resolve_device
from semgan.errors import SemGANError


def _cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from semgan.config import SemGANModelConfig
    from semgan.model_files import load_generator
    from semgan.sample import sample, write_samples

    args.run = _source(args)
    if args.seeds is not None:
        return _sample_seeds(args)
    run = load_generator(args.run, args.checkpoint, resolve_device(args.device, key="--device"))
    samples = sample(run.G, args.n, run.palette, generator=torch.Generator().manual_seed(args.seed),
                     progress=not args.no_progress)
    out = write_samples(samples, args.out)
    print(f"{args.n} samples of {run.cfg.model_as(SemGANModelConfig).mode} (step {run.step}) -> {out}/labels, "
          f"{out}/color, {out}/grid.png")
    return 0


def _source(args: argparse.Namespace) -> Path:
    """RUN, or the folder of ``--pretrained NAME`` (one of the two)."""
    from semgan.pretrained import pretrained_path

    if (args.run is None) == (args.pretrained is None):
        raise SemGANError("sample takes a RUN folder or --pretrained NAME (one of the two), e.g. "
                          "`semgan sample --pretrained shapes --seeds 0-15 --out x`")
    if args.pretrained and args.checkpoint != "latest":
        raise SemGANError(f"--pretrained {args.pretrained} is one exported model; it has no checkpoint "
                          f"{args.checkpoint!r} (leave --checkpoint out)")
    return pretrained_path(args.pretrained) if args.pretrained else args.run  # model_files resolves pretrained:NAME


def _sample_seeds(args: argparse.Namespace) -> int:
    """``sample --seeds 0-35,40``: one map per seed, ``color/seed0000.png`` and ``labels/seed0000.png``."""
    from semgan.api import parse_seeds
    from semgan.labels import make_grid, write_label_png, write_rgb_png
    from semgan.model_files import load_generator

    seeds = parse_seeds(args.seeds)
    gen = load_generator(args.run, args.checkpoint, resolve_device(args.device, key="--device"))
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


def add_sample(sub: SubParsers) -> None:
    """``semgan sample``."""
    from semgan.pretrained import PRETRAINED

    p = sub.add_parser("sample", help="sample label maps from a trained run or a shipped model")
    p.add_argument("run", type=Path, nargs="?",
                   help="run folder, checkpoint file, or exported model folder (or give --pretrained)")
    p.add_argument("--pretrained", choices=sorted(PRETRAINED),
                   help="a model shipped with semgan instead of RUN: " + "; ".join(f"{k}: {v}" for k, v in
                                                                             sorted(PRETRAINED.items())))
    p.add_argument("--n", type=POSITIVE, default=64, help="number of samples")
    p.add_argument("--seeds", help="one map per seed instead, e.g. 0-35,40 (color/seed0000.png, labels/...)")
    p.add_argument("--seed", type=SEED, default=0, help="seeds the latents (the same maps on every device)")
    p.add_argument("--out", type=OUT, required=True, help="writes OUT/labels/*.png, OUT/color/*.png, OUT/grid.png")
    p.add_argument("--checkpoint", default="latest", help="checkpoint name in RUN/checkpoints")
    add_device(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_sample)


MAX_DREAM_IN_MEMORY = 10_000  # maps dream holds at once for --out (--dataset streams in batches)
MAX_DATASET = 1_000_000
MAX_FRAMES = 1000  # per leg of a walk: a GIF of more is no longer a picture


def _cmd_dream(args: argparse.Namespace) -> int:
    from semgan.dream import check_pair, dream, interpolate, write_dataset, write_dream, write_walk
    from semgan.model_files import load_generator, load_translator

    if (args.out is None) == (args.dataset is None):
        raise SemGANError("dream writes --out DIR (a grid of pairs) or --dataset DIR (a paired folder for training); "
                          "give one of the two")
    limit = MAX_DATASET if args.dataset is not None else MAX_DREAM_IN_MEMORY
    if args.n > limit:
        raise SemGANError(f"--n {args.n}: at most {limit} maps " + ("in a dataset" if args.dataset is not None else
                          "held in memory for --out; --dataset DIR writes larger sets in batches"))
    if args.frames > MAX_FRAMES:
        raise SemGANError(f"--frames {args.frames}: at most {MAX_FRAMES} frames per leg of a walk")
    device = resolve_device(args.device, key="--device")
    gen = load_generator(args.generator, args.checkpoint, device)
    tr = load_translator(args.translator, device=device)
    check_pair(gen, tr, f"the generator {args.generator}")
    if args.dataset is not None:
        out = write_dataset(gen, tr, args.n, args.dataset, seed=args.seed, progress=not args.no_progress)
        print(f"{args.n} (map, photo) pairs of {gen.G.cfg.mode} (step {gen.step}) dreamed by {tr.source} -> "
              f"{out}/maps (index PNGs, classes.json), {out}/photos; train on them with --set data.name=folder "
              f"--set data.root={out}/maps --set data.photos={out}/photos")
        return 0
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


def add_dream(sub: SubParsers) -> None:
    """``semgan dream``."""
    p = sub.add_parser("dream", help="dream photos: sample maps from a generator, translate them with pix2pix")
    p.add_argument("--generator", type=Path, required=True, help="SemGAN or RGB-baseline run (or exported model)")
    p.add_argument("--translator", type=Path, required=True, help="pix2pix run of the same class set")
    p.add_argument("--n", type=POSITIVE, default=16, help="maps to dream; with --interpolate: keys")
    p.add_argument("--seed", type=SEED, default=0, help="seeds the latents and the translator")
    p.add_argument("--out", type=OUT, help="new folder for labels/, maps/, photos/ and grid.png")
    p.add_argument("--dataset", type=OUT, help="instead of --out: a paired folder for training (maps/ with "
                   "classes.json, photos/); pair i is seed SEED+i; resumable: the same command continues it")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--interpolate", action="store_true",
                   help="walk a spherical path through --n latents (at least 2); writes strip.png and walk.gif")
    p.add_argument("--frames", type=POSITIVE, default=16, help="frames per leg of the walk")
    p.add_argument("--checkpoint", default="latest", help="the generator's checkpoint")
    add_device(p)
    p.set_defaults(func=_cmd_dream)
