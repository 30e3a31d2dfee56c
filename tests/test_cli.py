"""The command line: the happy path and every user-error path (one line, no traceback, non-zero exit)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from semgan.cli import main

TINY = ["--preset", "tiny", "--set", "train.device=cpu", "--no-progress"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_sample_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run(capsys, "train", *TINY, "--mode", "gan", "--out", str(out), "--steps", "6")
    assert code == 0 and "grid.png" in stdout
    code, _, _ = run(capsys, "train", "--out", str(out), "--resume", "--steps", "10", "--no-progress")
    assert code == 0
    assert json.loads((out / "config.json").read_text())["config"]["train"]["steps"] == 10

    code, stdout, _ = run(capsys, "sample", str(out), "--n", "5", "--seed", "1", "--out", str(tmp_path / "s"),
                          "--no-progress")
    assert code == 0 and "step 10" in stdout
    labels = sorted((tmp_path / "s" / "labels").glob("*.png"))
    assert len(labels) == 5 and len(list((tmp_path / "s" / "color").glob("*.png"))) == 5
    img = Image.open(labels[0])
    assert img.mode == "P" and int(np.asarray(img).max()) < 4
    assert Image.open(tmp_path / "s" / "grid.png").mode == "RGB"


def test_presets_lists_values(capsys):
    code, stdout, _ = run(capsys, "presets")
    assert code == 0
    assert "shapes-cpu:" in stdout and "ks=11" in stdout and "lr=0.0001" in stdout
    code, stdout, _ = run(capsys, "presets", "--json")
    assert json.loads(stdout)["shapes"]["model.ld"] == 100


def test_dry_run_prints_resolved_config(tmp_path, capsys):
    code, stdout, _ = run(capsys, "train", *TINY, "--out", str(tmp_path / "x"), "--set", "model.ks=5", "--dry-run")
    assert code == 0 and json.loads(stdout)["model.ks"] == 5
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "nope"], "unknown preset 'nope'; expected one of: .*shapes"),
        (["--preset", "tiny", "--set", "model.kz=3"], "unknown config key 'model.kz'; valid keys: .*model.ks"),
        (["--preset", "tiny", "--set", "model.ks=big"], "model.ks='big' is not a valid int"),
        (["--preset", "tiny", "--set", "train.device=tpu9"], "train.device"),
        (["--resume"], "nothing to resume|not a semgan run"),
        ([], "--preset is required"),
    ],
)
def test_user_errors(tmp_path, capsys, args, message):
    code, _, err = run(capsys, "train", "--out", str(tmp_path / "new"), "--no-progress", *args)
    assert code == 2
    assert err.startswith("semgan: error: ") and "Traceback" not in err
    import re

    assert re.search(message, err), err


def test_out_dir_rules(tmp_path, capsys):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    code, _, err = run(capsys, "train", *TINY, "--out", str(junk))
    assert code == 2 and "not empty and is not a semgan run" in err
    assert (junk / "notes.txt").read_text() == "mine", "nothing of the user's is touched"

    out = tmp_path / "run"
    assert run(capsys, "train", *TINY, "--out", str(out), "--steps", "2")[0] == 0
    code, _, err = run(capsys, "train", *TINY, "--out", str(out), "--steps", "4")
    assert code == 2 and "already holds a run; pass --resume" in err
    code, _, err = run(capsys, "train", *TINY, "--out", str(out), "--steps", "4", "--resume", "--set", "model.ks=5",
                       "--set", "train.lr=0.1")
    assert code == 2 and "config differs" in err and "model.ks (saved 3, now 5)" in err and "train.lr" in err


def test_sample_errors(tmp_path, capsys):
    code, _, err = run(capsys, "sample", str(tmp_path / "nowhere"), "--out", str(tmp_path / "s"))
    assert code == 2 and "run folder not found" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "sample", str(tmp_path / "empty"), "--out", str(tmp_path / "s"))
    assert code == 2 and "no checkpoint" in err
