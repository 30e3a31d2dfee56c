"""Typed, frozen run configuration, named presets and dotted overrides.

A run is fully described by a :class:`RunConfig`; presets are named ``RunConfig`` values (the paper's
configurations among them) and the command line changes single fields with ``--set model.ks=7``.
Every run writes its resolved config to ``config.json``, and ``--resume`` compares against it.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from semgan.errors import SemGANError
from semgan.registry import Registry

MODES = ("semgan", "gan")
G_LOSSES = ("fm", "fm_all", "fm_l1", "ns")


@dataclass(frozen=True)
class DataConfig:
    name: str = "shapes"  # a registered dataset (see `semgan.data.DATASETS`)
    root: str = ""  # dataset folder; unused by generated data
    size: int = 0  # resolution H = W; 0 = the dataset's own
    classes: str = ""  # class set, for datasets that have several; "" = the dataset's default
    split: str = ""  # "" = the dataset's default
    seed: int = 0  # generation seed (Colored Shapes) or split seed
    skip_bad: bool = False  # skip unreadable / invalid files instead of stopping (reported)
    hflip: bool = False  # also train on every map mirrored left-right (evaluation keeps the originals)


@dataclass(frozen=True)
class ModelConfig:
    mode: str = "semgan"  # "semgan": K-way softmax head; "gan": the RGB (tanh) baseline
    ld: int = 100  # latent size
    ks: int = 11  # kernel size of every (transposed) convolution, G and D alike
    init_res: int = 4  # side of the grid the dense stem reshapes to
    g_channels: int = 512  # G channels at init_res, halved at each upsampling ...
    g_min_channels: int = 32  # ... but never below this
    d_channels: int = 64  # D channels after the first stride-2 conv, doubled at each downsampling ...
    d_max_channels: int = 512  # ... but never above this
    d_dropout: float = 0.3  # dropout after each D block (ashpy's Encoder default); 0 disables
    fake_input: str = "softmax"  # what D sees of a SemGAN fake: "softmax" (the paper) or "st-gumbel"
    d_norm: str = "none"  # D weight normalisation: "none" (the paper) or "spectral" (Miyato et al. 2018)
    d_mbstd: int = 0  # ProGAN minibatch-stddev group size before D's last conv block; 0 = off (the paper)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 50_000  # total G (and D) updates of the run
    batch: int = 32
    lr: float = 1e-4  # same for G and D (paper, appendix B)
    beta1: float = 0.5
    beta2: float = 0.999
    eps: float = 1e-8
    g_loss: str = "fm"  # "fm": Salimans et al. 2016 on layer fm_layer; "fm_all": the same on every D layer;
    #                     "fm_l1": ashpy's per-example L1 on every D layer; "ns": non-saturating -log D(G(z))
    fm_layer: int = -1  # D block whose features "fm" matches (-1 = last conv block)
    d_noise: float = 0.0  # std of Gaussian instance noise on D's inputs, real and fake (Sonderby et al. 2017) ...
    d_noise_steps: int = 0  # ... decayed linearly to 0 over this many steps; 0 = over train.steps
    seed: int = 0
    device: str = "auto"  # "auto" = cuda if available, else cpu
    log_every: int = 50  # steps between scalar logs
    sample_every: int = 500  # steps between fixed-latent sample grids
    ckpt_every: int = 1000  # steps between checkpoints (one is always written at the end)


@dataclass(frozen=True)
class EvalConfig:
    every: int = 0  # steps between evaluations during training; 0 = only at the end (if metrics is set)
    metrics: tuple[str, ...] = ()  # metric names, e.g. ("swd", "semantic")
    n: int = 0  # images per set; 0 = the whole training set (the paper's protocol)
    seed: int = 0


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> RunConfig:
        """Check values that types alone cannot; returns self so it chains."""
        m, t = self.model, self.train
        if m.mode not in MODES:
            raise SemGANError(f"model.mode={m.mode!r}; expected one of {', '.join(MODES)}")
        if m.fake_input not in ("softmax", "st-gumbel"):
            raise SemGANError(f"model.fake_input={m.fake_input!r}; expected 'softmax' or 'st-gumbel'")
        if t.g_loss not in G_LOSSES:
            raise SemGANError(f"train.g_loss={t.g_loss!r}; expected one of {', '.join(G_LOSSES)}")
        for key, value in (("model.ld", m.ld), ("model.ks", m.ks), ("train.batch", t.batch),
                           ("model.init_res", m.init_res), ("model.g_channels", m.g_channels),
                           ("model.g_min_channels", m.g_min_channels), ("model.d_channels", m.d_channels),
                           ("model.d_max_channels", m.d_max_channels)):  # fmt: skip
            if value < 1:
                raise SemGANError(f"{key}={value}; expected a positive integer")
        if t.steps < 0:
            raise SemGANError(f"train.steps={t.steps}; expected >= 0")
        if not 0.0 <= m.d_dropout < 1.0:
            raise SemGANError(f"model.d_dropout={m.d_dropout}; expected a value in [0, 1)")
        if t.lr <= 0:
            raise SemGANError(f"train.lr={t.lr}; expected > 0")
        if m.d_norm not in ("none", "spectral"):
            raise SemGANError(f"model.d_norm={m.d_norm!r}; expected 'none' or 'spectral'")
        if m.d_mbstd < 0 or (m.d_mbstd and t.batch % min(m.d_mbstd, t.batch)):
            raise SemGANError(f"model.d_mbstd={m.d_mbstd}; expected 0 (off) or a group size dividing "
                              f"train.batch={t.batch}")
        if t.d_noise < 0 or t.d_noise_steps < 0:
            raise SemGANError(f"train.d_noise={t.d_noise}, train.d_noise_steps={t.d_noise_steps}; expected >= 0")
        return self


# ------------------------------------------------------------------------------------------- dict round trip


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """Plain JSON-able nested dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(d: dict[str, Any]) -> RunConfig:
    """Inverse of :func:`to_dict`; unknown keys are refused, missing keys take their defaults."""
    sections = {}
    for f in fields(RunConfig):
        cls = _section_type(f.name)
        raw = dict(d.get(f.name, {}))
        hints = typing.get_type_hints(cls)
        unknown = sorted(set(raw) - set(hints))
        if unknown:
            raise SemGANError(f"unknown config keys {', '.join(f'{f.name}.{k}' for k in unknown)}")
        sections[f.name] = cls(**{k: _coerce(f"{f.name}.{k}", v, hints[k]) for k, v in raw.items()})
    return RunConfig(**sections)


def flatten(cfg: RunConfig) -> dict[str, Any]:
    """``{"model.ks": 11, ...}``: every leaf under its dotted key."""
    return {f"{s}.{k}": v for s, sec in to_dict(cfg).items() for k, v in sec.items()}


def diff(a: RunConfig, b: RunConfig, ignore: tuple[str, ...] = ()) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ, with (a, b) values."""
    fa, fb = flatten(a), flatten(b)
    return {k: (fa[k], fb[k]) for k in fa if fa[k] != fb[k] and k not in ignore}


def valid_keys() -> list[str]:
    return list(flatten(RunConfig()))


# ----------------------------------------------------------------------------------------------- overrides


def _section_type(name: str) -> type:
    hints = typing.get_type_hints(RunConfig)
    return typing.cast(type, hints[name])


def _field_type(section: str, key: str) -> Any:
    return typing.get_type_hints(_section_type(section))[key]


def _coerce(key: str, value: Any, typ: Any) -> Any:
    """Convert ``value`` (a JSON value or a command-line string) to the field type, or explain why not."""
    origin = typing.get_origin(typ)
    try:
        if origin is tuple or typ is tuple:
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            (inner, *_rest) = typing.get_args(typ) or (str,)
            return tuple(_coerce(key, v, inner) for v in value)
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return value.lower() in ("1", "true", "yes", "on")
            raise ValueError
        if typ is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, str):
                f = float(value)  # accepts "5e4"
                if f != int(f):
                    raise ValueError
                return int(f)
            if isinstance(value, float) and value != int(value):
                raise ValueError
            return int(value)
        if typ is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if typ is str:
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError):
        name = getattr(typ, "__name__", str(typ))
        raise SemGANError(f"{key}={value!r} is not a valid {name}") from None
    raise TypeError(f"unsupported config field type {typ!r} for {key}")


def apply_overrides(cfg: RunConfig, overrides: list[str] | dict[str, Any]) -> RunConfig:
    """Apply ``["model.ks=7", "train.lr=2e-4"]`` (or a dict) with type checks.

    >>> apply_overrides(RunConfig(), ["model.ks=7"]).model.ks
    7
    """
    items = overrides.items() if isinstance(overrides, dict) else (_split_override(o) for o in overrides)
    for key, raw in items:
        section, _, name = key.partition(".")
        if key not in valid_keys():
            raise SemGANError(f"unknown config key {key!r}; valid keys: {', '.join(valid_keys())}")
        value = _coerce(key, raw, _field_type(section, name))
        cfg = replace(cfg, **{section: replace(getattr(cfg, section), **{name: value})})
    return cfg


def apply_cli(base: RunConfig, sets: Sequence[str], flags: dict[str, object | None]) -> RunConfig:
    """A command line's config: ``--set KEY=VALUE`` overrides, then the dedicated flags that were given
    (``{"train.steps": args.steps, ...}``; None = not given), so a flag wins over a ``--set`` of its key."""
    cfg = apply_overrides(base, list(sets))
    return apply_overrides(cfg, {k: v for k, v in flags.items() if v is not None})


def _split_override(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SemGANError(f"override {text!r} must look like section.key=value, e.g. model.ks=7")
    return key.strip(), value.strip()


# ------------------------------------------------------------------------------------------------- presets

PRESETS: Registry[RunConfig] = Registry("preset")
PRESET_HELP: dict[str, str] = {}


def add_preset(name: str, cfg: RunConfig, help: str) -> None:  # noqa: A002
    PRESETS.add(name, cfg.validate())
    PRESET_HELP[name] = help


def get_preset(name: str) -> RunConfig:
    return PRESETS.get(name)


# The paper's Colored Shapes configuration (appendix B): batch 32, lr 1e-4, ks 11, ld 100, 5e4 steps.
# Widths follow ashpy's Decoder/Encoder pattern (the paper does not give them): G 512 -> 32, D 64 -> 512.
add_preset(
    "shapes",
    RunConfig(
        data=DataConfig(name="shapes"),
        model=ModelConfig(ld=100, ks=11),
        train=TrainConfig(steps=50_000, batch=32, lr=1e-4, sample_every=1000, ckpt_every=5000),
        eval=EvalConfig(every=2500, metrics=("swd", "ms_ssim", "semantic")),
    ),
    "Colored Shapes 64x64, the paper's configuration (lr 1e-4, ks 11, ld 100, batch 32, 50k steps)",
)

# Small enough for a 2-core CPU: SemGAN draws recognisable shapes within ~10 minutes (docs/results.md).
# Kernel 4, not 11: a conv costs ks^2, and a stride-2 transposed conv whose kernel the stride divides has no
# checkerboard artefacts, which narrow networks on a short budget cannot learn away (with ks 5 they never
# did). Feature matching on every D layer ("fm_all") instead of one: with the last layer alone, the narrow
# G hopped between one-class batches for the whole budget; the first layers' means pin the class mix.
add_preset(
    "shapes-cpu",
    RunConfig(
        data=DataConfig(name="shapes"),
        model=ModelConfig(ld=100, ks=4, g_channels=128, g_min_channels=16, d_channels=16, d_max_channels=128),
        train=TrainConfig(steps=3000, batch=32, lr=2e-4, g_loss="fm_all", log_every=25, sample_every=250,
                          ckpt_every=500),
        eval=EvalConfig(every=500, metrics=("swd", "ms_ssim", "semantic")),
    ),
    "Colored Shapes 64x64 on a CPU: narrow widths, ks 4, fm_all, lr 2e-4, 3000 steps (~10 min on 2 cores)",
)

# A seconds-long configuration for tests and smoke runs.
add_preset(
    "tiny",
    RunConfig(
        data=DataConfig(name="shapes"),
        model=ModelConfig(ld=16, ks=3, g_channels=16, g_min_channels=4, d_channels=4, d_max_channels=16),
        train=TrainConfig(steps=20, batch=8, lr=2e-4, log_every=5, sample_every=10, ckpt_every=10),
    ),
    "a few-second smoke configuration (tests, CI); learns nothing useful",
)

# The paper's real-data configurations (Tables 3 and 4, appendix A): 128x128, batch 32, 5e4 steps, kernel
# `ks` in G and D alike. `cityscapes` and `facades` name the rows of Tables 1 and 2 (the best SemGAN of each).
_PAPER_ROWS = {
    "cityscapes": [(2e-4, 128, 7), (2e-4, 300, 11), (2e-4, 300, 7)],
    "facades": [(1e-4, 300, 7), (2e-4, 128, 7), (2e-3, 300, 7), (2e-4, 300, 7)],
}
_PAPER_BEST = {"cityscapes": (2e-4, 128, 7), "facades": (2e-4, 300, 7)}
_CLASSES = {"cityscapes": "cityscapes22", "facades": ""}
_TABLE = {"cityscapes": "Table 3", "facades": "Table 4"}


def _paper_preset(dataset: str, lr: float, ld: int, ks: int) -> RunConfig:
    return RunConfig(
        data=DataConfig(name=dataset, size=128, classes=_CLASSES[dataset]),
        model=ModelConfig(ld=ld, ks=ks),
        train=TrainConfig(steps=50_000, batch=32, lr=lr, sample_every=1000, ckpt_every=5000),
        eval=EvalConfig(every=2500, metrics=("swd", "ms_ssim", "semantic")),
    )


for _ds, _rows in _PAPER_ROWS.items():
    for _lr, _ld, _ks in _rows:
        add_preset(
            f"{_ds}-lr{_lr:.0e}-ld{_ld}-ks{_ks}".replace("e-0", "e-"),
            _paper_preset(_ds, _lr, _ld, _ks),
            f"{_ds.capitalize()} 128x128, {_TABLE[_ds]} row lr {_lr:g}, ld {_ld}, ks {_ks}; 50k steps",
        )
    _lr, _ld, _ks = _PAPER_BEST[_ds]
    add_preset(
        _ds,
        _paper_preset(_ds, _lr, _ld, _ks),
        f"{_ds.capitalize()} 128x128, the paper's best SemGAN (lr {_lr:g}, ld {_ld}, ks {_ks}); 50k steps",
    )


# CPU-sized variants of the real-data presets: the shapes-cpu recipe (narrow widths, ks 4, fm_all) at 128x128,
# so that a 2-core CPU shows visible structure within about fifteen minutes (docs/results.md). Plus instance
# noise (sigma 1 on D's inputs, annealed to 0): without it D separates real from fake within ~100 steps on
# the 378 facades and G never leaves the single dithered "average facade" it first collapses onto; the
# same happened with the paper's fm, with ns, a wider G, lr 1e-4, dropout 0.5, spectral norm and minibatch
# stddev (docs/results.md lists the probes).
def _cpu_preset(dataset: str, steps: int) -> RunConfig:
    return RunConfig(
        data=DataConfig(name=dataset, size=128, classes=_CLASSES[dataset]),
        model=ModelConfig(ld=128, ks=4, g_channels=128, g_min_channels=16, d_channels=16, d_max_channels=128),
        train=TrainConfig(steps=steps, batch=32, lr=2e-4, g_loss="fm_all", d_noise=1.0, log_every=25,
                          sample_every=250, ckpt_every=500),
        eval=EvalConfig(every=500, metrics=("swd", "ms_ssim", "semantic")),
    )


add_preset("facades-cpu", _cpu_preset("facades", 1500),
           "CMP Facades 128x128 on a CPU: shapes-cpu recipe + instance noise, ld 128, 1500 steps (~15 min, 2 cores)")
add_preset("cityscapes-cpu", _cpu_preset("cityscapes", 1500),
           "Cityscapes 128x128 (cityscapes22) on a CPU: the facades-cpu recipe (instance noise), 1500 steps")
