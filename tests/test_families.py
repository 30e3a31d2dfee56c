"""The contract every model family keeps, tested over every registered family (timm's tests over ``list_models()``,
diffusers' ``PipelineTesterMixin``): a new family that registers and ships a ``<family>-tiny`` preset is tested
here with no test code of its own."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from helpers import assert_same_state, straight_and_resumed

from semgan.checkpoint import load_checkpoint
from semgan.config import MODEL_FAMILIES, RunConfig, apply_overrides, get_preset
from semgan.export import export_model
from semgan.model_files import load_model, read_model
from semgan.run_dir import RunDir
from semgan.tasks import FAMILIES, build_task, load_task_data
from semgan.train import train
from semgan.train.engine import Engine

FAMILY_NAMES = FAMILIES.names()


def tiny(family: str, **overrides: object) -> RunConfig:
    return apply_overrides(get_preset(f"{family}-tiny"), {"train.device": "cpu", **overrides})


@pytest.fixture(scope="module", params=FAMILY_NAMES)
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """Each family's tiny preset trained for 4 steps and scored at the end."""
    family = request.param
    return family, train(tiny(family, **{"train.steps": 4}), tmp_path_factory.mktemp(family) / "run",
                         progress=False)


def test_every_family_is_registered_once_on_both_ends_with_a_tiny_preset():
    assert MODEL_FAMILIES.names() == FAMILY_NAMES and len(FAMILY_NAMES) >= 2
    for family in FAMILY_NAMES:
        cfg = get_preset(f"{family}-tiny")
        assert cfg.model.family == family and cfg.eval.metrics, f"{family}-tiny scores something"


def test_a_smoke_run_logs_finite_scalars_a_grid_and_its_metrics(trained):
    family, root = trained
    run = RunDir(root)
    ckpt = load_checkpoint(run.checkpoint_path())
    assert (ckpt["family"], ckpt["step"]) == (family, 4)
    assert run.stats_path.is_file() and run.grid_path.is_file()
    assert all(math.isfinite(v) for line in run.read_stats() for k, v in line.items() if isinstance(v, float))
    for name in run.read_config().eval.metrics:
        assert [line["step"] for line in run.read_metric(name)] == [4], f"{family}: {name} scored at the end"


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_resume_equals_a_straight_run_bit_for_bit_over_every_network_and_optimizer(family, tmp_path):
    a, b, _ = straight_and_resumed(tiny(family, **{"train.steps": 6, "eval.metrics": ""}), tmp_path, split=3)
    cfg = tiny(family)
    task = build_task(cfg, load_task_data(cfg), Engine(cfg.train, torch.device("cpu")))
    assert set(task.networks) <= set(a), "every network is in the checkpoint"
    assert_same_state(a, b)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_the_task_draws_a_grid_scores_itself_and_reads_its_health(family):
    cfg = tiny(family)
    dataset = load_task_data(cfg)
    task = build_task(cfg, dataset, Engine(cfg.train, torch.device("cpu")))
    grid = task.sample_grid()
    assert grid.dtype == torch.uint8 and grid.dim() == 3 and grid.shape[0] == 3
    assert torch.equal(grid, task.sample_grid()), "from fixed inputs"
    result = task.evaluate(cfg.eval)  # one process: rank 0
    assert isinstance(result, dict) and all(name in result for name in cfg.eval.metrics)
    health = task.health(result)
    assert health is None or (isinstance(health, str) and health)
    state = task.state_dict()
    task.load_state_dict(state)
    assert_same_state(task.state_dict(), state)
    task.reseed(12345)  # after a rollback: fresh streams, still trains
    assert all(torch.isfinite(v) for v in task.train_step(0).values())


def test_a_trained_model_loads_for_use_and_exports_to_the_same_weights(trained, tmp_path):
    family, run = trained
    model, exported = read_model(run), read_model(export_model(run, tmp_path / "model"))
    assert exported.family == model.family == family and exported.step == model.step == 4
    assert exported.class_names == model.class_names and torch.equal(exported.palette, model.palette)
    assert_same_state(exported.weights, model.weights)
    assert type(load_model(tmp_path / "model")) is type(load_model(run))
    kind, use = FAMILIES.get(family).describe(model.cfg)
    assert kind and "THIS_FOLDER" in use
