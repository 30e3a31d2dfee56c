"""Exported models: safetensors + config + model card, loadable wherever a run is, refused when unfit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import PAIR_SIZE
from safetensors.torch import load_file, save_file

from semgan.checkpoint import load_checkpoint
from semgan.cli import main
from semgan.config import apply_overrides, get_preset
from semgan.errors import SemGANError
from semgan.export import export_model, read_export
from semgan.model_files import load_generator, load_translator
from semgan.sample import sample
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
    a, b = load_generator(run), load_generator(out)
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
        load_generator(out)


def test_non_finite_and_foreign_files_are_refused(run, tmp_path):
    out = export_model(run, tmp_path / "model")
    weights = load_file(out / "model.safetensors")
    weights = {k: v.fill_(float("nan")) if v.is_floating_point() else v for k, v in weights.items()}
    save_file(weights, out / "model.safetensors")
    with pytest.raises(SemGANError, match="non-finite"):
        load_generator(out)
    (out / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(SemGANError, match="cannot read|does not fit"):
        load_generator(out)
    (out / "config.json").write_text('{"format": "something else"}')
    with pytest.raises(SemGANError, match="not a semgan model config"):
        load_generator(out)


def test_export_takes_any_model_file_and_re_exports_the_same_weights(run, tmp_path):
    first = export_model(run / "checkpoints" / "latest.pt", tmp_path / "from-file")  # a checkpoint file
    again = export_model(first, tmp_path / "again")  # an export
    doc = json.loads((again / "config.json").read_text())
    assert (doc["checkpoint"], doc["weights"], doc["networks"]) == ("latest", "G_ema", ["G"])
    assert doc["metrics"] == json.loads((first / "config.json").read_text())["metrics"] != {}
    assert load_file(first / "model.safetensors").keys() == load_file(again / "model.safetensors").keys()
    for key, value in load_file(first / "model.safetensors").items():
        assert key.startswith("G.") and torch.equal(value, load_file(again / "model.safetensors")[key])


def test_a_checkpoint_whose_weights_do_not_fit_its_config_is_not_exported(run, tmp_path):
    ckpt = load_checkpoint(run / "checkpoints" / "latest.pt")
    ckpt["config"]["model"]["g_channels"] = 24  # another width than the weights have
    torch.save(ckpt, tmp_path / "mangled.pt")
    with pytest.raises(SemGANError, match="the generator weights do not fit its own config"):
        export_model(tmp_path / "mangled.pt", tmp_path / "out")
    assert not (tmp_path / "out").exists(), "nothing half-written"
    ckpt["config"] = "not a config"
    torch.save(ckpt, tmp_path / "string.pt")
    with pytest.raises(SemGANError, match="its config is a str, not a mapping of sections"):
        load_generator(tmp_path / "string.pt")


def test_a_pix2pix_translator_exports_and_translates_like_its_run(pix_cfg, tmp_path):
    run = train(apply_overrides(pix_cfg, {"train.steps": 3, "eval.metrics": ""}), tmp_path / "p2p", progress=False)
    out = export_model(run, tmp_path / "model")
    card = (out / "README.md").read_text()
    assert "pix2pix translator" in card and "semgan pix2pix translate" in card
    a, b = load_translator(run), load_translator(out)
    labels = torch.randint(0, 3, (2, PAIR_SIZE, PAIR_SIZE))
    assert torch.equal(a(labels), b(labels)) and b.class_names == a.class_names
    with pytest.raises(SemGANError, match="holds a pix2pix model; sampling label maps needs a SemGAN"):
        load_generator(out)
    with pytest.raises(SemGANError, match="holds a semgan model; translating maps into photos needs a pix2pix"):
        load_translator("pretrained:shapes")
