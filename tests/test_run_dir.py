"""The run folder and its files: atomic writes, JSON lines that survive a torn last line, one place for paths."""

from __future__ import annotations

import errno
import os

import pytest
import torch
from helpers import assert_same_state

from semgan.config import apply_overrides
from semgan.errors import SemGANError
from semgan.io import append_jsonl, atomic_write, read_jsonl
from semgan.run_dir import RunDir
from semgan.train import train


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write(path, lambda f: f.write(b"old"))

    def fail(f):
        f.write(b"half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_jsonl_tolerates_a_torn_last_line_only(tmp_path):
    path = tmp_path / "log.jsonl"
    append_jsonl(path, {"step": 1})
    append_jsonl(path, {"step": 2})
    with path.open("a") as f:
        f.write('{"step": 3, "loss')  # a write cut short
    assert read_jsonl(path) == [{"step": 1}, {"step": 2}]
    path.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(SemGANError, match="line 2"):
        read_jsonl(path)
    assert read_jsonl(tmp_path / "missing.jsonl") == []


def test_resume_after_a_torn_log_line(tmp_path, tiny_cfg):
    out = train(apply_overrides(tiny_cfg, {"train.steps": 10}), tmp_path / "r", progress=False)
    run = RunDir(out)
    with run.stats_path.open("a") as f:
        f.write('{"step": 15, "loss_D": 0.')
    train(tiny_cfg, out, resume=True, progress=False)
    assert [r["step"] for r in run.read_stats()] == [5, 10, 15, 20]
    assert run.stats_path.read_text().endswith("}\n")


def test_run_dir_paths_and_steps(tmp_path, tiny_cfg):
    run = RunDir(train(apply_overrides(tiny_cfg, {"train.steps": 4}), tmp_path / "r", progress=False))
    assert run.exists() and run.read_config().train.steps == 4
    assert run.checkpoint_names() == ["latest", "step-000004"] and run.checkpoint_step() == 4
    assert run.checkpoint_path().samefile(run.checkpoint_path("step-000004")), "a link, not a second copy"
    assert run.sample_steps() == [0, 4] and run.grid_path.is_file()
    assert run.load_checkpoint()["family"] == "semgan"
    assert RunDir(tmp_path / "nothing").checkpoint_step() is None
    with pytest.raises(SemGANError, match="not a semgan run folder"):
        RunDir(tmp_path / "nothing").read_config()
    run.config_path.write_text("{")
    with pytest.raises(SemGANError, match="unreadable"):
        run.read_config()
    assert isinstance(torch.load(run.checkpoint_path(), weights_only=True), dict)


# ----------------------------------------------------------------------------------------------- crash safety


def test_keeps_the_newest_checkpoints(tmp_path, tiny_cfg):
    cfg = apply_overrides(tiny_cfg, {"train.steps": 20, "train.ckpt_every": 5, "train.keep_checkpoints": 2})
    run = RunDir(train(cfg, tmp_path / "r", progress=False))
    assert run.checkpoint_steps() == [15, 20] and run.checkpoint_step() == 20


def test_resume_falls_back_to_the_newest_checkpoint_that_loads(tmp_path, tiny_cfg, capsys):
    cfg = apply_overrides(tiny_cfg, {"train.steps": 10, "train.ckpt_every": 5})
    run = RunDir(train(cfg, tmp_path / "r", progress=False))
    reference = train(apply_overrides(cfg, {"train.steps": 20}), tmp_path / "ref", progress=False)
    run.checkpoint_path().unlink()
    run.checkpoint_path().write_bytes(b"PK\x03\x04 damaged")  # latest.pt damaged, step-000010.pt intact
    train(apply_overrides(cfg, {"train.steps": 20}), run.root, resume=True, progress=False)
    err = capsys.readouterr().err
    assert "latest.pt" in err and "resuming from" in err and "step-000010.pt (step 10)" in err
    assert_same_state(run.load_checkpoint(), RunDir(reference).load_checkpoint())
    # none loads: one clear error naming the faults
    for name in run.checkpoint_names():
        run.checkpoint_path(name).write_bytes(b"junk")
    with pytest.raises(SemGANError, match="no loadable checkpoint"):
        train(apply_overrides(cfg, {"train.steps": 30}), run.root, resume=True, progress=False)


def test_a_checkpoint_that_does_not_read_back_is_never_latest(tmp_path, tiny_cfg, monkeypatch):
    cfg = apply_overrides(tiny_cfg, {"train.steps": 10, "train.ckpt_every": 5})
    run = RunDir(train(cfg, tmp_path / "r", progress=False))
    real_save = torch.save

    def torn_save(obj, f):  # a full disk that the write itself did not report
        real_save(obj, f)
        f.seek(0)
        f.truncate(100)

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(SemGANError, match="did not read back"):
        train(apply_overrides(cfg, {"train.steps": 15}), run.root, resume=True, progress=False)
    monkeypatch.undo()
    assert run.checkpoint_step() == 10 and run.checkpoint_steps() == [5, 10], "nothing partial left behind"
    assert not list(run.root.rglob("*.tmp"))


def test_full_disk_during_a_checkpoint_write(tmp_path, tiny_cfg, monkeypatch):
    cfg = apply_overrides(tiny_cfg, {"train.steps": 10, "train.ckpt_every": 5})
    run = RunDir(train(cfg, tmp_path / "r", progress=False))
    before = run.checkpoint_path().read_bytes()

    def no_space(obj, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", no_space)
    with pytest.raises(SemGANError, match="No space left on device.*previous checkpoints are kept"):
        train(apply_overrides(cfg, {"train.steps": 15}), run.root, resume=True, progress=False)
    monkeypatch.undo()
    assert run.checkpoint_path().read_bytes() == before and not list(run.root.rglob("*.tmp"))
    train(apply_overrides(cfg, {"train.steps": 15}), run.root, resume=True, progress=False)
    assert run.checkpoint_step() == 15


def test_one_writer_per_run_folder(tmp_path, tiny_cfg):
    out = train(tiny_cfg, tmp_path / "r", progress=False)
    run = RunDir(out)
    with run.lock(), pytest.raises(SemGANError, match=f"another semgan process \\(pid {os.getpid()}\\)"):
        train(apply_overrides(tiny_cfg, {"train.steps": 30}), out, resume=True, progress=False)
    train(apply_overrides(tiny_cfg, {"train.steps": 30}), out, resume=True, progress=False)  # released
    assert run.checkpoint_step() == 30


def test_stale_temporaries_are_cleaned_and_do_not_block(tmp_path, tiny_cfg, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / ".config.json.k2j3h4.tmp").write_text("{")  # a start killed mid-write
    (out / RunDir.LOCK).write_text("12345\n")  # a killed process's lock file (its lock died with it)
    train(tiny_cfg, out, progress=False)
    assert "removed" in capsys.readouterr().err
    run = RunDir(out)
    (run.checkpoints / ".step-000020.pt.x8a.tmp").write_bytes(b"half a checkpoint")  # SIGKILL mid-write
    (run.samples / ".step-000020.png.q7w.tmp").write_bytes(b"half a grid")  # ... or mid-sample
    train(apply_overrides(tiny_cfg, {"train.steps": 30}), out, resume=True, progress=False)
    assert not list(out.rglob("*.tmp")) and run.checkpoint_step() == 30


def test_preflight_refuses_a_folder_without_room(tmp_path, tiny_cfg, monkeypatch):
    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=1000))
    with pytest.raises(SemGANError, match=r"has 0.00 MiB free; the checkpoints of this run need about 0.[0-9]+ MiB"):
        train(tiny_cfg, tmp_path / "r", progress=False)
    assert not RunDir(tmp_path / "r").exists(), "refused before the first write"


def test_a_log_write_refused_mid_run_is_one_clear_error(tmp_path, tiny_cfg, monkeypatch):
    import semgan.run_dir

    cfg = apply_overrides(tiny_cfg, {"train.ckpt_every": 5, "train.log_every": 5})
    calls = {"n": 0}
    real_append = semgan.run_dir.append_jsonl

    def append(path, record):
        calls["n"] += 1
        if calls["n"] == 3:  # the third log line: after the checkpoint at step 10
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        real_append(path, record)

    monkeypatch.setattr(semgan.run_dir, "append_jsonl", append)
    with pytest.raises(SemGANError, match=r"cannot write to the run folder at step 15: .*stats.jsonl: Read-only "
                       r"file system; the last checkpoint is .*latest.pt \(step 10\)"):
        train(cfg, tmp_path / "r", progress=False)
    monkeypatch.undo()
    run = RunDir(tmp_path / "r")
    assert run.checkpoint_step() == 10
    train(cfg, run.root, resume=True, progress=False)
    assert run.checkpoint_step() == 20


def test_a_stop_signal_during_evaluation_stops_at_once_and_the_resume_evaluates_again(tmp_path, tiny_cfg,
                                                                                         monkeypatch):
    import signal
    import time

    from semgan.tasks.semgan import SemGANTask
    from semgan.train import TrainingInterrupted

    cfg = apply_overrides(tiny_cfg, {"eval.metrics": "semantic", "eval.every": 10, "eval.n": 16})
    real_evaluate = SemGANTask.evaluate

    def slow_evaluate(self, *args, **kwargs):  # an evaluation that would take a minute
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
        return real_evaluate(self, *args, **kwargs)

    monkeypatch.setattr(SemGANTask, "evaluate", slow_evaluate)
    t0 = time.perf_counter()
    with pytest.raises(TrainingInterrupted, match="at step 10"):
        train(cfg, tmp_path / "r", progress=False)
    assert time.perf_counter() - t0 < 30, "did not wait for the evaluation"
    monkeypatch.undo()
    run = RunDir(tmp_path / "r")
    assert run.checkpoint_step() == 10 and run.read_metric("semantic") == []
    train(cfg, run.root, resume=True, progress=False)
    assert [r["step"] for r in run.read_metric("semantic")] == [10, 20], "step 10 evaluated on resume"


def test_resume_checks_the_checkpoint_as_sample_does(tmp_path, tiny_cfg, capsys):
    from semgan.checkpoint import load_checkpoint
    from semgan.cli import main

    cfg = apply_overrides(tiny_cfg, {"train.steps": 20, "train.ckpt_every": 10})
    run = RunDir(train(cfg, tmp_path / "r", progress=False))
    ckpt = load_checkpoint(run.checkpoint_path())
    nan = {**ckpt, "G": {k: v.fill_(float("nan")) if v.is_floating_point() else v for k, v in ckpt["G"].items()}}
    torch.save(nan, run.checkpoint_path())  # latest.pt (and the step-20 file it links) all NaN
    torch.save(nan, run.checkpoint_path("step-000020"))
    train(apply_overrides(cfg, {"train.steps": 30}), run.root, resume=True, progress=False)
    err = capsys.readouterr().err
    assert "holds non-finite values (G." in err and "resuming from" in err and "step-000010.pt (step 10)" in err
    # weights of another model: refused with one line naming the file, no size-mismatch traceback
    other = train(apply_overrides(tiny_cfg, {"train.steps": 1, "model.ld": 8}), tmp_path / "other", progress=False)
    for path in run.checkpoints.glob("*.pt"):
        path.unlink()
    torch.save(load_checkpoint(RunDir(other).checkpoint_path()), run.checkpoint_path())
    assert main(["train", "--out", str(run.root), "--resume", "--steps", "40", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "latest.pt holds G weights that do not fit this run's config (stem.weight" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
