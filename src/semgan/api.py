"""Two lines from a trained model to label maps, diffusers style::

    import semgan
    gen = semgan.load("runs/s1")                 # a run folder, a checkpoint file or an exported model folder
    out = gen.sample(16, seed=0)                 # out.labels (16, H, W), out.probs, out.images (16, 3, H, W)

``semgan.load("pretrained:shapes")`` loads the small model shipped with the package. ``load`` takes a model of
any family and returns that family's object for use: a :class:`~semgan.generator.LabelMapGenerator` for SemGAN
and its RGB baseline, a :class:`~semgan.translate.Translator` for pix2pix.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch

from semgan.devices import resolve_device
from semgan.errors import SemGANError
from semgan.generator import Generated, LabelMapGenerator
from semgan.model_files import load_model

__all__ = ["Generated", "LabelMapGenerator", "load", "parse_seeds"]


def load(path: str | Path, *, checkpoint: str = "latest", device: str | torch.device = "auto") -> Any:
    """Load a trained model for use: a run folder (its ``checkpoint``: latest, best-swd, ...), a checkpoint file,
    an exported model folder (``semgan export``) or a model shipped with semgan (``"pretrained:shapes"``).
    ``device="auto"`` takes CUDA when there is one. Returns the family's object (see the module docstring)."""
    return load_model(path, checkpoint, resolve_device(str(device), key="device"))


def parse_seeds(text: str) -> list[int]:
    """``"0-3,7,10-11"`` -> [0, 1, 2, 3, 7, 10, 11] (StyleGAN's seed ranges; order kept; a seed named twice is an
    error, since each seed is one map file)."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise SemGANError(f"--seeds {text!r}: {part!r} is not a seed or a range like 0-35") from None
        if a < 0 or b < a:
            raise SemGANError(f"--seeds {text!r}: {part!r} is not a range of non-negative seeds (low-high)")
        if b > 2**63 - 1:
            raise SemGANError(f"--seeds {text!r}: {part!r} goes past the largest seed, 2**63 - 1")
        if b - a >= 100_000:
            raise SemGANError(f"--seeds {text!r}: {part!r} holds {b - a + 1} seeds; at most 100000 at once")
        seeds += range(a, b + 1)
    twice = sorted(s for s, n in Counter(seeds).items() if n > 1)
    if twice:
        raise SemGANError(f"--seeds {text!r} names seed{'s' * (len(twice) > 1)} {', '.join(map(str, twice[:5]))} "
                          "more than once; each seed is one map file, so name each once")
    return seeds
