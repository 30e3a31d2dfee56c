"""SIGKILL at random moments, resume each time: the end is the uninterrupted run, bit for bit, with no litter."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import assert_same_state

from semgan.run_dir import RunDir

STEPS, CKPT_EVERY, KILLS = 120, 10, 4
SETS = {"train.device": "cpu", "train.ckpt_every": CKPT_EVERY, "train.log_every": 5, "train.sample_every": 20,
        "train.keep_checkpoints": 2}  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _command(out: Path, resume: bool) -> list[str]:
    sets = [a for k, v in SETS.items() for a in ("--set", f"{k}={v}")]
    return [sys.executable, "-m", "semgan", "train", "--preset", "tiny", "--out", str(out), "--steps", str(STEPS),
            "--no-progress", *sets, *(["--resume"] if resume else [])]  # fmt: skip


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path: Path) -> None:
    # The reference runs as the killed one does (same command, same thread count: CPU float reductions depend
    # on the number of threads, so an in-process run with other threads would differ in the last bits).
    done = subprocess.run(_command(tmp_path / "reference", resume=False), env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    reference = RunDir(tmp_path / "reference")

    out, rng, kills = tmp_path / "killed", random.Random(0), []
    run = RunDir(out)
    deadline = time.time() + 240  # bounded: the test ends, killed or not
    while len(kills) < KILLS and time.time() < deadline:
        proc = subprocess.Popen(_command(out, resume=run.exists()), env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        while proc.poll() is None and not run.stats_path.is_file():  # until it trains (imports take seconds)
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))  # then anywhere: mid-step, mid-log, mid-checkpoint
        if proc.poll() is not None:  # finished before the kill
            assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills.append(run.checkpoint_step() if run.has_checkpoint() else None)
    assert len(kills) >= 2, f"kills landed at checkpoints {kills}"
    final = subprocess.run(_command(out, resume=True), env=ENV, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]

    assert run.checkpoint_step() == STEPS
    assert_same_state(run.load_checkpoint(), reference.load_checkpoint())
    stray = [p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.name.endswith(".tmp")]
    assert not stray, f"temporary files left: {stray}"
    assert run.checkpoint_steps() == [STEPS - CKPT_EVERY, STEPS], "the newest kept, no older ones"
    assert [r["step"] for r in run.read_stats()] == [r["step"] for r in reference.read_stats()], "no lost log line"
