"""A run folder: every path, write and log read of one training run, in one place.

Layout::

    config.json               resolved config, package version, the dataset's description
    checkpoints/latest.pt     the last checkpoint (written every train.ckpt_every steps and at the end)
    checkpoints/best-<m>.pt   the best evaluation of metric m so far
    stats.jsonl               training scalars, one line per train.log_every steps
    metric-<m>.jsonl          evaluations of metric m, one line per evaluation
    samples/step-NNNNNN.png   the fixed-input sample grid at each train.sample_every step
    grid.png                  the latest of those grids
    tb/                       TensorBoard events

Everything that other commands read is written atomically (:mod:`semgan.io`); logs are appended a line at a
time and read back tolerating a torn last line. Nothing outside this module spells these names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from semgan import __version__
from semgan.checkpoint import load_checkpoint, save_checkpoint
from semgan.config import RunConfig, from_dict, to_dict
from semgan.errors import SemGANError
from semgan.io import append_jsonl, read_jsonl, rewrite_jsonl, write_json
from semgan.labels import write_rgb_png


class RunDir:
    """The run folder at ``root`` (which need not exist yet)."""

    CONFIG = "config.json"
    STATS = "stats.jsonl"
    LATEST = "latest"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    # ----------------------------------------------------------------------------------------------- paths

    @property
    def config_path(self) -> Path:
        return self.root / self.CONFIG

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def stats_path(self) -> Path:
        return self.root / self.STATS

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def grid_path(self) -> Path:
        return self.root / "grid.png"

    @property
    def tb_dir(self) -> Path:
        return self.root / "tb"

    def checkpoint_path(self, name: str = LATEST) -> Path:
        return self.checkpoints / f"{name}.pt"

    def metric_path(self, name: str) -> Path:
        return self.root / f"metric-{name}.jsonl"

    def sample_path(self, step: int) -> Path:
        return self.samples / f"step-{step:06d}.png"

    # ---------------------------------------------------------------------------------------------- config

    def exists(self) -> bool:
        """Whether the folder holds a run (its ``config.json``)."""
        return self.config_path.is_file()

    def read_document(self) -> dict[str, Any]:
        """The whole ``config.json``: ``semgan_version``, ``config``, ``dataset``."""
        if not self.exists():
            raise SemGANError(f"{self.root} is not a semgan run folder (no {self.CONFIG})")
        try:
            doc = json.loads(self.config_path.read_text())
            if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
                raise ValueError("no 'config' mapping")
            return doc
        except (OSError, ValueError) as exc:
            raise SemGANError(f"{self.config_path} is unreadable or not a semgan run config: {exc}") from exc

    def read_config(self) -> RunConfig:
        """The run's resolved configuration."""
        doc = self.read_document()
        try:
            return from_dict(doc["config"])
        except SemGANError as exc:
            raise SemGANError(f"{self.config_path}: {exc}") from exc

    def write_config(self, cfg: RunConfig, dataset: dict[str, Any]) -> None:
        """Write ``config.json`` (the resolved config and the dataset's description with its provenance)."""
        write_json(self.config_path, {"semgan_version": __version__, "config": to_dict(cfg), "dataset": dataset})

    # ----------------------------------------------------------------------------------------- checkpoints

    def has_checkpoint(self, name: str = LATEST) -> bool:
        return self.checkpoint_path(name).is_file()

    def checkpoint_names(self) -> list[str]:
        return sorted(p.stem for p in self.checkpoints.glob("*.pt")) if self.checkpoints.is_dir() else []

    def save_checkpoint(self, state: dict[str, Any], name: str = LATEST) -> Path:
        path = self.checkpoint_path(name)
        save_checkpoint(path, state)
        return path

    def load_checkpoint(self, name: str = LATEST, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        return load_checkpoint(self.checkpoint_path(name), map_location=map_location)

    def checkpoint_step(self, name: str = LATEST) -> int | None:
        """The step of a checkpoint, or None if there is none, read without loading its weights."""
        path = self.checkpoint_path(name)
        if not path.is_file():
            return None
        try:
            # mmap: only the small "step" entry is read, not every weight tensor.
            return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["step"])
        except Exception as exc:  # unpickling errors come in many types; a damaged file is the user's to fix
            raise SemGANError(f"cannot read the step of {path}: {exc}") from exc

    # ------------------------------------------------------------------------------------------------ logs

    def append_stats(self, record: dict[str, Any]) -> None:
        append_jsonl(self.stats_path, record)

    def read_stats(self) -> list[dict[str, Any]]:
        """The ``stats.jsonl`` records by step."""
        return sorted(read_jsonl(self.stats_path), key=lambda r: int(r.get("step", 0)))

    def append_metric(self, name: str, record: dict[str, Any]) -> None:
        append_jsonl(self.metric_path(name), record)

    def read_metric(self, name: str) -> list[dict[str, Any]]:
        """The evaluations of metric ``name`` by step."""
        return sorted(read_jsonl(self.metric_path(name)), key=lambda r: int(r.get("step", 0)))

    def metric_names(self) -> list[str]:
        return sorted(p.stem.removeprefix("metric-") for p in self.root.glob("metric-*.jsonl"))

    def truncate_logs(self, step: int) -> None:
        """Drop log lines after ``step``: what a run logged after its checkpoint and then lost to a crash."""
        for path in [self.stats_path, *(self.metric_path(m) for m in self.metric_names())]:
            if not path.is_file():
                continue
            records = read_jsonl(path)
            kept = [r for r in records if int(r.get("step", 0)) <= step]
            if len(kept) != len(records) or len(path.read_text().splitlines()) != len(records):
                rewrite_jsonl(path, kept)  # also drops a torn last line, so appends start on a fresh line

    # ----------------------------------------------------------------------------------------------- grids

    def write_grid(self, step: int, image: torch.Tensor) -> None:
        """Store the (3, H, W) uint8 sample grid of ``step`` (and as the latest ``grid.png``)."""
        self.samples.mkdir(parents=True, exist_ok=True)
        write_rgb_png(self.sample_path(step), image)
        write_rgb_png(self.grid_path, image)

    def sample_steps(self) -> list[int]:
        """The steps that have a sample grid, in order."""
        stems = (p.stem.removeprefix("step-") for p in self.samples.glob("step-*.png"))
        return sorted(int(s) for s in stems if s.isdigit())
