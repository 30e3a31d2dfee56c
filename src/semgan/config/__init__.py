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
    SegmenterModelConfig,
    SemGANModelConfig,
    TrainConfig,
    model_section,
)

__all__ = [
    "add_preset", "apply_cli", "apply_overrides", "DataConfig", "diff", "EncoderModelConfig", "EvalConfig",
    "flatten", "from_dict", "G_LOSSES", "get_preset", "Mode", "MODEL_FAMILIES", "model_section", "ModelConfig",
    "ModelSection", "MODES", "MOVED_KEYS", "Pix2PixModelConfig", "PRECISIONS", "PRESET_HELP", "PRESETS",
    "RunConfig", "SegmenterModelConfig", "SemGANModelConfig", "to_dict", "TrainConfig", "valid_keys",
]  # fmt: skip
