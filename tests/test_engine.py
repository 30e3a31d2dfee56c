"""The training engine: precision, compile and channels_last switches, their errors, and the finite-checkpoint rule."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest
import torch
from helpers import assert_same_state

from semgan.checkpoint import load_checkpoint
from semgan.config import apply_overrides, diff
from semgan.data import load_dataset
from semgan.distributed import DistEnv
from semgan.errors import SemGANError
from semgan.run_dir import RunDir
from semgan.tasks.semgan import SemGANTask
from semgan.train import TrainingDiverged, train
from semgan.train.engine import Engine, finite_tensors

CPU = torch.device("cpu")


def test_new_keys_are_typed_and_compared_on_resume(tmp_path, tiny_cfg):
    cfg = apply_overrides(tiny_cfg, ["train.precision=bf16", "train.compile=false", "train.channels_last=on"])
    assert (cfg.train.precision, cfg.train.compile, cfg.train.channels_last) == ("bf16", False, True)
    with pytest.raises(SemGANError, match="train.precision='fp8'; expected one of fp32, bf16, fp16"):
        apply_overrides(tiny_cfg, ["train.precision=fp8"])
    with pytest.raises(SemGANError, match="model.family='pix'"):
        apply_overrides(tiny_cfg, ["model.family=pix"])
    assert set(diff(cfg, tiny_cfg)) == {"train.precision", "train.channels_last"}
    out = train(apply_overrides(tiny_cfg, {"train.steps": 2}), tmp_path / "r", progress=False)
    for change in ("train.precision=bf16", "train.channels_last=true", "train.compile=true"):
        with pytest.raises(SemGANError, match=f"config differs from the saved one in {change.split('=')[0]}"):
            train(apply_overrides(tiny_cfg, [change]), out, resume=True, progress=False)


def test_bad_engine_settings_are_one_line_errors(tiny_cfg, monkeypatch):
    with pytest.raises(SemGANError, match="train.precision=fp16 needs a CUDA device"):
        Engine(apply_overrides(tiny_cfg, ["train.precision=fp16"]).train, CPU)
    with pytest.raises(SemGANError, match=r"train.batch=8 does not split over 3 processes; .*train.batch=6"):
        Engine(tiny_cfg.train, CPU, DistEnv(rank=0, world=3))
    cfg = apply_overrides(tiny_cfg, ["model.sync_bn=true"])
    with pytest.raises(SemGANError, match="model.sync_bn=true needs several processes"):
        SemGANTask(cfg, load_dataset("shapes"), Engine(cfg.train, CPU))

    def broken_compile(*args, **kwargs):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.raises(SemGANError, match=r"train.compile=true but torch.compile does not work .*InvalidCxxCompiler"
                       r".*set train.compile=false"):
        Engine(apply_overrides(tiny_cfg, ["train.compile=true"]).train, CPU)


def test_non_finite_config_values_are_refused(tiny_cfg):
    for bad in ("train.lr=nan", "model.d_noise=inf", "model.d_dropout=-inf"):
        with pytest.raises(SemGANError, match=bad.split("=")[0]):
            apply_overrides(tiny_cfg, [bad])


@pytest.mark.parametrize("mode", ["semgan", "gan"])
def test_bf16_resume_10_plus_10_equals_20_bit_for_bit(tmp_path, tiny_cfg, mode):
    cfg = apply_overrides(tiny_cfg, {"model.mode": mode, "train.precision": "bf16", "train.channels_last": True,
                                     "model.d_dropout_rng": "hash", "train.ckpt_every": 1000})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no native bf16 on some CPUs: a speed warning, not a failure
        straight = train(cfg, tmp_path / "straight", progress=False)
        half = train(apply_overrides(cfg, {"train.steps": 10}), tmp_path / "split", progress=False)
        resumed = train(cfg, half, resume=True, progress=False)
    a = load_checkpoint(straight / "checkpoints" / "latest.pt")
    assert_same_state(a, load_checkpoint(resumed / "checkpoints" / "latest.pt"))
    fp32 = load_checkpoint(train(apply_overrides(cfg, {"train.precision": "fp32"}), tmp_path / "fp32",
                                 progress=False) / "checkpoints" / "latest.pt")
    assert not torch.equal(fp32["G"]["to_out.weight"], a["G"]["to_out.weight"]), "bf16 autocast is in effect"
    assert (a["G"]["to_out.weight"] - fp32["G"]["to_out.weight"]).abs().max() < 1e-2, "and close to fp32"


def test_autocast_keeps_losses_and_statistics_in_fp32(tiny_cfg):
    cfg = apply_overrides(tiny_cfg, {"train.precision": "bf16", "model.g_loss": "fm_all", "model.d_mbstd": 4})
    engine = Engine(cfg.train, CPU)
    task = SemGANTask(cfg, load_dataset("shapes"), engine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = task.train_step(0)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in stats.values())
    assert all(p.dtype == torch.float32 for p in task.G.parameters()), "weights and Adam stay fp32"


def _poison(monkeypatch, at_step: int, where: str) -> None:
    """From step ``at_step`` on, make a G weight (``where="weight"``) or the losses (``"loss"``) non-finite."""
    real_step = SemGANTask.train_step

    def step(self, step):
        stats = real_step(self, step)
        if step + 1 >= at_step:
            if where == "weight":
                with torch.no_grad():
                    self.G.to_out.weight[0, 0, 0, 0] = float("nan")
            else:
                stats = {**stats, "loss_G": torch.tensor(float("inf"))}
        return stats

    monkeypatch.setattr(SemGANTask, "train_step", step)


@pytest.mark.parametrize("where", ["weight", "loss"])
def test_a_diverged_run_never_writes_a_non_finite_checkpoint(tmp_path, tiny_cfg, monkeypatch, where):
    # checkpoints every 4 steps, logs every 5: a NaN at step 7 is seen first by the checkpoint at step 8
    cfg = apply_overrides(tiny_cfg, {"train.ckpt_every": 4, "train.log_every": 5, "train.steps": 20})
    _poison(monkeypatch, 7, where)
    with pytest.raises(TrainingDiverged, match=r"diverged at step 8: non-finite values in "
                       + (r"G\.[a-z_.]*weight" if where == "weight" else r"loss_G at step 7")
                       + r".*last finite checkpoint is .*latest.pt \(step 4\)"):
        train(cfg, tmp_path / "r", progress=False)
    run = RunDir(tmp_path / "r")
    ckpt = run.load_checkpoint()
    assert ckpt["step"] == 4 and all(ok for _, ok in finite_tensors(ckpt))
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["latest.pt", "step-000004.pt"], "nothing partial"


def test_diverged_losses_stop_at_the_log_step(tmp_path, tiny_cfg, monkeypatch):
    cfg = apply_overrides(tiny_cfg, {"train.ckpt_every": 10, "train.log_every": 5, "train.steps": 20})
    _poison(monkeypatch, 12, "loss")
    with pytest.raises(TrainingDiverged, match=r"diverged at step 15: losses .*loss_G=inf.*\(step 10\)"):
        train(cfg, tmp_path / "r", progress=False)
    assert RunDir(tmp_path / "r").checkpoint_step() == 10
    steps = [json.loads(x)["step"] for x in (tmp_path / "r" / "stats.jsonl").read_text().splitlines()]
    assert steps == [5, 10], "the non-finite log line is not written"


def test_resume_below_the_saved_step_changes_nothing(tmp_path, tiny_cfg):
    out = train(apply_overrides(tiny_cfg, {"train.steps": 6}), tmp_path / "r", progress=False)
    before = (out / "config.json").read_text()
    train(apply_overrides(tiny_cfg, {"train.steps": 3}), out, resume=True, progress=False)
    assert (out / "config.json").read_text() == before and RunDir(out).checkpoint_step() == 6


def test_python_dash_m_semgan():
    res = subprocess.run([sys.executable, "-m", "semgan", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "train" in res.stdout and "sample" in res.stdout


@pytest.mark.slow
def test_compiled_training_runs_and_resumes(tmp_path, tiny_cfg):
    # torch.compile needs a C++ compiler; CI has gcc. About half a minute of compilation on 2 cores.
    cfg = apply_overrides(tiny_cfg, {"train.compile": True, "train.channels_last": True, "train.steps": 3,
                                     "train.log_every": 3, "model.d_dropout_rng": "hash"})
    out = train(cfg, tmp_path / "r", progress=False)
    (stats,) = RunDir(out).read_stats()
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    train(apply_overrides(cfg, {"train.steps": 4}), out, resume=True, progress=False)
    assert RunDir(out).checkpoint_step() == 4


def test_ema_of_g_samples_and_resumes(tmp_path, tiny_cfg):
    from semgan.model_files import load_generator

    cfg = apply_overrides(tiny_cfg, {"train.ema_half_life": 64, "train.ema_rampup": 0, "train.ckpt_every": 1000})
    task = SemGANTask(cfg, load_dataset("shapes"), Engine(cfg.train, CPU))
    before = {k: v.clone() for k, v in task.G_ema.state_dict().items()}
    task.train_step(0)
    beta = 0.5 ** (8 / 64)  # batch 8, half-life 64 images
    for name, p in task.G.named_parameters():
        torch.testing.assert_close(task.G_ema.state_dict()[name], beta * before[name] + (1 - beta) * p.detach())
    torch.testing.assert_close(task.G_ema.stem_norm.running_mean, task.G.stem_norm.running_mean)
    assert task.G_eval is task.G_ema

    straight = train(cfg, tmp_path / "straight", progress=False)
    half = train(apply_overrides(cfg, {"train.steps": 10}), tmp_path / "split", progress=False)
    resumed = load_checkpoint(train(cfg, half, resume=True, progress=False) / "checkpoints" / "latest.pt")
    a = load_checkpoint(straight / "checkpoints" / "latest.pt")
    assert_same_state(a, resumed)
    assert all(torch.equal(a["G_ema"][k], resumed["G_ema"][k]) for k in a["G_ema"])
    run = load_generator(straight)
    assert torch.equal(run.G.to_out.weight, a["G_ema"]["to_out.weight"]), "sampling uses the moving average"
    assert not torch.equal(a["G_ema"]["to_out.weight"], a["G"]["to_out.weight"])


def test_lr_decay_follows_its_schedule_and_resumes_bit_for_bit(tmp_path, tiny_cfg, monkeypatch):
    import os
    import signal

    from semgan.train import TrainingInterrupted

    cfg = apply_overrides(tiny_cfg, {"train.lr_decay": 0.5})  # 20 steps: constant for 10, then down over 10
    assert [cfg.train.lr_factor(s) for s in (0, 9, 10, 15, 19)] == [1.0, 1.0, 1.0, 0.5, 0.1]
    straight = train(cfg, tmp_path / "straight", progress=False)
    real_step = SemGANTask.train_step

    def stopped_at_13(self, step):  # the run is interrupted inside the decay, then resumed
        if step == 12:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(self, step)

    monkeypatch.setattr(SemGANTask, "train_step", stopped_at_13)
    with pytest.raises(TrainingInterrupted, match="at step 13"):
        train(cfg, tmp_path / "split", progress=False)
    monkeypatch.undo()
    resumed = train(cfg, tmp_path / "split", resume=True, progress=False)
    a, b = (load_checkpoint(r / "checkpoints" / "latest.pt") for r in (straight, resumed))
    assert_same_state(a, b)
    assert a["opt_G"]["param_groups"][0]["lr"] == pytest.approx(cfg.train.lr * 0.1)
    plain = load_checkpoint(train(tiny_cfg, tmp_path / "plain", progress=False) / "checkpoints" / "latest.pt")
    assert plain["opt_G"]["param_groups"][0]["lr"] == cfg.train.lr
    assert not torch.equal(plain["G"]["stem.weight"], a["G"]["stem.weight"])
    with pytest.raises(SemGANError, match="train.steps .*the learning rate decays over the last train.lr_decay"):
        train(apply_overrides(cfg, {"train.steps": 30}), tmp_path / "straight", resume=True, progress=False)
    with pytest.raises(SemGANError, match=r"train.lr_decay=1.5; expected a share of the steps in \[0, 1\]"):
        apply_overrides(tiny_cfg, {"train.lr_decay": 1.5})
