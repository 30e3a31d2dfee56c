"""Config <-> JSON, dotted keys and typed ``--set`` overrides.

Every way to make a :class:`~semgan.config.schema.RunConfig` from outside (a saved ``config.json``, a
``--set model.ks=7``, a Python dict) goes through :func:`from_dict`, which converts each value to its field's
type and builds the sections once, so the checks of :mod:`semgan.config.schema` run on the final values.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, Literal

from semgan.config.schema import MODEL_FAMILIES, RunConfig, Section, SemGANModelConfig, expected_choices
from semgan.errors import SemGANError


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """Plain JSON-able nested dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def section_type(name: str, family: str = "semgan") -> type[Section]:
    """The dataclass of section ``name`` (the model section's depends on the family)."""
    if name == "model":
        if family not in MODEL_FAMILIES:
            raise SemGANError(f"model.family={family!r}; expected {expected_choices(tuple(MODEL_FAMILIES))}")
        return MODEL_FAMILIES.get(family)
    return typing.cast(type[Section], typing.get_type_hints(RunConfig)[name])


#: The GAN recipe's keys, once in ``train`` and now in the ``semgan`` family's model section (old name -> new).
#: A saved config in the old layout still loads, and ``--set`` takes the old spelling with a note.
MOVED_KEYS = {f"train.{k}": f"model.{k}" for k in (
    "g_loss", "d_loss", "fm_layer", "g_ns_weight", "class_prior", "d_noise", "d_noise_steps", "d_noise_floor",
    "d_blur", "r1_gamma", "r1_every", "augment", "augment_p", "ada_target", "ada_images")}


def _migrate(d: dict[str, Any]) -> dict[str, Any]:
    """A config dict in the layout before :data:`MOVED_KEYS` moved, in today's. Another family's section never
    had those keys set (they were refused for it), so its old defaults are dropped."""
    train, model = d.get("train"), d.get("model", {})
    if not isinstance(train, dict) or not isinstance(model, dict) or not any(
            old.partition(".")[2] in train for old in MOVED_KEYS):
        return d  # nothing moved (a section that is not a mapping is from_dict's to report)
    train, model = dict(train), dict(model)
    semgan = str(model.get("family", "semgan")) == "semgan"
    for old in MOVED_KEYS:
        name = old.partition(".")[2]
        if name not in train:
            continue
        value = train.pop(name)
        if semgan:
            model.setdefault(name, value)
        elif _coerce(old, value, typing.get_type_hints(SemGANModelConfig)[name]) != getattr(SemGANModelConfig, name):
            raise SemGANError(f"{old}={value!r} has no effect on {model.get('family')} (model.family="
                              f"{model.get('family')}); remove it")
    return {**d, "train": train, "model": model}


def from_dict(d: dict[str, Any]) -> RunConfig:
    """Inverse of :func:`to_dict`; unknown keys are refused, missing keys take their defaults. A config in an
    older layout (:data:`MOVED_KEYS`) is read in today's."""
    d = _migrate(d)
    sections: dict[str, Any] = {}
    for f in fields(RunConfig):
        raw = d.get(f.name, {})
        if not isinstance(raw, dict):
            raise SemGANError(f"config section {f.name!r} must be a mapping of keys to values, got {raw!r}")
        cls = section_type(f.name, str(raw.get("family", "semgan")) if f.name == "model" else "semgan")
        hints = typing.get_type_hints(cls)
        unknown = sorted(set(raw) - {x.name for x in fields(cls)})  # type: ignore[arg-type]
        if unknown:
            raise SemGANError(f"unknown config keys {', '.join(f'{f.name}.{k}' for k in unknown)}")
        sections[f.name] = cls(**{k: _coerce(f"{f.name}.{k}", v, hints[k]) for k, v in raw.items()})
    return RunConfig(**sections)


def flatten(cfg: RunConfig) -> dict[str, Any]:
    """``{"model.ks": 11, ...}``: every leaf under its dotted key."""
    return {f"{s}.{k}": v for s, sec in to_dict(cfg).items() for k, v in sec.items()}


def diff(a: RunConfig, b: RunConfig, ignore: tuple[str, ...] = ()) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ, with (a, b) values (a key only one side has counts as differing)."""
    fa, fb = flatten(a), flatten(b)
    return {k: (fa.get(k), fb.get(k)) for k in {**fa, **fb} if fa.get(k) != fb.get(k) and k not in ignore}


def valid_keys(cfg: RunConfig | None = None) -> list[str]:
    """The dotted keys of ``cfg`` (its model family decides the model keys; default: a default config)."""
    return list(flatten(cfg if cfg is not None else RunConfig()))


def _coerce(key: str, value: Any, typ: Any) -> Any:
    """Convert ``value`` (a JSON value or a command-line string) to the field type, or explain why not.

    Choices (``Literal``) and ranges are checked by the sections themselves; this only converts types.
    """
    origin = typing.get_origin(typ)
    try:
        if origin is Literal:
            (first, *_rest) = typing.get_args(typ)
            return _coerce(key, value, type(first))
        if origin is tuple or typ is tuple:
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list | tuple):
                raise ValueError
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
    except (TypeError, ValueError, OverflowError):
        name = getattr(typ, "__name__", str(typ))
        raise SemGANError(f"{key}={value!r} is not a valid {name}") from None
    raise TypeError(f"unsupported config field type {typ!r} for {key}")


def apply_overrides(cfg: RunConfig, overrides: Sequence[str] | dict[str, Any]) -> RunConfig:
    """Apply ``["model.ks=7", "train.lr=2e-4"]`` (or a dict) with type checks; later ones win.

    The new config is built once from all overrides together, so a pair of changes that is only valid as a
    pair (``train.batch`` and ``model.d_mbstd``) can be given in either order. ``model.family=NAME`` starts
    the model section afresh from that family's defaults.

    >>> apply_overrides(RunConfig(), ["model.ks=7"]).model.ks
    7
    """
    items = list(overrides.items() if isinstance(overrides, dict) else (_split_override(o) for o in overrides))
    items = [(_moved(key), raw) for key, raw in items]
    d = to_dict(cfg)
    for key, raw in items:
        if key == "model.family" and raw != d["model"]["family"]:
            d["model"] = {"family": raw}
    keys = valid_keys(from_dict({**d, "model": {"family": d["model"]["family"]}}))
    for key, raw in items:
        if key not in keys:
            family = d["model"]["family"]
            owners = [name for name in MODEL_FAMILIES if name != family and key.startswith("model.")
                      and key.partition(".")[2] in {f.name for f in fields(MODEL_FAMILIES.get(name))}]  # type: ignore[arg-type]
            if owners:
                raise SemGANError(f"{key} is a key of the {' and '.join(owners)} family, not of {family} "
                                  f"(model.family={family}); remove it")
            raise SemGANError(f"unknown config key {key!r}; valid keys: {', '.join(keys)}")
        section, _, name = key.partition(".")
        d[section][name] = raw
    return from_dict(d)


def _moved(key: str) -> str:
    """Today's name of a dotted key (:data:`MOVED_KEYS`), said once on stderr when it moved."""
    new = MOVED_KEYS.get(key)
    if new is None:
        return key
    if key not in _SAID:
        _SAID.add(key)
        print(f"semgan: {key} is now {new}", file=sys.stderr)
    return new


_SAID: set[str] = set()


def apply_cli(base: RunConfig, sets: Sequence[str], flags: dict[str, object | None]) -> RunConfig:
    """A command line's config: ``--set KEY=VALUE`` overrides, then the dedicated flags that were given
    (``{"train.steps": args.steps, ...}``; None = not given), so a flag wins over a ``--set`` of its key."""
    given = {k: v for k, v in flags.items() if v is not None}
    return apply_overrides(base, {**dict(map(_split_override, sets)), **given})


def _split_override(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SemGANError(f"override {text!r} must look like section.key=value, e.g. model.ks=7")
    return key.strip(), value.strip()
