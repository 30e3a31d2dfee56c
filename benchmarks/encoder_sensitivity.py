"""Why G(E(G(z))) misses G(z): how decided the generator's softmax is, and how far its argmax moves with z.

A generator whose softmax is near-uniform on many pixels has argmax maps on a knife edge: no encoder (and no
refinement of the cross-entropy) recovers those pixels. This prints, for ``--samples`` of the encoder's
generator (the same seeded latents as ``encoder_quality.py``'s "G's own samples")::

    python benchmarks/encoder_sensitivity.py runs/enc-facades

- the softmax's mean top-1 probability and the share of pixels whose top two classes are within 0.1 / 0.3;
- pixel accuracy of G(z + e) against G(z) for random directions e of 2-40 % of |z|;
- pixel accuracy of G(E(G(z))) against G(z), over all pixels and over the pixels G decides (margin >= t);
- the same after ``--refine`` steps at a few step sizes.
"""

from __future__ import annotations

import argparse

import torch

from semgan.compare import cpu_name
from semgan.encoder import Encoder, invert
from semgan.model_files import load_model
from semgan.sample import latents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("encoder", help="an encoder run folder or export")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help="as encoder_quality.py's (its samples use seed + 2)")
    parser.add_argument("--refine", default="100,400")
    parser.add_argument("--lrs", default="0.05", help="refinement step sizes, comma-separated")
    args = parser.parse_args()

    enc: Encoder = load_model(args.encoder, family="encoder")
    G = enc.generator.G.eval()
    print(f"{args.encoder} (step {enc.step}); machine: {cpu_name()}, {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads")
    z = latents(args.samples, enc.ld, generator=torch.Generator().manual_seed(args.seed + 2))  # (N, ld)
    with torch.no_grad():
        probs = torch.cat([G(z[i:i + 64], activate=False).float().softmax(1) for i in range(0, len(z), 64)])
    top2 = probs.topk(2, dim=1).values  # (N, 2, H, W)
    margin = top2[:, 0] - top2[:, 1]  # (N, H, W)
    own = probs.argmax(1)  # (N, H, W) labels
    print(f"softmax: mean top-1 probability {top2[:, 0].mean():.3f}; pixels with top-1 minus top-2 < 0.1: "
          f"{(margin < 0.1).float().mean():.3f}, < 0.3: {(margin < 0.3).float().mean():.3f}")

    def acc(labels: torch.Tensor, mask: torch.Tensor | None = None) -> float:
        same = labels == own
        return float(same[mask].float().mean() if mask is not None else same.float().mean())

    g = torch.Generator().manual_seed(args.seed + 5)
    for eps in (0.02, 0.05, 0.1, 0.2, 0.4):
        d = torch.randn(z.shape, generator=g)
        d = d / d.norm(dim=1, keepdim=True) * z.norm(dim=1, keepdim=True) * eps
        print(f"G(z + {eps:.2f} |z| in a random direction) against G(z): pixel accuracy "
              f"{acc(enc.decode(z + d).labels):.4f}")
    z_e = enc.latents_of(own)
    rec = enc.decode(z_e).labels
    print(f"G(E(G(z))) against G(z): pixel accuracy {acc(rec):.4f}; |E(G(z)) - z| / |z| "
          f"{((z_e - z).norm(dim=1) / z.norm(dim=1)).mean():.3f}")
    for t in (0.3, 0.5):
        m = margin >= t
        print(f"  on the pixels G decides by >= {t} ({m.float().mean():.3f} of them): {acc(rec, m):.4f}")
    for lr in (float(s) for s in args.lrs.split(",")):
        for n in (int(s) for s in args.refine.split(",")):
            refined = enc.decode(invert(G, own, z_e, n, lr=lr)).labels
            print(f"E + refine {n} at lr {lr}: pixel accuracy {acc(refined):.4f}", flush=True)


if __name__ == "__main__":
    main()
