"""Several processes, one run: gloo on the CPU, launched by torchrun as a user would.

Each test starts real processes (``python -m torch.distributed.run``), so they cost a few seconds each.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from semgan.checkpoint import load_checkpoint
from semgan.cli import main
from semgan.config import apply_overrides, get_preset
from semgan.data import load_dataset
from semgan.evaluate import evaluate_generator
from semgan.model_files import load_generator
from semgan.run_dir import RunDir
from semgan.tasks.semgan import SemGANTask
from semgan.train.engine import Engine

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
TINY = ["--preset", "tiny", "--set", "train.device=cpu", "--no-progress"]
# One thread per process: two processes share the two cores of the CI machine.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun(args: list[str], *, nproc: int = 2, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    cmd = [*TORCHRUN, "--standalone", "--nproc-per-node", str(nproc), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)


# The exact-equivalence check: one step of 2 ranks x 16 maps equals one step of 1 process x 32 maps: the same
# indices and latents, the same hash-dropout masks (torch's dropout and instance noise draw a stream per rank
# by design), the global batch's feature-matching means, minibatch stddev and batch norm, averaged gradients.
EQUIVALENCE = {"train.batch": 32, "model.d_dropout_rng": "hash", "model.d_mbstd": 4, "model.d_norm": "spectral",
               "model.g_loss": "fm_all"}
STEP_SCRIPT = """
import sys, torch
from semgan import distributed
from semgan.config import apply_overrides, get_preset
from semgan.data import load_dataset
from semgan.tasks.semgan import SemGANTask
from semgan.train.engine import Engine

cfg = apply_overrides(get_preset("tiny"), {overrides!r})
env, device = distributed.setup("cpu")
task = SemGANTask(cfg, load_dataset("shapes"), Engine(cfg.train, device, env))
task.train_step(0)
if env.is_main:
    grads = {{n: task.opt_G.state[p]["exp_avg"] for n, p in task.G.named_parameters()}}
    torch.save({{"G": task.G.state_dict(), "D": task.D.state_dict(), "grads": grads}}, sys.argv[1])
distributed.teardown(env)
"""


def one_step_single_process() -> dict[str, dict[str, torch.Tensor]]:
    cfg = apply_overrides(get_preset("tiny"), {**EQUIVALENCE, "train.device": "cpu"})
    task = SemGANTask(cfg, load_dataset("shapes"), Engine(cfg.train, torch.device("cpu")))
    task.train_step(0)
    grads = {n: task.opt_G.state[p]["exp_avg"] for n, p in task.G.named_parameters()}
    return {"G": task.G.state_dict(), "D": task.D.state_dict(), "grads": grads}


def test_two_ranks_of_16_make_the_update_of_one_process_of_32(tmp_path: Path) -> None:
    script = tmp_path / "step.py"
    script.write_text(textwrap.dedent(STEP_SCRIPT.format(overrides={**EQUIVALENCE, "model.sync_bn": True})))
    res = torchrun([str(script), str(tmp_path / "two.pt")])
    assert res.returncode == 0, res.stderr[-3000:]
    two = torch.load(tmp_path / "two.pt", weights_only=True)
    one = one_step_single_process()
    for part in ("grads", "G", "D"):
        for name, ref in one[part].items():
            if not ref.is_floating_point():
                assert torch.equal(two[part][name], ref), f"{part}.{name}"
                continue
            scale = float(ref.abs().max()) or 1.0
            torch.testing.assert_close(two[part][name], ref, rtol=1e-4, atol=1e-5 * scale, msg=f"{part}.{name}")


def test_torchrun_trains_resumes_on_one_and_on_two_processes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["-m", "semgan", "train", *TINY, "--out", str(out), "--steps", "6",
            "--set", "eval.metrics=swd", "--set", "eval.n=32", "--set", "eval.every=3"]  # fmt: skip
    res = torchrun(args)
    assert res.returncode == 0, res.stderr[-3000:]
    run = RunDir(out)
    ckpt = run.load_checkpoint()
    assert ckpt["step"] == 6 and ckpt["world_size"] == 2 and len(ckpt["rng"]["ranks"]) == 2
    assert not torch.equal(ckpt["rng"]["ranks"][0]["torch"], ckpt["rng"]["ranks"][1]["torch"]), "a stream per rank"
    assert [r["step"] for r in run.read_stats()] == [5, 6]
    assert res.stdout.count("run folder:") == 1, "only rank 0 speaks"

    # The evaluation was split over the ranks and scored on rank 0: the same as one process scoring the model.
    logged = run.read_metric("swd")[-1]
    assert logged["step"] == 6 and logged["n"] == 32
    again = evaluate_generator(load_generator(out).G, load_dataset("shapes"), ["swd"], n=32, seed=0)
    assert again is not None and again["swd"]["avg"] == pytest.approx(logged["swd"]["avg"], rel=1e-4)

    assert main(["train", "--out", str(out), "--resume", "--steps", "10", "--no-progress"]) == 0  # 2 -> 1
    assert run.checkpoint_step() == 10 and run.load_checkpoint()["world_size"] == 1
    res = torchrun(["-m", "semgan", "train", "--out", str(out), "--resume", "--steps", "14", "--no-progress"])
    assert res.returncode == 0, res.stderr[-3000:]  # 1 -> 2
    assert run.checkpoint_step() == 14 and [r["step"] for r in run.read_stats()] == [5, 6, 10, 14]


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes through /proc")
def test_sigterm_to_one_rank_stops_both_with_one_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [*TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "semgan", "train", *TINY, "--out", str(out),
           "--steps", "100000", "--set", "train.ckpt_every=100000"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "stats.jsonl").is_file():
            time.sleep(0.2)
        workers = _children(proc.pid)
        assert len(workers) == 2, workers
        os.kill(max(workers), signal.SIGTERM)  # one rank only
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert err.count("stopped by a signal at step") == 1, err[-3000:]
    run = RunDir(out)
    step = run.checkpoint_step()
    assert step is not None
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["latest.pt", f"step-{step:06d}.pt"], \
        "one checkpoint, no temporary file"
    assert step is not None and 0 < step < 100000
    assert json.loads(run.config_path.read_text())["config"]["train"]["steps"] == 100000
    assert main(["train", "--out", str(out), "--resume", "--steps", str(step + 2), "--no-progress"]) == 0
    assert run.checkpoint_step() == step + 2


def test_two_node_rendezvous_on_localhost(tmp_path: Path) -> None:
    out, port = tmp_path / "run", free_port()
    node = [*TORCHRUN, "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
            "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "semgan-test", "-m", "semgan", "train", *TINY,
            "--out", str(out), "--steps", "4"]  # fmt: skip
    procs = [subprocess.Popen(node, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for _ in range(2)]
    results = [p.communicate(timeout=180) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]
    ckpt = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert ckpt["step"] == 4 and ckpt["world_size"] == 2
