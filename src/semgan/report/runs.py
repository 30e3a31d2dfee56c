"""What the report reads of each run of a compare folder, and the columns of its tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semgan.config import SemGANModelConfig
from semgan.metrics import METRICS, swd
from semgan.run_dir import RunDir

MODEL_LABEL = {"semgan": "SemGAN", "gan": "GAN"}


@dataclass
class RunResult:
    """Everything the report reads from one run folder.

    Attributes:
        metrics: metric name -> its ``metric-<name>.jsonl`` lines, sorted by step.
        stats: the ``stats.jsonl`` lines (per log step: losses, D outputs, steps_per_s).
        sessions: the timed training sessions ``compare`` recorded for this run.
    """

    name: str
    mode: str
    seed: int
    path: Path
    exists: bool
    target_steps: int = 0
    step: int = 0
    losses: tuple[str, str] = ("bce", "fm")  # (model.d_loss, model.g_loss), for the loss plot's titles
    metrics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    stats: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.exists and self.step >= self.target_steps

    @property
    def wall_s(self) -> float | None:
        """Training time recorded by ``compare`` (evaluation and sampling included), else None."""
        return sum(float(s["wall_s"]) for s in self.sessions) if self.sessions else None

    @property
    def stats_wall_s(self) -> float | None:
        """Training time implied by ``stats.jsonl``: each logged interval over its measured steps/s."""
        total, prev = 0.0, 0
        for line in self.stats:
            rate = float(line.get("steps_per_s", 0.0))
            if rate > 0:
                total += (int(line["step"]) - prev) / rate
            prev = int(line["step"])
        return total if self.stats else None


def read_run(out: Path, entry: dict[str, Any]) -> RunResult:
    """Read one run of a compare folder (a run that was never started comes back with ``exists=False``)."""
    path = out / str(entry["name"])
    folder = RunDir(path)
    run = RunResult(name=str(entry["name"]), mode=str(entry["mode"]), seed=int(entry["seed"]), path=path,
                    exists=folder.exists(), sessions=list(entry.get("sessions", [])))
    if not run.exists:
        return run
    cfg = folder.read_config()
    m = cfg.model_as(SemGANModelConfig, str(path))
    run.target_steps, run.losses = cfg.train.steps, (m.d_loss, m.g_loss)
    run.metrics = {name: folder.read_metric(name) for name in folder.metric_names()}
    run.stats = folder.read_stats()
    logged = [int(x["step"]) for x in run.stats] + [int(x["step"]) for v in run.metrics.values() for x in v]
    ckpt = folder.checkpoint_step()
    run.step = ckpt if ckpt is not None else max(logged, default=0)
    return run


# ------------------------------------------------------------------------------------------------ columns


@dataclass(frozen=True)
class Column:
    """One table column: where its number lives in a ``metric-<metric>.jsonl`` line, and how to show it."""

    label: str
    metric: str
    key: tuple[str, ...] = ()
    fmt: str = ".4f"
    higher_better: bool = False
    field: str = ""  # the line's top-level key, when not the metric's name (e.g. ms_ssim_gap)
    select_by: Column | None = None  # "best" = this column's value where that column is best, not its own best
    rank: bool = True  # bold the better model (False: a value read against a reference, e.g. the raw MS-SSIM)

    def value(self, line: dict[str, Any], snapped: bool) -> float | None:
        """The column's number in one log line (``snapped``: the baseline's palette-snapped score)."""
        if snapped and self.field:
            return None  # the snapped scores keep each metric's own value only
        value: Any = line.get("snapped") if snapped else line.get(self.field or self.metric)
        for k in self.key:
            if not isinstance(value, dict) or k not in value:
                return None
            value = value[k]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        return float(value)

    def better(self, values: Sequence[float]) -> float:
        return max(values) if self.higher_better else min(values)

    def better_key(self, values: dict[int, float]) -> int:
        """The key (a step) of the better value."""
        return (max if self.higher_better else min)(values, key=values.__getitem__)

    def format(self, value: float) -> str:
        return format(value, self.fmt)


@dataclass(frozen=True)
class Row:
    label: str
    mode: str
    snapped: bool = False


PAPER_ROWS = (Row("SemGAN", "semgan"), Row("GAN", "gan"))
SNAPPED_ROW = Row("GAN, snapped to palette", "gan", snapped=True)


def headline_column(metric: str, label: str, fmt: str = ".4f", **kwargs: Any) -> Column:
    """The column of a metric's headline number, its better direction from the metric's :class:`MetricSpec`."""
    spec = METRICS.get(metric)
    first, *rest = spec.headline
    return Column(label, metric, tuple(rest), fmt=fmt, higher_better=spec.higher_is_better,
                  field="" if first == metric else first, **kwargs)


def swd_levels(runs: Sequence[RunResult], resolution: int) -> list[str]:
    """The SWD level keys, coarsest first as in the paper's tables (16, 32, 64, 128)."""
    keys = {k for r in runs for line in r.metrics.get("swd", []) for k in (line.get("swd") or {}) if k != swd.KEY_AVG}
    if not keys:
        keys = {str(res) for res in swd.pyramid_resolutions(resolution)} if resolution >= 16 else set()
    return sorted(keys, key=int)


def main_columns(levels: Sequence[str]) -> list[Column]:
    """The columns of the paper's Tables 1-4, with their number formats.

    MS-SSIM measures diversity, which should match the data's rather than be minimised: the raw value is shown
    (at the evaluation closest to the reals' value) and the distance to the reals' own value, its headline, is
    what ranks. Which value is better follows each metric's :class:`~semgan.metrics.MetricSpec`.
    """
    gap = headline_column("ms_ssim", "MS-SSIM gap")
    swd_better = METRICS.get("swd").higher_is_better
    return [
        headline_column("fid", "FID", fmt=".2f"),
        Column("MS-SSIM", "ms_ssim", fmt=".4f", select_by=gap, rank=False),
        gap,
        *(Column(f"SWD {lv}", "swd", (lv,), fmt=".1f", higher_better=swd_better) for lv in levels),
        headline_column("swd", "SWD avg", fmt=".1f"),
    ]


SEMANTIC_COLUMNS = [
    Column("label validity ↑", "semantic", ("validity_fake",), fmt=".4f", higher_better=True),
    Column("class-share L1", "semantic", ("class_share_l1",), fmt=".4f"),
    Column("class-share JS", "semantic", ("class_share_js",), fmt=".4f"),
    headline_column("semantic", "FSD", fmt=".4g"),
]


STRUCTURE_COLUMNS = [
    headline_column("structure", "count TV", fmt=".3f"),
    Column("fragments", "structure", ("fragments",), fmt=".3f"),
    Column("one per class ↑", "structure", ("one_per_class",), fmt=".3f", higher_better=True),
    Column("rarest class ↑", "structure", ("presence_min",), fmt=".3f", higher_better=True),
]
# The reals' own values of the structure columns, in every structure line
STRUCTURE_REAL = {"fragments": "fragments_real", "one per class ↑": "one_per_class_real",
                  "rarest class ↑": "presence_min_real"}


def structure_reference(runs: Sequence[RunResult]) -> dict[str, float]:
    """The "Real data" row of the structure tables, from any run's last structure evaluation."""
    for r in runs:
        lines = r.metrics.get("structure", [])
        if lines and isinstance(lines[-1].get("structure"), dict):
            st = lines[-1]["structure"]
            return {label: float(st[key]) for label, key in STRUCTURE_REAL.items() if key in st}
    return {}


def series(run: RunResult, col: Column, snapped: bool = False) -> list[tuple[int, float]]:
    """(step, value) pairs of one column over a run's evaluations, by step."""
    points = []
    for line in run.metrics.get(col.metric, []):
        v = col.value(line, snapped)
        if v is not None:
            points.append((int(line["step"]), v))
    return points


def run_value(run: RunResult, col: Column, which: str, snapped: bool = False) -> float | None:
    """A run's ``"best"`` value of a column over its evaluations, or its ``"final"`` (last evaluated) one."""
    points = series(run, col, snapped)
    if not points:
        return None
    if which == "best" and col.select_by is not None:
        by = dict(series(run, col.select_by, snapped))
        if by:
            best_step = col.select_by.better_key(by)
            return next((v for s, v in points if s == best_step), None)
    return col.better([v for _, v in points]) if which == "best" else points[-1][1]

