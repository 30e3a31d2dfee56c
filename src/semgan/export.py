"""Exported models: a generator's weights as safetensors, its config, and a model card, in one folder.

``semgan export RUN --out DIR`` writes::

    DIR/model.safetensors   the generator's weights (the moving average when the run kept one); tensors only
    DIR/config.json         format, semgan version, the run's resolved config, classes, palette, resolution,
                            the exported step and the run's metrics at the end of training
    DIR/README.md           the model card: what it draws, how it was trained, how well, how to use it

A safetensors file holds tensors and a JSON header, nothing that runs code when read, so an exported model is
the safe way to pass a trained generator on. :func:`read_export` checks every tensor's shape against what the
config builds before reading any tensor data (a hostile header cannot make it allocate more than the file holds).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from semgan import __version__
from semgan.checkpoint import load_checkpoint
from semgan.config import RunConfig, SemGANModelConfig, from_dict, to_dict
from semgan.errors import SemGANError
from semgan.io import atomic_write, write_json, write_text
from semgan.metrics import METRICS, headline
from semgan.run_dir import RunDir

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
FORMAT = "semgan-model"
FORMAT_VERSION = 1


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is an exported model folder."""
    return (Path(path) / WEIGHTS).is_file() and (Path(path) / CONFIG).is_file()


def _metrics_at(run: RunDir, step: int) -> dict[str, Any]:
    """Each logged metric's headline at the evaluation of ``step`` (the exported weights' own scores), or at the
    last evaluation before it when that step was not evaluated."""
    out: dict[str, Any] = {}
    for name in run.metric_names():
        lines = [x for x in run.read_metric(name) if int(x["step"]) <= step]
        if lines and (value := headline(lines[-1], name)) is not None:
            key = METRICS.get(name).headline if name in METRICS else (name,)
            out[name] = {"value": value, "key": ".".join(key), "step": lines[-1]["step"], "n": lines[-1].get("n")}
    return out


def export_model(run: str | Path, out: str | Path, *, which: str = RunDir.LATEST) -> Path:
    """Export the generator of a run folder's checkpoint ``which`` to the folder ``out`` (new or empty).

    Returns:
        ``out``.

    Raises:
        SemGANError: for a missing run or checkpoint, a non-SemGAN family, non-finite weights, or an ``out``
            that already holds something.
    """
    from safetensors.torch import save

    folder, out = RunDir(run), Path(out)
    if not folder.exists():
        raise SemGANError(f"{run} is not a semgan run folder (no {RunDir.CONFIG})")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SemGANError(f"--out {out} exists and is not an empty folder; choose a new one")
    if not folder.has_checkpoint(which):
        raise SemGANError(f"no checkpoint {folder.checkpoint_path(which)}; available: "
                          f"{', '.join(folder.checkpoint_names()) or 'none'}")
    ckpt = load_checkpoint(folder.checkpoint_path(which))
    if ckpt.get("family", "semgan") != "semgan" or "G" not in ckpt:
        raise SemGANError(f"{run} holds a {ckpt.get('family')!r} model; export takes SemGAN and RGB-baseline runs")
    weights = {k: v.contiguous() for k, v in (ckpt["G_ema"] if "G_ema" in ckpt else ckpt["G"]).items()}
    bad = [k for k, v in weights.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    if bad:
        raise SemGANError(f"{folder.checkpoint_path(which)} holds non-finite weights ({', '.join(bad[:4])}); "
                          "export an earlier checkpoint")
    cfg = from_dict(ckpt["config"])
    data = ckpt["data"]
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "semgan_version": __version__,
        "step": int(ckpt["step"]),
        "checkpoint": which,
        "weights": "G_ema" if "G_ema" in ckpt else "G",
        "config": to_dict(cfg),
        "data": {k: data[k] for k in ("name", "class_names", "palette", "resolution") if k in data},
        "metrics": _metrics_at(folder, int(ckpt["step"])),
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / WEIGHTS, lambda f: f.write(save(weights, metadata={"format": FORMAT})), durable=True)
    write_json(out / CONFIG, doc)
    write_text(out / CARD, model_card(doc))
    return out


def model_card(doc: dict[str, Any]) -> str:
    """The README.md of an exported model."""
    cfg, data = from_dict(doc["config"]), doc["data"]
    kind = "SemGAN (per-pixel softmax over the classes)" if cfg.model_as(SemGANModelConfig).mode == "semgan" else \
        "the RGB baseline (tanh head; maps are its output snapped to the palette)"
    rows = "\n".join(f"| {i} | {name} | `{tuple(rgb)}` |"
                     for i, (name, rgb) in enumerate(zip(data["class_names"], data["palette"], strict=True)))
    metrics = "\n".join(f"| {name} (`{m['key']}`) | {m['value']:.4g} | {_better(name)} | {m['step']} | "
                        f"{m.get('n') or '—'} |" for name, m in doc["metrics"].items()) or "| — | — | — | — | — |"
    res, name = data["resolution"], data.get("name", "?")
    train = {k: doc["config"]["train"][k] for k in ("steps", "batch", "lr", "seed")}
    return f"""# semgan model: {name}, {res}×{res}, {len(data['class_names'])} classes

An unconditional generator of semantic label maps: {kind}, trained with semgan {doc['semgan_version']}
for {doc['step']} steps (checkpoint `{doc['checkpoint']}`, weights `{doc['weights']}`). Its output is a map of
class indices; the palette below renders it in colour.

## Use

```bash
semgan sample THIS_FOLDER --n 16 --seed 0 --out samples
```

```python
import semgan
maps = semgan.load("THIS_FOLDER").sample(16, seed=0)   # maps.labels (16, H, W), maps.images, maps.probs
```

## Classes

| index | class | colour |
|---:|---|---|
{rows}

## Training

Dataset `{name}`; data config `{json.dumps(doc['config']['data'])}`;
model `{json.dumps(doc['config']['model'])}`; training `{json.dumps(train)}`.

## Metrics of these weights

| metric | value | better | step | images |
|---|---:|---|---:|---:|
{metrics}

MS-SSIM is judged by its gap to the reals' own value (`ms_ssim_gap`), not by the value itself.
"""


def _better(name: str) -> str:
    return "higher" if name in METRICS and METRICS.get(name).higher_is_better else "lower"


def read_export(path: str | Path) -> tuple[RunConfig, dict[str, Any], int, dict[str, torch.Tensor]]:
    """Read an exported model: (config, data description, step, generator weights).

    The generator is built on the ``meta`` device from the config and every tensor's shape in the file's header
    is checked against it before any tensor is read.

    Raises:
        SemGANError: for a folder that is not an export, a newer format, or weights that do not fit the config.
    """
    from safetensors import SafetensorError, safe_open

    from semgan.models import Generator

    path = Path(path)
    if not is_export(path):
        raise SemGANError(f"{path} is not an exported semgan model (expected {WEIGHTS} and {CONFIG})")
    try:
        doc = json.loads((path / CONFIG).read_text())
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"format is not {FORMAT!r}")
    except (OSError, ValueError) as exc:
        raise SemGANError(f"{path / CONFIG} is not a semgan model config: {exc}") from exc
    if int(doc.get("format_version", 0)) > FORMAT_VERSION:
        raise SemGANError(f"{path} is format {doc['format_version']} (semgan {doc.get('semgan_version')}); this "
                          f"semgan ({__version__}) reads format {FORMAT_VERSION} and older")
    try:
        cfg, data = from_dict(doc["config"]), doc["data"]
        num_classes, resolution = len(data["class_names"]), int(data["resolution"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SemGANError(f"{path / CONFIG}: incomplete model description ({exc})") from exc
    with torch.device("meta"):
        G = Generator(cfg.model_as(SemGANModelConfig, str(path)), num_classes, resolution)
        expected = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    try:
        with safe_open(str(path / WEIGHTS), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - not a dict
            if shapes != expected:
                wrong = sorted(set(shapes) ^ set(expected)) or [k for k in expected if shapes[k] != expected[k]]
                raise SemGANError(f"{path / WEIGHTS} does not fit its config: {', '.join(wrong[:4])} "
                                  f"({len(wrong)} tensors differ in name or shape)")
            weights = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise SemGANError(f"cannot read {path / WEIGHTS}: {exc}") from exc
    return cfg, data, int(doc.get("step", 0)), weights

