"""SemGAN: adversarial pixel-level generation of semantic images (Ghelfi et al. 2019).

``semgan.load(path)`` returns a :class:`semgan.api.LabelMapGenerator` (see :mod:`semgan.api`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from semgan.api import load as load


def __getattr__(name: str) -> Any:  # lazy, so that `import semgan` stays light
    if name == "load":
        from semgan.api import load

        return load
    raise AttributeError(f"module 'semgan' has no attribute {name!r}")
