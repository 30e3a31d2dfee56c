"""Training: the loop, the run folder and its logs (checkpoints live in :mod:`semgan.checkpoint`)."""

from __future__ import annotations

from semgan.train.loop import Trainer, TrainingInterrupted, train

__all__ = ["Trainer", "TrainingInterrupted", "train"]
