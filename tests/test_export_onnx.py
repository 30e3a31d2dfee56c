"""ONNX export: the graph checks, and onnxruntime gives what PyTorch gives, for every kind of model file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import PAIR_SIZE

from semgan.cli import main
from semgan.config import apply_overrides, get_preset
from semgan.errors import SemGANError
from semgan.export import export_model
from semgan.model_files import load_generator, load_translator
from semgan.sample import latents
from semgan.train import train

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
onnx = pytest.importorskip("onnx")


def _session(folder: Path):  # noqa: ANN202
    return ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("onnx")
    base = {"train.device": "cpu", "train.steps": 2, "eval.metrics": ""}
    return {mode: train(apply_overrides(get_preset("tiny"), {**base, "model.mode": mode}), root / mode,
                        progress=False) for mode in ("semgan", "gan")}


@pytest.mark.parametrize("kind", ["run", "checkpoint", "export", "pretrained"])
def test_a_semgan_generator_runs_in_onnxruntime_as_in_pytorch(kind, runs, tmp_path):
    source = {"run": runs["semgan"], "checkpoint": runs["semgan"] / "checkpoints" / "latest.pt",
              "pretrained": "pretrained:shapes"}.get(kind) or export_model(runs["semgan"], tmp_path / "safetensors")
    out = export_model(source, tmp_path / "onnx", format="onnx")
    onnx.checker.check_model(str(out / "model.onnx"), full_check=True)
    doc = json.loads((out / "config.json").read_text())
    assert doc["onnx"]["opset"] == 18 and [o[0] for o in doc["onnx"]["outputs"]] == ["labels", "probs"]
    assert "onnxruntime" in (out / "README.md").read_text()
    gen = load_generator(source)
    session = _session(out)
    z = latents(64, gen.G.cfg.ld, generator=torch.Generator().manual_seed(0))
    labels, probs = session.run(None, {"z": z.numpy()})
    ref = gen.generate(z)
    assert probs.shape == tuple(ref.probs.shape) and np.abs(probs - ref.probs.numpy()).max() < 1e-4
    # argmax inside the graph: the same map wherever the two top classes are not a float-rounding tie
    assert labels.dtype == np.int64 and (labels == ref.labels.numpy()).mean() > 0.9999
    for batch in (1, 17):
        got, _ = session.run(None, {"z": z[:batch].numpy()})
        assert got.shape == (batch, gen.resolution, gen.resolution)


def test_the_baseline_gives_its_snapped_labels_and_rgb(runs, tmp_path):
    out = export_model(runs["gan"], tmp_path / "onnx", format="onnx")
    gen = load_generator(runs["gan"])
    z = latents(17, gen.G.cfg.ld, generator=torch.Generator().manual_seed(1))
    labels, rgb = _session(out).run(None, {"z": z.numpy()})
    with torch.no_grad():
        ref_rgb = gen.G(z)
    assert np.abs(rgb - ref_rgb.numpy()).max() < 1e-4
    assert (labels == gen.generate(z).labels.numpy()).mean() > 0.999


def test_a_translator_runs_in_onnxruntime_as_pytorch_without_dropout(pix_cfg, tmp_path):
    run = train(apply_overrides(pix_cfg, {"train.steps": 2, "eval.metrics": ""}), tmp_path / "p2p", progress=False)
    out = export_model(run, tmp_path / "onnx", format="onnx")
    onnx.checker.check_model(str(out / "model.onnx"), full_check=True)
    tr = load_translator(run)
    session = _session(out)
    rng = torch.Generator().manual_seed(0)
    labels = torch.randint(0, len(tr.class_names), (17, PAIR_SIZE, PAIR_SIZE), generator=rng)
    ref = tr.translate_rgb(labels, dropout=False)
    for batch in (1, 17):
        photos, rgb = session.run(None, {"labels": labels[:batch].numpy()})
        assert np.abs(rgb - ref[:batch].numpy()).max() < 1e-3
        assert photos.dtype == np.uint8 and photos.shape == (batch, 3, PAIR_SIZE, PAIR_SIZE)


def test_the_per_image_graph_is_pix2pix_at_test_time_without_dropout():
    from semgan.export_onnx import per_image
    from semgan.models.pix2pix import UnetGenerator
    from semgan.translate import translate

    torch.manual_seed(0)
    G = UnetGenerator(3, 3, num_downs=6, ngf=4, dropout=True)  # 64 px: one level with dropout
    x = torch.rand(5, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        graph = per_image(G)(x)  # the whole batch at once, each image normalised alone
    assert torch.allclose(graph, translate(G, x, dropout=False), atol=1e-5)
    assert not torch.allclose(graph, translate(G, x), atol=1e-3)  # dropout is pix2pix's noise, on by default


def test_onnx_export_is_refused_with_one_line_where_it_cannot_be(runs, tmp_path, capsys, monkeypatch):
    out = export_model(runs["semgan"], tmp_path / "onnx", format="onnx")
    assert main(["sample", str(out), "--n", "2", "--out", str(tmp_path / "s")]) == 2
    assert "is an ONNX export, for onnxruntime" in capsys.readouterr().err
    with pytest.raises(SemGANError, match="export format 'tflite'"):
        export_model(runs["semgan"], tmp_path / "x", format="tflite")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    assert main(["export", str(runs["semgan"]), "--format", "onnx", "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'semgan[onnx]'" in err and not (tmp_path / "y").exists()
