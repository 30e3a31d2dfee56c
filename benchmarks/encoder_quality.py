"""How well a trained encoder inverts its generator, against two baselines, on maps it never saw.

For the held-out real maps of the encoder's run (``model.holdout``, chosen by name: never trained on) and for the
generator's own samples, one table::

    python benchmarks/encoder_quality.py runs/enc-shapes --refine 0,25,100,400 --sheet docs/results/x.png

- **E**, and **E + refine N**: the encoder's latents, then N Adam steps per latent on the reconstruction loss;
- **optimise N**: the same N steps from a random N(0, 1) latent (pure optimisation), so that each N is the same
  time as E + refine N, give or take E's one forward pass;
- **nearest of M**: the best-mIoU map among M generated ones (default 10,000), per held-out map.

Each row: pixel accuracy and mIoU of the reconstructions against the maps (the set's confusion matrix), and
maps/s on this machine (threads as ``OMP_NUM_THREADS`` says). The generator's own samples: pixel accuracy of
G(E(G(z))) against G(z). ``--sheet`` draws, for ``--pairs`` pairs of held-out maps, the real start, the walk
between their encoded latents and the real end.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from semgan.compare import cpu_name
from semgan.data import dataset_from_config, holdout_split
from semgan.dream import walk
from semgan.encoder import Encoder, invert
from semgan.labels import colorize, make_grid, write_rgb_png
from semgan.metrics.segmentation import segmentation_scores
from semgan.model_files import load_model
from semgan.sample import latents


def per_map_miou(target: torch.Tensor, bank: torch.Tensor, K: int, chunk: int = 500) -> torch.Tensor:
    """(N, M): the mIoU of each of N maps against each of M maps (classes in neither left out), by one-hot
    products in chunks. (N, H, W) and (M, H, W) labels."""
    t = torch.nn.functional.one_hot(target.long(), K).flatten(1, 2).float()  # (N, HW, K)
    t_area = t.sum(1)  # (N, K)
    out = []
    for lo in range(0, len(bank), chunk):
        b = torch.nn.functional.one_hot(bank[lo:lo + chunk].long(), K).flatten(1, 2).float()  # (m, HW, K)
        inter = torch.einsum("npk,mpk->nmk", t, b)  # (N, m, K)
        union = t_area[:, None] + b.sum(1)[None] - inter
        present = union > 0
        iou = torch.where(present, inter / union.clamp(min=1), torch.zeros_like(inter))
        out.append(iou.sum(2) / present.sum(2).clamp(min=1))
    return torch.cat(out, 1)


def row(name: str, target: torch.Tensor, rec: torch.Tensor, K: int, seconds: float) -> list[str]:
    s = segmentation_scores(target, rec, K)
    return [name, f"{s['pixel_acc']:.4f}", f"{s['miou']:.4f}", f"{len(target) / seconds:.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("encoder", type=Path, help="an encoder run folder (its held-out split is read from it)")
    parser.add_argument("--data-root", default="", help="the data folder, if not the one the run was trained on")
    parser.add_argument("--refine", default="0,25,100,400", help="refinement steps, comma-separated")
    parser.add_argument("--bank", type=int, default=10_000, help="generated maps of the nearest-neighbour baseline")
    parser.add_argument("--own-refine", default="25", help="refinement steps on G's own samples, comma-separated")
    parser.add_argument("--samples", type=int, default=256, help="generator samples for G(E(G(z)))")
    parser.add_argument("--n", type=int, default=0, help="held-out maps to use (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet", type=Path, help="PNG: walks between pairs of held-out maps")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--frames", type=int, default=8)
    args = parser.parse_args()

    enc: Encoder = load_model(args.encoder, family="encoder")
    cfg = enc.cfg
    data = cfg.data if not args.data_root else cfg.data.__class__(**{**cfg.data.__dict__, "root": args.data_root})
    dataset = dataset_from_config(data)
    _, held = holdout_split(dataset, cfg.model.holdout, cfg.data.seed)  # type: ignore[attr-defined]
    target = dataset.labels[held].long()
    if args.n:
        target = target[:args.n]
    K, G = len(enc.class_names), enc.generator.G
    steps = [int(s) for s in args.refine.split(",")]
    print(f"{args.encoder} (step {enc.step}) on {len(target)} held-out maps of {dataset.name!r}; machine: "
          f"{cpu_name()}, {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads")
    rows = []
    t0 = time.perf_counter()
    z_e = enc.latents_of(target)
    t_e = time.perf_counter() - t0
    for n in steps:
        t0 = time.perf_counter()
        z = invert(G, target, z_e, n) if n else z_e
        rec = enc.decode(z).labels
        rows.append(row("E" if n == 0 else f"E + refine {n}", target, rec, K, t_e + time.perf_counter() - t0))
    z0 = latents(len(target), enc.ld, generator=torch.Generator().manual_seed(args.seed))
    for n in [s for s in steps if s]:
        t0 = time.perf_counter()
        rec = enc.decode(invert(G, target, z0, n)).labels
        rows.append(row(f"optimise {n} (random start)", target, rec, K, time.perf_counter() - t0))
    t0 = time.perf_counter()
    bank = enc.decode(latents(args.bank, enc.ld, generator=torch.Generator().manual_seed(args.seed + 1))).labels
    best = per_map_miou(target, bank, K).argmax(1)
    rows.append(row(f"nearest of {args.bank} generated", target, bank[best], K, time.perf_counter() - t0))
    print("\n| method | pixel accuracy | mIoU | maps/s |\n|---|---:|---:|---:|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    own = enc.decode(latents(args.samples, enc.ld, generator=torch.Generator().manual_seed(args.seed + 2))).labels
    for n in (0, *[int(s) for s in args.own_refine.split(",") if int(s)]):
        rec = enc.encode(own, refine=n).labels
        print(f"G's own samples ({args.samples}), G(E(G(z))) against G(z){' + refine ' + str(n) if n else ''}: "
              f"pixel accuracy {segmentation_scores(own, rec, K)['pixel_acc']:.4f}")
    if args.sheet:
        pal = enc.palette
        g = torch.Generator().manual_seed(args.seed + 3)
        picks = torch.randperm(len(target), generator=g)[:2 * args.pairs].view(-1, 2)
        cells = []
        for a, b in picks.tolist():
            z = enc.encode(target[[a, b]], refine=max(steps)).latents
            frames = enc.decode(walk(z, args.frames)).labels
            cells.append(torch.cat([colorize(target[a:a + 1], pal), colorize(frames, pal),
                                    colorize(target[b:b + 1], pal)]))
        write_rgb_png(args.sheet, make_grid(torch.cat(cells), nrow=args.frames + 2, pad=1))
        print(f"sheet: {args.sheet} (each row: a held-out map, the walk between the encoded latents after "
              f"{max(steps)} refinement steps, the other map)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
