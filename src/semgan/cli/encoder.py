"""``semgan encoder train``, ``semgan encode`` and ``semgan interpolate``: maps to latents and walks between maps."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from semgan.cli.common import OUT, SEED, SubParsers, add_device
from semgan.devices import resolve_device
from semgan.errors import SemGANError

if TYPE_CHECKING:
    from semgan.encoder import Encoder


def add_encoder(sub: SubParsers) -> None:
    """``semgan encoder train``."""
    from semgan.cli.train import add_family_group

    _, p = add_family_group(sub, "encoder", "train a semantic encoder (label map -> latent) for a SemGAN generator",
                            "train an encoder for a trained SemGAN generator, on its data",
                            "Train a semantic encoder E for the SemGAN generator --generator (frozen). Without "
                            "--preset it takes encoder-cpu; the data are the generator's own (its data section; "
                            "--data-root or --set data.* change them).")
    p.add_argument("--generator", help="the SemGAN generator: a run folder, checkpoint file, export or "
                   "pretrained:NAME (model.generator)")


def _cmd_encode(args: argparse.Namespace) -> int:
    import torch

    from semgan.dream import read_label_folder
    from semgan.encoder import write_latents
    from semgan.labels import colorize, make_grid, write_label_png, write_rgb_png
    from semgan.metrics.segmentation import segmentation_scores

    enc = _load(args)
    out: Path = args.out
    if out.suffix != ".npz":
        raise SemGANError(f"--out {out}: expected a .npz file for the latents (the maps go beside it)")
    maps_dir, grid = out.with_name(f"{out.stem}-maps"), out.with_name(f"{out.stem}-grid.png")
    taken = [p for p in (out, maps_dir, grid) if p.exists()]
    if taken:
        raise SemGANError(f"--out {out}: {taken[0]} already exists; choose a new name, so that old and new results "
                          "do not mix")
    if not out.parent.is_dir():
        raise SemGANError(f"--out {out}: the folder {out.parent} does not exist")
    labels, names = read_label_folder(args.maps, len(enc.class_names), what="--maps", owner="encoder")
    enc.check_maps(labels, f"--maps {args.maps}")
    encoded = enc.encode(labels, refine=args.refine, lr=args.lr)
    if args.generator is not None:  # decode through another copy of the generator, once it is shown to be the same
        from semgan.model_files import load_generator

        gen = load_generator(args.generator, device=next(enc.E.parameters()).device)
        enc.check_generator(gen, f"--generator {args.generator}")
    partial = maps_dir.with_name(maps_dir.name + ".partial")  # renamed when complete: never a half-written folder
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for name, rec in zip(names, encoded.labels, strict=True):
        write_label_png(partial / name, rec, enc.palette)
    pal = enc.palette
    pairs = torch.stack([colorize(labels[:32], pal), colorize(encoded.labels[:32], pal)], 1).flatten(0, 1)
    write_rgb_png(grid, make_grid(pairs, nrow=8))  # map | reconstruction, four pairs a row
    write_latents(out, encoded, names, enc)
    partial.rename(maps_dir)
    s = segmentation_scores(labels, encoded.labels, len(enc.class_names))
    print(f"{len(names)} maps of {args.maps} -> {out} (latents {tuple(encoded.latents.shape)}), reconstructions "
          f"{maps_dir}/, {grid} (map | reconstruction); refine {args.refine} steps: pixel accuracy "
          f"{s['pixel_acc']:.4f}, mIoU {s['miou']:.4f}")
    return 0


def _load(args: argparse.Namespace) -> Encoder:
    from semgan.model_files import load_model

    device = resolve_device(args.device, key="--device")
    enc: Encoder = load_model(args.encoder, args.checkpoint, device, family="encoder",
                              purpose=f"`semgan {args.command}`")
    return enc


def add_encode(sub: SubParsers) -> None:
    """``semgan encode``."""
    p = sub.add_parser("encode", help="encode a folder of label maps into a generator's latents",
                       description="Encode every index PNG of --maps with a trained encoder: OUT (.npz: latents, "
                       "names, per-map loss, the generator's fingerprint), the generator's reconstructions in "
                       "OUT-maps/ and a map | reconstruction grid OUT-grid.png. --refine N optimises each latent "
                       "from the encoder's start for N Adam steps (hybrid inversion).")
    p.add_argument("encoder", type=Path, help="encoder run folder, checkpoint file or export")
    p.add_argument("--maps", type=Path, required=True, help="folder of index PNGs of the generator's classes")
    p.add_argument("--out", type=OUT, required=True, help="the latents file, e.g. latents.npz")
    p.add_argument("--refine", type=int, default=0, help="Adam steps per latent after the encoder (0 = none)")
    p.add_argument("--lr", type=float, default=0.05, help="Adam's step for --refine")
    p.add_argument("--generator", type=Path, help="check that this generator is the encoder's own (its fingerprint)")
    p.add_argument("--checkpoint", default="latest", help="checkpoint name in ENCODER/checkpoints")
    add_device(p)
    p.set_defaults(func=_cmd_encode)


def _cmd_interpolate(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from PIL import Image

    from semgan.dream import staged, walk
    from semgan.io import atomic_write
    from semgan.labels import colorize, make_grid, read_label_png, write_label_png, write_rgb_png

    if args.steps < 2:
        raise SemGANError(f"--steps {args.steps}: a walk needs at least 2 frames (its two ends)")
    if args.from_.resolve() == args.to.resolve():
        raise SemGANError(f"--from and --to are the same map ({args.from_}); a walk needs two")
    out: Path = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SemGANError(f"--out {out} is not an empty folder; choose a new one, so that old and new results do "
                          "not mix")
    enc = _load(args)
    tr = None
    if args.translator is not None:
        from semgan.model_files import load_translator

        tr = load_translator(args.translator, device=next(enc.E.parameters()).device)
        tr.check_compatible(enc.class_names, enc.palette, f"the encoder {args.encoder}")
    K = len(enc.class_names)
    ends = []
    for opt, path in (("--from", args.from_), ("--to", args.to)):
        if not path.is_file():
            raise SemGANError(f"{opt} {path}: no such file; expected an index PNG")
        m = torch.from_numpy(read_label_png(path)).long()[None]
        if m.numel() and int(m.max()) >= K:
            raise SemGANError(f"{opt} {path}: label values up to {int(m.max())}; the encoder has {K} classes "
                              f"(0..{K - 1})")
        enc.check_maps(m, f"{opt} {path}")
        ends.append(m)
    pair = torch.cat(ends)
    encoded = enc.encode(pair, refine=args.refine, lr=args.lr)
    path = walk(encoded.latents, args.steps)  # (steps, ld) on the great circle between the two latents
    maps = enc.decode(path).labels
    pal = enc.palette
    colors = colorize(maps, pal)
    photos = tr(maps, seed=args.seed) if tr is not None else None
    with staged(out) as tmp:  # renamed to OUT when complete: never a half-written folder
        (tmp / "labels").mkdir()
        for i in range(len(maps)):
            write_label_png(tmp / "labels" / f"{i:04d}.png", maps[i], pal)
        rows = [colorize(pair, pal)[:1], colors, colorize(pair, pal)[1:]]  # the real start, the walk, the real end
        strip = make_grid(torch.cat(rows), nrow=len(maps) + 2, pad=1)
        if photos is not None:
            (tmp / "photos").mkdir()
            for i in range(len(maps)):
                write_rgb_png(tmp / "photos" / f"{i:04d}.png", photos[i])
            blank = torch.zeros_like(photos[:1])
            strip = make_grid(torch.cat([*rows, blank, photos, blank]), nrow=len(maps) + 2, pad=1)
        write_rgb_png(tmp / "strip.png", strip)
        frames = [torch.cat([c, p], 2) if photos is not None else c
                  for c, p in zip(colors, photos if photos is not None else colors, strict=True)]
        images = [Image.fromarray(np.ascontiguousarray(f.permute(1, 2, 0).numpy())) for f in frames]
        atomic_write(tmp / "walk.gif", lambda f: images[0].save(f, format="GIF", save_all=True,
                                                               append_images=images[1:], duration=120, loop=0))
    print(f"a walk of {args.steps} frames from {args.from_} to {args.to} (reconstruction loss "
          f"{float(encoded.loss[0]):.3f}, {float(encoded.loss[1]):.3f}) -> {out}/strip.png (real map, walk, real "
          f"map), {out}/walk.gif, {out}/labels/" + (f", {out}/photos/" if photos is not None else ""))
    return 0


def add_interpolate(sub: SubParsers) -> None:
    """``semgan interpolate``."""
    p = sub.add_parser("interpolate", help="walk between two real label maps through an encoder's latents",
                       description="Encode --from and --to, walk the great circle between their latents and draw "
                       "each frame with the generator (and, with --translator, its photo): OUT/strip.png (the real "
                       "start, the walk, the real end), OUT/walk.gif, OUT/labels/ (and OUT/photos/).")
    p.add_argument("encoder", type=Path, help="encoder run folder, checkpoint file or export")
    p.add_argument("--from", dest="from_", type=Path, required=True, help="the first map (index PNG)")
    p.add_argument("--to", type=Path, required=True, help="the last map (index PNG)")
    p.add_argument("--steps", type=int, default=8, help="frames of the walk, both ends included")
    p.add_argument("--refine", type=int, default=0, help="Adam steps per end latent after the encoder")
    p.add_argument("--lr", type=float, default=0.05, help="Adam's step for --refine")
    p.add_argument("--translator", type=Path, help="a pix2pix run of the same classes: a photo of every frame")
    p.add_argument("--seed", type=SEED, default=0, help="seeds the translator's dropout")
    p.add_argument("--out", type=OUT, required=True, help="a new or empty folder")
    p.add_argument("--checkpoint", default="latest", help="checkpoint name in ENCODER/checkpoints")
    add_device(p)
    p.set_defaults(func=_cmd_interpolate)
