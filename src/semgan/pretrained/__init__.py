"""Models shipped inside the package, to try semgan before training anything.

Each is an exported model folder (``semgan export``: safetensors weights, config, model card) under this
package, so it needs no download: ``semgan sample --pretrained shapes --seeds 0-15 --out x`` or
``semgan.load("pretrained:shapes")``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from semgan.errors import SemGANError

# name -> what it is (the model card in the folder has the rest: config, classes, metrics)
PRETRAINED = {
    "shapes": "SemGAN on Colored Shapes (64 px, 4 classes), shapes-cpu (EMA, ADA, noise floor, class prior, guard, "
              "lr decay)",
}
PREFIX = "pretrained:"


def pretrained_path(name: str) -> Path:
    """The folder of the shipped model ``name``.

    Raises:
        SemGANError: for a name that is not shipped, listing those that are.
    """
    if name not in PRETRAINED:
        raise SemGANError(f"no pretrained model {name!r}; shipped: {', '.join(sorted(PRETRAINED))}")
    path = Path(str(files(__name__) / name))
    if not (path / "model.safetensors").is_file():
        raise SemGANError(f"the pretrained model {name!r} is missing from this installation ({path}); reinstall "
                          "semgan")
    return path


def resolve(path: str | Path) -> Path:
    """``"pretrained:NAME"`` -> the shipped model's folder; any other path unchanged."""
    text = str(path)
    return pretrained_path(text[len(PREFIX):]) if text.startswith(PREFIX) else Path(path)
