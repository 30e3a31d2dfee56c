"""Evaluation of trained generators: the one image path, both modes, in-training hooks, best checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from semgan.cli import main
from semgan.config import apply_overrides
from semgan.data import load_dataset
from semgan.evaluate import evaluate_generator, headline
from semgan.metrics import METRICS, MetricSpec
from semgan.model_files import load_generator
from semgan.train import train


@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes")


@pytest.mark.parametrize("mode", ["semgan", "gan"])
def test_evaluate_generator_both_modes(tmp_path, tiny_cfg, shapes, mode):
    run = load_generator(train(apply_overrides(tiny_cfg, {"model.mode": mode, "train.steps": 2}), tmp_path / "r",
                         progress=False))
    result = evaluate_generator(run.G, shapes, ["swd", "semantic"], n=64, seed=0)
    assert result["n_real"] == result["n_fake"] == 64
    assert set(result["swd"]) == {"64", "32", "16", "avg"}
    sem = result["semantic"]
    if mode == "semgan":
        assert sem["validity_fake"] == 1.0, "SemGAN draws palette colours only"
        assert "snapped" not in result
    else:
        assert 0.0 <= sem["validity_fake"] <= 1.0
        assert set(result["snapped"]) >= {"swd"}, "the baseline is also scored after snapping"
    again = evaluate_generator(run.G, shapes, ["swd"], n=64, seed=0)
    assert again["swd"] == result["swd"], "evaluation is seeded"


def test_headline():
    assert headline({"swd": {"avg": 3.0}}, "swd") == 3.0
    assert headline({"semantic": {"fsd": 0.5}}, "semantic") == 0.5
    assert headline({"ms_ssim": 0.3, "ms_ssim_gap": 0.1}, "ms_ssim") == 0.1
    assert headline({}, "fid") is None


def test_each_metric_has_one_spec_with_its_headline_and_direction():
    for name in METRICS.names():
        spec = METRICS.get(name)
        assert spec.name == name and spec.headline and spec.description, name
    swd = METRICS.get("swd")
    assert swd.headline == ("swd", "avg") and not swd.higher_is_better
    assert swd.improves(1.0, [2.0, 3.0]) and not swd.improves(2.0, [1.0]) and swd.improves(5.0, [])
    up = MetricSpec("up", swd.fn, ("up",), higher_is_better=True)
    assert up.improves(3.0, [1.0, 2.0]) and not up.improves(1.0, [2.0]) and up.best([1.0, 3.0]) == 3.0
    assert up.value({"up": 2}) == 2.0 and up.value({"up": "x"}) is None


def test_in_training_evaluation_and_best_checkpoint(tmp_path, tiny_cfg):
    cfg = apply_overrides(tiny_cfg, {"eval.metrics": "swd,semantic,ms_ssim", "eval.every": 5, "eval.n": 32,
                                     "train.steps": 10})
    out = train(cfg, tmp_path / "r", progress=False)
    lines = [json.loads(x) for x in (out / "metric-swd.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [5, 10]
    best_step = min(lines, key=lambda x: x["swd"]["avg"])["step"]
    best = torch.load(out / "checkpoints" / "best-swd.pt", weights_only=True)
    assert best["step"] == best_step and best["metric"]["name"] == "swd"
    assert (out / "checkpoints" / "best-semantic.pt").is_file()
    assert load_generator(out, "best-swd").step == best_step
    # MS-SSIM is judged by its distance to the reals' own value: the line keeps both, the best is the closest
    ms = [json.loads(x) for x in (out / "metric-ms_ssim.jsonl").read_text().splitlines()]
    assert all(x["ms_ssim_gap"] == pytest.approx(abs(x["ms_ssim"] - x["ms_ssim_real"])) for x in ms)
    closest = min(ms, key=lambda x: x["ms_ssim_gap"])["step"]
    assert torch.load(out / "checkpoints" / "best-ms_ssim.pt", weights_only=True)["step"] == closest


def test_cli_evaluate_and_metrics(tmp_path, tiny_cfg, capsys):
    out = train(apply_overrides(tiny_cfg, {"train.steps": 2}), tmp_path / "r", progress=False)
    assert main(["evaluate", str(out), "--n", "32", "--metrics", "swd,semantic", "--json",
                 "--out", str(tmp_path / "m.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == 2 and result["n_fake"] == 32
    assert json.loads((tmp_path / "m.json").read_text())["swd"] == result["swd"]

    assert main(["sample", str(out), "--n", "20", "--out", str(tmp_path / "s"), "--no-progress"]) == 0
    assert main(["sample", str(out), "--n", "20", "--seed", "9", "--out", str(tmp_path / "s2"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["metrics", str(tmp_path / "s" / "color"), str(tmp_path / "s2" / "color"), "--json",
                 "--metrics", "swd,ms_ssim,semantic"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["swd"]) == {"64", "32", "16", "avg"} and 0 <= result["ms_ssim"] <= 1
    assert "ms_ssim_real" in result

    assert main(["metrics", str(tmp_path / "s" / "color"), str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["evaluate", str(out), "--metrics", "swd,bogus"]) == 2
    assert "unknown metric 'bogus'" in capsys.readouterr().err
