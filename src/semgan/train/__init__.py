"""Training: one loop for every model family (:mod:`semgan.train.loop`), its engine, ranks and logs."""

from __future__ import annotations

from semgan.train.loop import TrainingCollapsed, TrainingDiverged, TrainingInterrupted, fit, saved_config, train

__all__ = ["TrainingCollapsed", "TrainingDiverged", "TrainingInterrupted", "fit", "saved_config", "train"]
