"""Training: smoke runs in both modes, valid samples, exact resume, checkpoint safety."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch
from helpers import assert_same_state, straight_and_resumed

from semgan.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from semgan.config import apply_overrides
from semgan.errors import SemGANError
from semgan.model_files import load_generator
from semgan.sample import sample, write_samples
from semgan.train import train


@pytest.mark.parametrize("mode", ["semgan", "gan"])
def test_smoke_20_steps_and_valid_samples(tmp_path, tiny_cfg, mode):
    cfg = apply_overrides(tiny_cfg, {"model.mode": mode})
    out = train(cfg, tmp_path / "run", progress=False)
    for name in ("config.json", "grid.png", "stats.jsonl", "checkpoints/latest.pt", "samples/step-000020.png"):
        assert (out / name).is_file(), name
    assert list((out / "tb").iterdir()), "TensorBoard events"
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats] == [5, 10, 15, 20]
    assert all(torch.isfinite(torch.tensor(s["loss_D"])) for s in stats)
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"]["model"]["mode"] == mode and saved["dataset"]["class_names"][1] == "circle"

    run = load_generator(out)
    assert run.step == 20 and run.class_names[3] == "square"
    samples = sample(run.G, 10, run.palette, generator=torch.Generator().manual_seed(0))
    assert samples.labels.shape == (10, 64, 64) and samples.labels.dtype == torch.int64
    assert samples.labels.min() >= 0 and samples.labels.max() < 4
    assert samples.images.shape == (10, 3, 64, 64) and samples.images.dtype == torch.uint8
    if mode == "semgan":  # SemGAN's colours are palette colours by construction
        assert torch.equal(samples.images, samples.label_images)
    again = sample(run.G, 10, run.palette, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.labels, samples.labels), "sampling is seeded"
    write_samples(samples, tmp_path / "s")
    assert len(list((tmp_path / "s" / "labels").glob("*.png"))) == 10


@pytest.mark.parametrize("mode", ["semgan", "gan"])
def test_resume_10_plus_10_equals_20_bit_for_bit(tmp_path, tiny_cfg, mode):
    cfg = apply_overrides(tiny_cfg, {"model.mode": mode, "train.ckpt_every": 1000})
    a, b, resumed = straight_and_resumed(cfg, tmp_path)
    assert_same_state(a, b)
    steps = [json.loads(line)["step"] for line in (resumed / "stats.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20]


def test_stabilisers_resume_bit_for_bit(tmp_path, tiny_cfg):
    # the options the CPU facades preset relies on keep training exactly resumable (the noise RNG is saved)
    cfg = apply_overrides(tiny_cfg, {"model.d_noise": 1.0, "model.d_noise_steps": 20, "data.hflip": True,
                                     "model.g_loss": "ns", "model.d_mbstd": 4, "model.d_norm": "spectral",
                                     "train.ckpt_every": 1000})
    straight = train(cfg, tmp_path / "straight", progress=False)
    half = train(apply_overrides(cfg, {"train.steps": 10}), tmp_path / "split", progress=False)
    # annealed over train.steps, the schedule would change with it: such a resume is refused, with the fix
    over_steps = apply_overrides(cfg, {"model.d_noise_steps": 0})
    short = train(apply_overrides(over_steps, {"train.steps": 10}), tmp_path / "short", progress=False)
    with pytest.raises(SemGANError, match="train.steps .*set model.d_noise_steps"):
        train(over_steps, short, resume=True, progress=False)
    resumed = train(cfg, half, resume=True, progress=False)
    assert_same_state(load_checkpoint(straight / "checkpoints" / "latest.pt"),
                       load_checkpoint(resumed / "checkpoints" / "latest.pt"))
    plain = load_checkpoint(train(apply_overrides(cfg, {"model.d_noise": 0.0}), tmp_path / "plain",
                                  progress=False) / "checkpoints" / "latest.pt")
    noisy = load_checkpoint(straight / "checkpoints" / "latest.pt")
    assert not torch.equal(plain["D"]["fc.bias"], noisy["D"]["fc.bias"]), "the noise reaches D"


def test_hflip_trains_on_the_mirrored_maps_too(tiny_cfg):
    from semgan.data import dataset_from_config
    from semgan.tasks.semgan import SemGANTask
    from semgan.train.engine import Engine

    cfg = apply_overrides(tiny_cfg, {"data.hflip": True})
    ds = dataset_from_config(cfg.data)
    task = SemGANTask(cfg, ds, Engine(cfg.train, torch.device("cpu")))
    N = len(ds)
    assert task.labels.shape == (2 * N, *ds.resolution)
    assert torch.equal(task.labels[N + 3], ds.labels[3].flip(-1))
    assert task.sampler.n == 2 * N


def test_resume_finished_run_is_a_no_op(tmp_path, tiny_cfg):
    out = train(tiny_cfg, tmp_path / "r", progress=False)
    before = load_checkpoint(out / "checkpoints" / "latest.pt")
    train(tiny_cfg, out, resume=True, progress=False)
    assert_same_state(before, load_checkpoint(out / "checkpoints" / "latest.pt"))


def test_checkpoint_is_atomic_and_weights_only(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 3, "config": {}, "G": {"w": torch.ones(2)}, "D": {}})
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"], "no temporary file left behind"
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 3 and ckpt["version"] and ckpt["format"] == FORMAT


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": 1, "version": "0", "step": 0, "config": {}, "G": _Evil(), "D": {}}, f)
    with pytest.raises(SemGANError, match="refused checkpoint .*never unpickles") as exc:
        load_checkpoint(path)
    assert "weights_only" not in str(exc.value) and "trust" not in str(exc.value)  # no hint to load it unsafely
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SemGANError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(SemGANError, match="not a semgan checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_sigterm_saves_a_checkpoint_and_resume_finishes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "semgan", "train", "--preset", "tiny", "--set", "train.device=cpu",
           "--out", str(out), "--steps", "100000", "--no-progress"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "stats.jsonl").is_file():
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err and "--resume" in err
    ckpt = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert 0 < ckpt["step"] < 100000
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["train"]["steps"] == 100000
    from semgan.cli import main

    assert main(["train", "--out", str(out), "--resume", "--steps", str(ckpt["step"] + 3), "--no-progress"]) == 0
    assert load_checkpoint(out / "checkpoints" / "latest.pt")["step"] == ckpt["step"] + 3


def test_training_leaves_the_callers_float_state_as_it_was(tmp_path, tiny_cfg):
    # train() flushes subnormals to zero for speed on CPUs; the caller's arithmetic must not inherit that
    train(tiny_cfg, tmp_path / "r", progress=False)
    assert (torch.tensor([1e-39]) * 1.0).item() != 0.0
