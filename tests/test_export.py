"""Exported models: safetensors + config + model card, loadable wherever a run is, refused when unfit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from semgan.cli import main
from semgan.config import apply_overrides, get_preset
from semgan.errors import SemGANError
from semgan.export import export_model, read_export
from semgan.sample import load_run, sample
from semgan.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = apply_overrides(get_preset("tiny"), {"train.device": "cpu", "train.steps": 6, "train.ema_half_life": 100,
                                               "eval.metrics": "swd,ms_ssim", "eval.every": 3, "eval.n": 16})
    return train(cfg, tmp_path_factory.mktemp("export") / "run", progress=False)


def test_export_then_sample_is_the_run_itself(run, tmp_path):
    out = export_model(run, tmp_path / "model")
    doc = json.loads((out / "config.json").read_text())
    assert doc["format"] == "semgan-model" and doc["step"] == 6 and doc["weights"] == "G_ema"
    assert set(doc["metrics"]) == {"swd", "ms_ssim"} and doc["metrics"]["ms_ssim"]["key"] == "ms_ssim_gap"
    card = (out / "README.md").read_text()
    assert "| 0 | background |" in card and "semgan sample" in card and "ms_ssim" in card
    a, b = load_run(run), load_run(out)
    z = torch.Generator().manual_seed(3)
    assert torch.equal(sample(a.G, 4, a.palette, generator=z.manual_seed(3), progress=False).labels,
                       sample(b.G, 4, b.palette, generator=z.manual_seed(3), progress=False).labels)
    assert b.class_names == a.class_names and torch.equal(b.palette, a.palette)


def test_cli_export_sample_evaluate(run, tmp_path, capsys):
    model = tmp_path / "model"
    assert main(["export", str(run), "--out", str(model)]) == 0
    assert main(["sample", str(model), "--n", "3", "--out", str(tmp_path / "s"), "--no-progress"]) == 0
    assert len(list((tmp_path / "s" / "labels").glob("*.png"))) == 3
    assert main(["evaluate", str(model), "--metrics", "semantic", "--n", "8", "--json"]) == 0
    assert main(["export", str(run), "--out", str(model)]) == 2, "never over an existing export"
    assert "not an empty folder" in capsys.readouterr().err


def test_weights_that_do_not_fit_the_config_are_refused_before_allocation(run, tmp_path):
    out = export_model(run, tmp_path / "model")
    weights = load_file(out / "model.safetensors")
    key = next(iter(weights))
    weights[key] = torch.zeros(3, 3)
    save_file(weights, out / "model.safetensors")
    with pytest.raises(SemGANError, match="does not fit its config"):
        read_export(out)
    # a config that asks for a huge network: refused by shape, nothing of that size is allocated
    doc = json.loads((out / "config.json").read_text())
    doc["config"]["model"]["g_channels"] = 2**20
    (out / "config.json").write_text(json.dumps(doc))
    with pytest.raises(SemGANError, match="does not fit its config"):
        load_run(out)


def test_non_finite_and_foreign_files_are_refused(run, tmp_path):
    out = export_model(run, tmp_path / "model")
    weights = load_file(out / "model.safetensors")
    weights = {k: v.fill_(float("nan")) if v.is_floating_point() else v for k, v in weights.items()}
    save_file(weights, out / "model.safetensors")
    with pytest.raises(SemGANError, match="non-finite"):
        load_run(out)
    (out / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(SemGANError, match="cannot read|does not fit"):
        load_run(out)
    (out / "config.json").write_text('{"format": "something else"}')
    with pytest.raises(SemGANError, match="not a semgan model config"):
        load_run(out)
