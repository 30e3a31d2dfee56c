"""Generator and discriminator: one code path for SemGAN (softmax head) and the RGB baseline (tanh head)."""

from __future__ import annotations

from semgan.models.networks import Discriminator, Generator, build_models

__all__ = ["Discriminator", "Generator", "build_models"]
