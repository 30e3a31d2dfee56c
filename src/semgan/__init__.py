"""SemGAN: adversarial pixel-level generation of semantic images (Ghelfi et al. 2019)."""

from __future__ import annotations

__version__ = "0.1.0"
