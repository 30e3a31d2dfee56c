"""Typed, frozen run configuration, named presets and dotted overrides.

A run is fully described by a :class:`RunConfig`; presets are named ``RunConfig`` values (the paper's
configurations among them) and the command line changes single fields with ``--set model.ks=7``.
Every run writes its resolved config to ``config.json``, and ``--resume`` compares against it.

- :mod:`semgan.config.schema`: the sections, their choices and checks;
- :mod:`semgan.config.overrides`: JSON round trip, dotted keys, ``--set``;
- :mod:`semgan.config.presets`: the named configurations.
"""

from __future__ import annotations

from semgan.config.overrides import (
    MOVED_KEYS,
    apply_cli,
    apply_overrides,
    diff,
    flatten,
    from_dict,
    to_dict,
    valid_keys,
)
from semgan.config.presets import PRESET_HELP, PRESETS, add_preset, get_preset
from semgan.config.schema import (
    G_LOSSES,
    MODEL_FAMILIES,
    MODES,
    PRECISIONS,
    DataConfig,
    EncoderModelConfig,
    EvalConfig,
    Mode,
    ModelConfig,
    ModelSection,
    Pix2PixModelConfig,
    RunConfig,
    SemGANModelConfig,
    TrainConfig,
    model_section,
)

__all__ = [
    "G_LOSSES", "MOVED_KEYS", "MODEL_FAMILIES", "MODES", "Mode", "PRECISIONS", "PRESETS", "PRESET_HELP",
    "DataConfig", "EncoderModelConfig", "EvalConfig", "ModelConfig", "ModelSection", "Pix2PixModelConfig", "RunConfig",
    "SemGANModelConfig", "TrainConfig", "add_preset", "model_section", "apply_cli", "apply_overrides",
    "diff", "flatten", "from_dict", "get_preset", "to_dict", "valid_keys",
]  # fmt: skip
