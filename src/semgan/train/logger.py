"""What a run shows while it trains: a progress bar, ``stats.jsonl`` and TensorBoard (rank 0 only)."""

from __future__ import annotations

import sys
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

    def __init__(self, run: RunDir, step: int, total: int, desc: str, *, enabled: bool, progress: bool) -> None:
        self.run, self.enabled = run, enabled
        self.tb: Any = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter  # slow import; only when training

            self.tb = SummaryWriter(str(run.tb_dir), purge_step=step if step > 0 else None)
            if progress:
                print(f"run folder: {run.root} ({'resuming at step ' + str(step) if step else 'new'}); "
                      f"TensorBoard: tensorboard --logdir {run.tb_dir}", file=sys.stderr)
        self.desc = desc
        self.bar = tqdm(total=total, initial=step, desc=desc, unit="step", disable=not (enabled and progress),
                        dynamic_ncols=True)

    def advance(self) -> None:
        self.bar.update(1)

    def status(self, text: str | None) -> None:
        """Say what the run is doing besides training steps (``None``: back to training)."""
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
