"""The evaluation schedule of a training run: when to score, where the scores go, which checkpoint is best.

Every ``eval.every`` steps and at the last step, the family's task scores its model (all ranks take part);
rank 0 appends each metric to ``metric-<name>.jsonl``, logs TensorBoard scalars under ``eval/``, and the
checkpoint of a step whose headline number beats every earlier one becomes ``checkpoints/best-<name>.pt``
(the paper reports the best value during training; the headline and its better direction are the metric's
:class:`~semgan.metrics.MetricSpec`).

The family also reads each result for a collapse (:meth:`semgan.tasks.Task.health`: a class its samples no
longer draw). With the collapse guard on, a healthy state is kept as ``checkpoints/healthy.pt`` and an unhealthy
evaluation is neither logged nor a candidate for "best": the loop rolls back to ``healthy.pt`` instead. Without
it, the run only says so.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from semgan.config import EvalConfig
from semgan.distributed import DistEnv
from semgan.metrics import METRICS, check_metric_names
from semgan.run_dir import RunDir
from semgan.tasks import Task
from semgan.train.logger import Logger


class Evaluator:
    """Scores a task on the schedule of ``cfg``.

    Args:
        cfg: the evaluation section.
        total_steps: the run's last step (always evaluated).
        run: the run folder.
        env: this rank's place among the ranks.
        save_best: ``save_best(name, extra)`` writes the current state as checkpoint ``name`` with ``extra``
            entries (every rank calls it: the state is gathered from all ranks).
        collapse_guard: keep ``healthy.pt`` and leave unhealthy evaluations to the loop's rollback.
    """

    HEALTHY = "healthy"

    def __init__(self, cfg: EvalConfig, total_steps: int, run: RunDir, env: DistEnv,
                 save_best: Callable[[str, dict[str, Any]], None], *, collapse_guard: bool = False) -> None:
        self.cfg, self.total_steps, self.run, self.env, self.save_best = cfg, total_steps, run, env, save_best
        self.collapse_guard = collapse_guard
        # Fail before training, not at the first evaluation an hour later.
        check_metric_names(cfg.metrics)
        if "fid" in cfg.metrics:
            from semgan.metrics.fid import inception_weights_path

            inception_weights_path()  # raises with the install command when the weights are missing

    def due(self, step: int) -> bool:
        if not self.cfg.metrics:
            return False
        return (self.cfg.every > 0 and step % self.cfg.every == 0) or step == self.total_steps

    def missing(self, step: int) -> bool:
        """Whether some metric has no line for ``step`` (an evaluation abandoned by a stop signal)."""
        return any(all(r.get("step") != step for r in self.run.read_metric(name)) for name in self.cfg.metrics)

    def __call__(self, task: Task, step: int, logger: Logger,
                 guard: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext) -> str | None:
        """Score ``task`` at ``step``; the scoring itself (not the writes after it) runs inside ``guard()``.

        Returns what the family found broken (on every rank), or None when the model is healthy."""
        logger.status("evaluating")
        self.env.broadcast_buffers(task.networks.values())  # every rank samples the model rank 0 will save
        try:
            with guard():
                result = task.evaluate(self.cfg, progress=False)
        finally:
            logger.status(None)
        improved: list[tuple[str, float]] = []
        problem: str | None = None
        if self.env.is_main and result is not None:
            problem = task.health(result)
            if problem is None or not self.collapse_guard:  # a collapsed state is rolled back, not recorded
                improved = self._record(result, step, logger)
            if problem is not None and not self.collapse_guard:
                logger.warn(f"step {step}: {problem} (train.guard_rollbacks would roll back on this)", step)
        problem, improved = self.env.broadcast((problem, improved))
        for name, value in improved:
            self.save_best(f"best-{name}", {"metric": {"name": name, "value": value}})
        if self.collapse_guard and problem is None:
            self.save_best(self.HEALTHY, {})
        return problem

    def _record(self, result: dict[str, Any], step: int, logger: Logger) -> list[tuple[str, float]]:
        """Log ``result`` (rank 0); return the metrics whose headline improved on every earlier evaluation."""
        improved = []
        for name in self.cfg.metrics:
            spec = METRICS.get(name)
            earlier = [v for r in self.run.read_metric(name) if r.get("step") != step
                       if (v := spec.value(r)) is not None and math.isfinite(v)]
            # the metric's value and its companions (ms_ssim_real, ms_ssim_gap)
            entry = {"step": step, **{k: v for k, v in result.items() if k == name or k.startswith(f"{name}_")},
                     "n": result["n_fake"]}
            if "snapped" in result and name in result["snapped"]:
                entry["snapped"] = result["snapped"][name]
            self.run.append_metric(name, entry)
            for key, value in _scalars(name, result.get(name)).items():
                logger.scalar(f"eval/{key}", value, step)
            for key, value in _scalars(name, result.get("snapped", {}).get(name)).items():  # the baseline, snapped
                logger.scalar(f"eval_snapped/{key}", value, step)
            current = spec.value(result)
            if current is not None and math.isfinite(current) and spec.improves(current, earlier):
                improved.append((name, current))
        return improved


def _scalars(name: str, value: Any) -> dict[str, float]:
    """Flatten a metric's value to TensorBoard scalars (lists, such as class shares, are skipped)."""
    if isinstance(value, int | float):
        return {name: float(value)}
    if isinstance(value, dict):
        out: dict[str, float] = {}
        for k, v in value.items():
            out.update(_scalars(f"{name}/{k}", v))
        return out
    return {}
