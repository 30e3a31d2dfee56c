"""Model files, read one way for every family: a run folder (one of its checkpoints), a checkpoint file, an
exported model folder (``semgan export``) or a model shipped with semgan (``pretrained:NAME``)::

    model = read_model("runs/s1", which="best-swd")   # TrainedModel: config, classes, step, weights for use
    gen = load_model("runs/s1")                        # the family's object for use (LabelMapGenerator, Translator)

A family says, through static methods of its task class (:class:`semgan.tasks.base.TaskBuilder`), which of a
checkpoint's weights a model for use takes (``use_weights``: the moving average when one was kept), which
networks they go into (``use_networks``) and what wraps them (``for_use``). ``sample``, ``semgan.load``,
``export``, ``translate`` and ``dream`` all load through here, so a new family gets them by defining the three.

Every network is built on the meta device first and its shapes checked against the weights, and the weights
must be finite, before any memory is allocated: a config cannot make us allocate what no file holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from semgan import __version__
from semgan.checkpoint import load_checkpoint
from semgan.config import RunConfig, from_dict
from semgan.errors import SemGANError
from semgan.pretrained import resolve
from semgan.run_dir import RunDir, find_checkpoint
from semgan.tasks import FAMILIES

if TYPE_CHECKING:
    from semgan.generator import LabelMapGenerator
    from semgan.translate import Translator

# An exported model folder (semgan.export writes it).
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
FORMAT = "semgan-model"
#: 1: one network (a SemGAN generator), keys as in its state dict; 2: the family's networks for use, keys
#: ``<network>.<parameter>`` and their names in ``config.json["networks"]``. Both are read.
FORMAT_VERSION = 2
EXPORT = "export"  # TrainedModel.which of an exported model
NETWORK_WORDS = {"G": "generator", "D": "discriminator", "E": "encoder"}  # for messages


@dataclass(frozen=True)
class TrainedModel:
    """What a model file holds for use.

    Attributes:
        cfg: the run's config (its family is ``cfg.model.family``).
        data: the training data's description: ``class_names``, ``palette`` (K x 3), ``resolution``, ``name``.
        step: the training step of the weights.
        weights: the state dict of each network a model for use needs, by name (``{"G": ...}``).
        source: the checkpoint file, or the export's weights file.
        which: the checkpoint's name (``latest``, ``best-swd``, ...), or ``export``.
        metrics: an export's recorded scores (empty for a checkpoint; :mod:`semgan.export` reads the run's).
        meta: what the family saved of its model beyond the config (plain values; empty for most families).
    """

    cfg: RunConfig
    data: dict[str, Any]
    step: int
    weights: dict[str, dict[str, torch.Tensor]]
    source: Path
    which: str
    metrics: dict[str, Any]
    meta: dict[str, Any]

    @property
    def family(self) -> str:
        return self.cfg.model.family

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.data["class_names"])

    @property
    def palette(self) -> torch.Tensor:
        """(K, 3) uint8."""
        return torch.as_tensor(self.data["palette"], dtype=torch.uint8)

    @property
    def resolution(self) -> int:
        return int(self.data["resolution"])

    @property
    def run(self) -> RunDir | None:
        """The run folder the checkpoint lies in, if it lies in one."""
        if self.which == EXPORT:
            return None
        folder = RunDir(self.source.parent.parent)
        return folder if folder.exists() else None


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is an exported model folder."""
    return (Path(path) / WEIGHTS).is_file() and (Path(path) / CONFIG).is_file()


def read_model(path: str | Path, which: str = RunDir.LATEST) -> TrainedModel:
    """Read a run folder's checkpoint ``which``, a checkpoint file, an exported folder or ``pretrained:NAME``.

    Raises:
        SemGANError: for a missing or foreign file, or one without what a model for use needs.
    """
    path = resolve(path)
    if is_export(path):
        return read_export(path)
    if (path / "model.onnx").is_file() and not (path / WEIGHTS).exists():
        raise SemGANError(f"{path} is an ONNX export, for onnxruntime and other runtimes; semgan reads the run, "
                          "its checkpoints or its safetensors export (semgan export RUN --out DIR)")
    source = find_checkpoint(path, which)
    ckpt = load_checkpoint(source, map_location="cpu")
    cfg, data = _described(ckpt.get("config"), ckpt.get("data"), source)
    weights = FAMILIES.get(cfg.model.family).use_weights(ckpt)
    missing = [name for name, w in weights.items() if not isinstance(w, dict)]
    if missing:
        raise SemGANError(f"{source} holds a {cfg.model.family} model without its {', '.join(missing)} weights; it "
                          "is not a complete semgan checkpoint")
    name = which if path.is_dir() else source.stem  # a checkpoint file given by its path: its own name
    meta = ckpt["meta"] if isinstance(ckpt.get("meta"), dict) else {}
    return TrainedModel(cfg=cfg, data=data, step=int(ckpt["step"]), weights=weights, source=source, which=name,
                        metrics={}, meta=meta)


def _described(config: Any, data: Any, source: Path) -> tuple[RunConfig, dict[str, Any]]:
    """The config and data description of a model file, or one clear error naming the file."""
    if not isinstance(config, dict):
        raise SemGANError(f"{source}: its config is a {type(config).__name__}, not a mapping of sections; it is not "
                          "a semgan model file")
    cfg = from_dict(config)
    if not isinstance(data, dict) or not all(k in data for k in ("class_names", "palette", "resolution")):
        raise SemGANError(f"{source}: incomplete data description (expected class_names, palette and resolution)")
    return cfg, data


def build_networks(model: TrainedModel, device: str | torch.device = "cpu") -> dict[str, nn.Module]:
    """The family's networks for use with ``model``'s weights, in eval mode on ``device``, checked first."""
    family = FAMILIES.get(model.family)
    with torch.device("meta"):
        nets = family.use_networks(model.cfg, model.data, model.meta)
    check_weights(model, nets)
    out = {}
    for name, net in nets.items():
        net = net.to_empty(device="cpu")
        net.load_state_dict(model.weights[name])
        out[name] = net.to(device).eval()
    return out


def check_weights(model: TrainedModel, nets: dict[str, nn.Module]) -> None:
    """Refuse weights that are not finite or do not fit the networks the config builds (names and shapes)."""
    if set(nets) != set(model.weights):
        raise SemGANError(f"{model.source} holds weights for {', '.join(sorted(model.weights)) or 'no network'}; a "
                          f"{model.family} model for use needs {', '.join(sorted(nets))}")
    hint = ""
    if model.run is not None:
        hint = f" Use an earlier checkpoint (--checkpoint; available: {', '.join(model.run.checkpoint_names())})"
    for name, net in nets.items():
        weights = model.weights[name]
        bad = [k for k, v in weights.items() if torch.is_tensor(v) and v.is_floating_point() and not v.isfinite().all()]
        what = NETWORK_WORDS.get(name, name)
        if bad:
            raise SemGANError(f"{model.source} holds non-finite {what} weights ({', '.join(bad[:4])}"
                              f"{', ...' if len(bad) > 4 else ''}); it cannot be used.{hint}")
        expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in weights.items() if torch.is_tensor(v)}
        if got != expected:
            wrong = sorted(set(got) ^ set(expected)) or [k for k in expected if got[k] != expected[k]]
            raise SemGANError(f"{model.source}: the {what} weights do not fit its own config ({', '.join(wrong[:4])}"
                              f"; {len(wrong)} tensors differ in name or shape)")


def load_model(path: str | Path, which: str = RunDir.LATEST, device: str | torch.device = "cpu", *,
               family: str | None = None, purpose: str = "") -> Any:
    """The family's object for use (a :class:`~semgan.generator.LabelMapGenerator` for ``semgan``, a
    :class:`~semgan.translate.Translator` for ``pix2pix``); with ``family``, refuse another family's model,
    saying what ``purpose`` needs."""
    model = read_model(path, which)
    if family is not None and model.family != family:
        from semgan.config import MODEL_FAMILIES

        raise SemGANError(f"{model.source} holds a {model.family} model; {purpose or 'this'} needs "
                          f"{MODEL_FAMILIES.get(family).KIND}")
    return FAMILIES.get(model.family).for_use(model, build_networks(model, device))


def load_generator(path: str | Path, which: str = RunDir.LATEST,
                   device: str | torch.device = "cpu") -> LabelMapGenerator:
    """A SemGAN or RGB-baseline generator (:func:`load_model` for the ``semgan`` family)."""
    gen: LabelMapGenerator = load_model(path, which, device, family="semgan", purpose="sampling label maps")
    return gen


def load_translator(path: str | Path, which: str = RunDir.LATEST, device: str | torch.device = "cpu") -> Translator:
    """A pix2pix translator (:func:`load_model` for the ``pix2pix`` family)."""
    tr: Translator = load_model(path, which, device, family="pix2pix", purpose="translating maps into photos")
    return tr


def read_export(path: str | Path) -> TrainedModel:
    """Read an exported model folder; every tensor's shape in the file's header is checked against the networks
    the config builds (on the meta device) before any tensor data is read.

    Raises:
        SemGANError: for a folder that is not an export, a newer format, or weights that do not fit the config.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not is_export(path):
        raise SemGANError(f"{path} is not an exported semgan model (expected {WEIGHTS} and {CONFIG})")
    try:
        doc = json.loads((path / CONFIG).read_text())
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"format is not {FORMAT!r}")
        version = int(doc.get("format_version", 0))
    except (OSError, ValueError, TypeError) as exc:
        raise SemGANError(f"{path / CONFIG} is not a semgan model config: {exc}") from exc
    if version > FORMAT_VERSION:
        raise SemGANError(f"{path} is format {version} (semgan {doc.get('semgan_version')}); this semgan "
                          f"({__version__}) reads format {FORMAT_VERSION} and older")
    cfg, data = _described(doc.get("config"), doc.get("data"), path / CONFIG)
    meta = doc["meta"] if isinstance(doc.get("meta"), dict) else {}
    with torch.device("meta"):
        nets = FAMILIES.get(cfg.model.family).use_networks(cfg, data, meta)
    # format 1: the generator alone, unprefixed keys
    prefix = {name: f"{name}." for name in nets} if version >= 2 else dict.fromkeys(nets, "")
    expected = {prefix[name] + k: tuple(v.shape) for name, net in nets.items() for k, v in net.state_dict().items()}
    try:
        with safe_open(str(path / WEIGHTS), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - not a dict
            if shapes != expected:
                wrong = sorted(set(shapes) ^ set(expected)) or [k for k in expected if shapes[k] != expected[k]]
                raise SemGANError(f"{path / WEIGHTS} does not fit its config: {', '.join(wrong[:4])} "
                                  f"({len(wrong)} tensors differ in name or shape)")
            flat = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise SemGANError(f"cannot read {path / WEIGHTS}: {exc}") from exc
    weights = {name: {k[len(prefix[name]):]: v for k, v in flat.items() if k.startswith(prefix[name])}
               for name in nets}
    metrics = doc["metrics"] if isinstance(doc.get("metrics"), dict) else {}
    return TrainedModel(cfg=cfg, data=data, step=int(doc.get("step", 0)), weights=weights, source=path / WEIGHTS,
                        which=EXPORT, metrics=metrics, meta=meta)
