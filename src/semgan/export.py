"""Exported models: a trained model's networks for use as safetensors, its config, and a model card, in one folder.

``semgan export MODEL --out DIR`` writes::

    DIR/model.safetensors   the weights of the family's networks for use (a generator: its moving average when
                            the run kept one), keys <network>.<parameter>; tensors only
    DIR/config.json         format, semgan version, the run's resolved config, classes, palette, resolution,
                            the networks, the exported step and the run's metrics at that step
    DIR/README.md           the model card: what it is, how it was trained, how well, how to use it

A safetensors file holds tensors and a JSON header, nothing that runs code when read, so an exported model is
the safe way to pass a trained model on. MODEL is anything :mod:`semgan.model_files` reads (a run folder, a
checkpoint file, an export, ``pretrained:NAME``), of any family; the weights are checked against the networks
the config builds before anything is written, and read back the same way (:func:`semgan.model_files.read_export`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from semgan import __version__
from semgan.config import from_dict, to_dict
from semgan.errors import SemGANError
from semgan.io import atomic_write, write_json, write_text
from semgan.metrics import METRICS, headline
from semgan.model_files import (
    CARD,
    CONFIG,
    EXPORT,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS,
    TrainedModel,
    build_networks,
    check_weights,
    is_export,
    read_export,
    read_model,
)
from semgan.run_dir import RunDir
from semgan.tasks import FAMILIES

__all__ = ["export_model", "is_export", "model_card", "read_export"]


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


FORMATS = ("safetensors", "onnx")
ONNX_FAMILIES = ("semgan", "pix2pix")


def export_model(source: str | Path, out: str | Path, *, which: str = RunDir.LATEST,
                 format: str = "safetensors") -> Path:  # noqa: A002
    """Export the model of ``source`` (its checkpoint ``which`` for a run folder) to the folder ``out`` (new or
    empty): its weights as safetensors, or with ``format="onnx"`` its generator or translator as an ONNX graph
    (:mod:`semgan.export_onnx`), beside the config and the model card.

    Returns:
        ``out``.

    Raises:
        SemGANError: for a missing or foreign model file, weights that are not finite or do not fit the config,
            or an ``out`` that already holds something.
    """
    from safetensors.torch import save

    if format not in FORMATS:
        raise SemGANError(f"export format {format!r}; expected one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SemGANError(f"--out {out} exists and is not an empty folder; choose a new one")
    if format == "onnx":
        from semgan.export_onnx import require_onnx

        require_onnx()  # before reading anything: the one-line answer is the extra to install
    model = read_model(source, which)
    if format == "onnx" and model.family not in ONNX_FAMILIES:
        raise SemGANError(f"{model.source} holds a {model.family} model; ONNX export takes the generators "
                          f"(semgan) and translators (pix2pix); export it as safetensors instead")
    with torch.device("meta"):
        nets = FAMILIES.get(model.family).use_networks(model.cfg, model.data, model.meta)
    check_weights(model, nets)  # before anything is written: a model that would not load is never exported
    weights = {f"{name}.{k}": v.contiguous() for name, state in model.weights.items() for k, v in state.items()}
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "semgan_version": __version__,
        "family": model.family,
        "networks": sorted(model.weights),
        "step": model.step,
        "checkpoint": model.which,
        "config": to_dict(model.cfg),
        "data": {k: model.data[k] for k in ("name", "class_names", "palette", "resolution") if k in model.data},
        "metrics": _metrics_at(model.run, model.step) if model.run is not None else model.metrics,
        "meta": model.meta,
    }
    if model.which == EXPORT:  # re-exported: keep what the first export said of its weights
        first = json.loads((model.source.parent / CONFIG).read_text())
        doc["checkpoint"], doc["weights"] = first.get("checkpoint", EXPORT), first.get("weights")
    else:
        doc["weights"] = _kept(model)
    if format == "onnx":
        return _write_onnx(model, doc, out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / WEIGHTS, lambda f: f.write(save(weights, metadata={"format": FORMAT})), durable=True)
    write_json(out / CONFIG, doc)
    write_text(out / CARD, model_card(doc))
    return out


def _write_onnx(model: TrainedModel, doc: dict[str, Any], out: Path) -> Path:
    """``model.onnx`` (checked with onnx.checker once written), ``config.json`` with the graph's inputs and
    outputs, and the model card with an ONNX section."""
    from semgan.export_onnx import ONNX_FILE, card_section, check_onnx, onnx_bytes

    graph, io_doc = onnx_bytes(FAMILIES.get(model.family).for_use(model, build_networks(model, "cpu")))
    doc = {**doc, "format": f"{FORMAT}-onnx", "onnx": {"file": ONNX_FILE, **io_doc}}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / ONNX_FILE, lambda f: f.write(graph), durable=True)
    try:
        check_onnx(out / ONNX_FILE)
    except Exception as exc:  # the checker's errors have many types; a graph that fails it is never left behind
        (out / ONNX_FILE).unlink(missing_ok=True)
        raise SemGANError(f"the ONNX graph of {model.source} failed onnx.checker: {exc}") from None
    write_json(out / CONFIG, doc)
    write_text(out / CARD, model_card(doc, use=card_section(doc["onnx"])))
    return out


def _kept(model: TrainedModel) -> str:
    """Which of the checkpoint's weights were exported, in words (the moving average or the raw weights)."""
    names = set(torch.load(model.source, map_location="meta", weights_only=True, mmap=True))
    return ", ".join(f"{n}_ema" if f"{n}_ema" in names else n for n in sorted(model.weights))


def model_card(doc: dict[str, Any], use: str | None = None) -> str:
    """The README.md of an exported model; ``use`` replaces the family's "Use" section (an ONNX export's)."""
    cfg, data = from_dict(doc["config"]), doc["data"]
    kind, family_use = FAMILIES.get(cfg.model.family).describe(cfg)
    use = family_use if use is None else use
    rows = "\n".join(f"| {i} | {name} | `{tuple(rgb)}` |"
                     for i, (name, rgb) in enumerate(zip(data["class_names"], data["palette"], strict=True)))
    metrics = "\n".join(f"| {name} (`{m['key']}`) | {m['value']:.4g} | {_better(name)} | {m['step']} | "
                        f"{m.get('n') or '—'} |" for name, m in doc["metrics"].items()) or "| — | — | — | — | — |"
    res, name = data["resolution"], data.get("name", "?")
    train = {k: doc["config"]["train"][k] for k in ("steps", "batch", "lr", "seed")}
    return f"""# semgan model: {name}, {res}×{res}, {len(data['class_names'])} classes

{kind[0].upper() + kind[1:]}, trained with semgan {doc['semgan_version']} for {doc['step']} steps (checkpoint
`{doc['checkpoint']}`, weights `{doc.get('weights') or ', '.join(doc.get('networks', ['G']))}`). Its maps are class
indices; the palette below renders them in colour.

## Use

{use}

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
