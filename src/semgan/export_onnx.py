"""ONNX export: a trained generator or translator as one ``model.onnx`` that runs without Python or semgan.

``semgan export MODEL --format onnx --out DIR`` writes::

    DIR/model.onnx    the graph, with a dynamic batch axis; inputs and outputs below
    DIR/config.json   what the safetensors export writes (config, classes, palette, metrics) plus the ONNX inputs,
                      outputs and opset
    DIR/README.md     the model card, with how to run the graph

The graphs:

- SemGAN generator: ``z`` (B, ld) float32 latents -> ``labels`` (B, H, W) int64 class indices (the argmax, inside
  the graph, so a consumer gets a label map) and ``probs`` (B, K, H, W) float32.
- RGB baseline generator: ``z`` -> ``labels`` (B, H, W) int64 (nearest palette colour of the uint8 image, as the
  metrics decode it) and ``rgb`` (B, 3, H, W) float32 in [-1, 1].
- pix2pix translator: ``labels`` (B, H, W) int64 -> ``photos`` (B, 3, H, W) uint8 and ``rgb`` (B, 3, H, W) float32
  in [-1, 1]. Each map is normalised with its own statistics, as pix2pix does at test time; dropout, pix2pix's
  noise source, is off, because torch's seeded masks cannot be drawn alike in another runtime. The same photos
  come from PyTorch with ``Translator(labels, dropout=False)`` (``semgan pix2pix translate --no-dropout``).

``onnx``, ``onnxscript`` and ``onnxruntime`` are the optional extra ``semgan[onnx]``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from semgan.errors import SemGANError
from semgan.labels import rgb_to_uint8, snap_to_palette

OPSET = 18
ONNX_FILE = "model.onnx"
EXTRA = "pip install 'semgan[onnx]' (onnx, onnxscript, onnxruntime)"


def require_onnx() -> None:
    """Fail in one line, naming the extra, when the ONNX packages are missing."""
    missing = [name for name in ("onnx", "onnxscript") if not _importable(name)]
    if missing:
        raise SemGANError(f"ONNX export needs {', '.join(missing)}: {EXTRA}")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


class GeneratorGraph(nn.Module):
    """Latents (B, ld) -> labels (B, H, W) int64 and probs (B, K, H, W) (SemGAN) or rgb (B, 3, H, W) (baseline)."""

    def __init__(self, G: nn.Module, palette: torch.Tensor) -> None:
        super().__init__()
        self.G = G
        self.semgan = G.cfg.mode == "semgan"
        self.palette: torch.Tensor
        self.register_buffer("palette", palette.clone())  # (K, 3) uint8

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.G(z)  # probs (B, K, H, W) or rgb (B, 3, H, W)
        if self.semgan:
            return out.argmax(dim=1), out
        return snap_to_palette(rgb_to_uint8(out), self.palette), out  # as LabelMapGenerator.generate decodes it


class _PerImageNorm(nn.Module):
    """A batch norm that normalises each image with its own statistics: pix2pix's test-time batch of one."""

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = bn.weight, bn.bias, bn.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


def per_image(G: nn.Module) -> nn.Module:
    """A copy of a pix2pix generator in its test-time mode for any batch size: per-image norms, no dropout."""
    G = copy.deepcopy(G).eval()
    for module in list(G.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(module, name, _PerImageNorm(child))
            elif isinstance(child, nn.Dropout):
                setattr(module, name, nn.Identity())
    return G


class TranslatorGraph(nn.Module):
    """Labels (B, H, W) int64 -> photos (B, 3, H, W) uint8 and rgb (B, 3, H, W) in [-1, 1]."""

    def __init__(self, G: nn.Module, palette: torch.Tensor, encoding: str) -> None:
        super().__init__()
        self.G = per_image(G)
        self.encoding = encoding
        self.num_classes = int(palette.shape[0])
        self.colors: torch.Tensor
        self.register_buffer("colors", palette.float() / 127.5 - 1.0)  # (K, 3) in [-1, 1]

    def forward(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.encoding == "color":
            x = self.colors[labels].permute(0, 3, 1, 2)  # (B, 3, H, W)
        else:
            x = F.one_hot(labels, self.num_classes).permute(0, 3, 1, 2).float()  # (B, K, H, W)
        rgb = self.G(x)  # (B, 3, H, W) in [-1, 1]
        return rgb_to_uint8(rgb), rgb


def graph_of(model: Any) -> tuple[nn.Module, torch.Tensor, dict[str, Any]]:
    """The ONNX-ready module of a model for use, an example input, and the description of its inputs and outputs.

    Args:
        model: a :class:`~semgan.generator.LabelMapGenerator` or a :class:`~semgan.translate.Translator`.
    """
    from semgan.generator import LabelMapGenerator
    from semgan.translate import Translator

    if isinstance(model, LabelMapGenerator):
        G, size, K = model.G, model.resolution, len(model.class_names)
        ld = G.cfg.ld
        gen_graph = GeneratorGraph(G, model.palette)
        second = (["probs", "float32", ["B", K, size, size], "per-pixel class probabilities (softmax)"]
                  if gen_graph.semgan
                  else ["rgb", "float32", ["B", 3, size, size], "the RGB baseline's image in [-1, 1]"])
        io_doc = {
            "inputs": [["z", "float32", ["B", ld], "latents, standard normal"]],
            "outputs": [["labels", "int64", ["B", size, size], "class indices"
                         + ("" if gen_graph.semgan else " (nearest palette colour)")], second],
        }
        return gen_graph, torch.randn(2, ld), io_doc
    if isinstance(model, Translator):
        size, K = model.resolution, len(model.class_names)
        tr_graph = TranslatorGraph(model.G, model.palette, model.model_cfg.input)
        io_doc = {
            "inputs": [["labels", "int64", ["B", size, size], f"class indices 0..{K - 1}"]],
            "outputs": [["photos", "uint8", ["B", 3, size, size], "the photo"],
                        ["rgb", "float32", ["B", 3, size, size], "the photo in [-1, 1]"]],
        }
        return tr_graph, torch.randint(0, K, (2, size, size)), io_doc
    raise SemGANError(f"ONNX export takes a SemGAN or baseline generator or a pix2pix translator; got "
                      f"{type(model).__name__}")


def onnx_bytes(model: Any) -> tuple[bytes, dict[str, Any]]:
    """The ONNX graph of a model for use (serialized, weights inside) and the description of its inputs/outputs.

    Raises:
        SemGANError: the ONNX packages are missing (naming the extra), or the model is of a family without a graph.
    """
    require_onnx()
    graph, example, io_doc = graph_of(model)
    graph = graph.to("cpu").eval()
    names_in = [i[0] for i in io_doc["inputs"]]
    names_out = [o[0] for o in io_doc["outputs"]]
    batch = torch.export.Dim("batch", min=1, max=65536)
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(graph, (example.cpu(),), input_names=names_in, output_names=names_out,
                                    dynamic_shapes=({0: batch},), dynamo=True, opset_version=OPSET,
                                    verbose=False, optimize=True)
    assert program is not None
    buf = io.BytesIO()
    program.save(buf)  # type: ignore[arg-type]
    return buf.getvalue(), {**io_doc, "opset": OPSET, "dynamic_axes": {"batch": "B"}}


@contextlib.contextmanager
def _quiet() -> Any:
    """The exporter prints its progress and warns about optional packages (torchvision); a CLI export stays quiet."""
    import logging
    import warnings

    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logger.setLevel(level)


def check_onnx(path: str | Path) -> None:
    """``onnx.checker`` on a written graph."""
    import onnx

    onnx.checker.check_model(str(path), full_check=True)


def card_section(io_doc: dict[str, Any]) -> str:
    """The model card's "Use" section of an ONNX export: opset, inputs, outputs and a few lines of onnxruntime."""
    rows = "\n".join(f"| {kind} | `{n}` | {t} | ({', '.join(map(str, s))}) | {what} |"
                     for kind, key in (("input", "inputs"), ("output", "outputs")) for n, t, s, what in io_doc[key])
    first = io_doc["inputs"][0]
    feed = (f"np.random.default_rng(0).standard_normal((16, {first[2][1]})).astype(np.float32)"
            if first[0] == "z" else "labels  # (B, H, W) int64")
    return (f"`{ONNX_FILE}`: an ONNX graph, opset {io_doc['opset']}, dynamic batch axis B; it runs without semgan "
            "or PyTorch.\n\n"
            "| | name | type | shape | what |\n|---|---|---|---|---|\n" + rows + "\n\n```python\n"
            "import numpy as np, onnxruntime as ort\n"
            f"session = ort.InferenceSession('{ONNX_FILE}', providers=['CPUExecutionProvider'])\n"
            f"outputs = session.run(None, {{'{first[0]}': {feed}}})\n```")
