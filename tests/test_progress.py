"""What a training run shows: plain lines when stderr is not a terminal, evaluation time kept out of the speed."""

from __future__ import annotations

import json
import time

from semgan.config import apply_overrides
from semgan.train import train
from semgan.train.evaluation import Evaluator


def test_plain_lines_when_not_a_terminal_and_evaluation_kept_out_of_the_speed(tmp_path, tiny_cfg, capsys,
                                                                              monkeypatch):
    def slow_evaluation(self, task, step, logger, guard=None):  # stands in for a long evaluation
        logger.status("evaluating")
        time.sleep(1.0)
        logger.status(None)

    monkeypatch.setattr(Evaluator, "__call__", slow_evaluation)
    cfg = apply_overrides(tiny_cfg, {"eval.metrics": "swd", "eval.every": 10, "train.log_every": 5})
    run = train(cfg, tmp_path / "run", progress=True)  # pytest's stderr is not a terminal
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if ": step " in x]
    assert [x.split(": step ")[1].split()[0] for x in lines] == ["5/20", "10/20", "15/20", "20/20"]
    assert "ETA" in lines[0] and "loss_D=" in lines[0] and "\r" not in err
    assert "shapes: evaluating..." in err
    stats = {r["step"]: r for r in map(json.loads, (run / "stats.jsonl").read_text().splitlines())}
    # Steps 10-15 took their training time plus the 1 s evaluation at step 10; their speed counts only the former.
    wall = stats[15]["time"] - stats[10]["time"]
    assert wall - 5 / stats[15]["steps_per_s"] > 0.9
    rate = float(lines[-1].split(" steps/s")[0].rsplit(" ", 1)[1])
    trained = 20 / rate  # the plain line's training time for all 20 steps
    assert trained < stats[20]["time"] - stats[5]["time"] + 5 / stats[5]["steps_per_s"] - 0.8


def test_tensorboard_holds_the_config_and_the_snapped_baseline_but_no_timestamps(tmp_path, tiny_cfg):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = apply_overrides(tiny_cfg, {"model.mode": "gan", "train.steps": 4, "train.log_every": 2,
                                     "eval.metrics": "swd", "eval.n": 64})
    run = train(cfg, tmp_path / "run", progress=False)
    acc = EventAccumulator(str(run / "tb"), size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert "eval/swd/avg" in tags["scalars"] and "eval_snapped/swd/avg" in tags["scalars"]
    assert not any("time" in t for t in tags["scalars"]), "a timestamp is not a curve"
    (text,) = [t for t in tags["tensors"] if t.startswith("config")]
    assert b'"mode": "gan"' in acc.Tensors(text)[0].tensor_proto.string_val[0]
