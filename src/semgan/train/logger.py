"""What a run shows while it trains: a progress bar, ``stats.jsonl`` and TensorBoard (rank 0 only).

On a terminal the progress bar; when stderr is not one (a log file, CI, ``nohup``), one plain line per logging
interval instead of a bar's carriage returns. Time spent evaluating is kept out of the speed and the ETA.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import torch
from tqdm import tqdm

from semgan.run_dir import RunDir


class Logger:
    """Progress bar, JSON lines and TensorBoard of one run; every method is a no-op when not ``enabled``.

    Args:
        run: the run folder.
        step: the step training starts from (TensorBoard drops events logged after it by an earlier session).
        total: the run's last step.
        desc: the progress bar's label.
        enabled: False on every rank but 0.
        progress: show the progress bar.
    """

    def __init__(self, run: RunDir, step: int, total: int, desc: str, *, enabled: bool, progress: bool,
                 config: dict[str, Any] | None = None) -> None:
        self.run, self.enabled = run, enabled
        self.tb: Any = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter  # slow import; only when training

            self.tb = SummaryWriter(str(run.tb_dir), purge_step=step if step > 0 else None)
            if config is not None:  # the resolved config beside the curves (TensorBoard's Text tab)
                self.tb.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", step)
            if progress:
                print(f"run folder: {run.root} ({'resuming at step ' + str(step) if step else 'new'}); "
                      f"TensorBoard: tensorboard --logdir {run.tb_dir}", file=sys.stderr)
        self.desc, self.total = desc, total
        tty = sys.stderr.isatty()
        self.bar = tqdm(total=total, initial=step, desc=desc, unit="step", disable=not (enabled and progress and tty),
                        dynamic_ncols=True)
        # Plain lines: the training time so far (evaluations excluded) and the steps it covered.
        self.lines = enabled and progress and not tty
        self.t_train, self.t_mark, self.first_step = 0.0, time.perf_counter(), step

    def advance(self) -> None:
        self.bar.update(1)

    def status(self, text: str | None) -> None:
        """Say what the run is doing besides training steps (``None``: back to training; the time in between is
        kept out of the speed and the ETA)."""
        now = time.perf_counter()
        if text:
            self.t_train += now - self.t_mark
            if self.lines:
                print(f"{self.desc}: {text}...", file=sys.stderr, flush=True)
        else:
            self.bar.unpause()  # tqdm's clock restarts from its last update: the pause is not training time
        self.t_mark = now
        self.bar.set_description(f"{self.desc} ({text})" if text else self.desc)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.run.append_stats({"step": step, **values})
        for k, v in values.items():
            if k != "time":  # a timestamp is not a curve
                self.tb.add_scalar(f"train/{k}", v, step)
        losses = {k: v for k, v in values.items() if k.startswith("loss")}
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()})
        if self.lines:
            self.print_line(step, losses)

    def print_line(self, step: int, losses: dict[str, float]) -> None:
        now = time.perf_counter()
        self.t_train, self.t_mark = self.t_train + now - self.t_mark, now
        rate = (step - self.first_step) / max(self.t_train, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        parts = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
        print(f"{self.desc}: step {step}/{self.total} ({100 * step / max(self.total, 1):.0f}%) {parts} "
              f"{rate:.2f} steps/s, ETA {_duration(eta)}", file=sys.stderr, flush=True)

    def warn(self, text: str, step: int) -> None:
        """One line on stderr (above the progress bar) and in TensorBoard's Text tab."""
        if self.enabled:
            self.bar.write(f"semgan: {text}", file=sys.stderr)
            self.tb.add_text("events", text, step)

    def rewind(self, step: int) -> None:
        """Training goes back to ``step`` (a rollback): the bar, the speed's reference and TensorBoard, whose
        events after ``step`` are dropped as on a resume."""
        self.bar.n = self.bar.last_print_n = step
        self.bar.refresh()
        self.first_step, self.t_train, self.t_mark = step, 0.0, time.perf_counter()
        if self.enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.tb.close()
            self.tb = SummaryWriter(str(self.run.tb_dir), purge_step=step)

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.enabled:
            self.tb.add_scalar(tag, value, step)

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        if self.enabled:
            self.tb.add_image(tag, image, step)  # (3, H, W) uint8

    def close(self) -> None:
        self.bar.close()
        if self.tb is not None:
            self.tb.close()


def _duration(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "?"
    m, sec = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{sec:02d}s"
