"""The run folder and its files: atomic writes, JSON lines that survive a torn last line, one place for paths."""

from __future__ import annotations

import pytest
import torch

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
    assert run.checkpoint_names() == ["latest"] and run.checkpoint_step() == 4
    assert run.sample_steps() == [0, 4] and run.grid_path.is_file()
    assert run.load_checkpoint()["family"] == "semgan"
    assert RunDir(tmp_path / "nothing").checkpoint_step() is None
    with pytest.raises(SemGANError, match="not a semgan run folder"):
        RunDir(tmp_path / "nothing").read_config()
    run.config_path.write_text("{")
    with pytest.raises(SemGANError, match="unreadable"):
        run.read_config()
    assert isinstance(torch.load(run.checkpoint_path(), weights_only=True), dict)
