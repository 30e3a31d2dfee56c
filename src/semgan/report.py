"""The comparison report of a compare folder: the paper's Tables 1-2 and Figures 3-7, from the run logs.

:func:`build_report` reads ``compare.json`` and each run's logs (``metric-*.jsonl``, ``stats.jsonl``, sample
grids, checkpoints) and writes, without training anything:

- ``report.md`` and a self-contained ``report.html`` (images inlined as base64 data URIs);
- ``plots/``: SWD against training step per pyramid level (the paper's Figures 4 and 5), the other metrics
  against step, per-class pixel shares, training losses;
- ``grids/``: each run's latest 4x4 sample grid and the grid of its best-SWD checkpoint (Figures 3, 6, 7).

The tables follow Tables 1 and 2: rows SemGAN and GAN; columns FID, MS-SSIM, SWD per level from 16 px up, SWD
average; the better value per column in bold; lower is better. The paper reports the best value seen during
training; both that (the minimum over the evaluated steps, per column) and the value at the end of training
are given, and with several seeds their mean and sample standard deviation across seeds, plus the best seed.

The document is built once as a list of blocks (:class:`Heading`, :class:`Table`, ...) that
:func:`render_markdown` and :func:`semgan.report_html.render_html` both render, so the two files never
disagree.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from semgan.compare import COMPARE_FILE, MODES, checkpoint_step, read_compare
from semgan.config import flatten, from_dict
from semgan.errors import SemGANError
from semgan.evaluate import headline
from semgan.labels import make_grid, write_rgb_png
from semgan.train.loop import GRID_SEED_OFFSET, is_run_dir

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
MISSING = "—"
MODEL_LABEL = {"semgan": "SemGAN", "gan": "GAN"}
MODEL_COLOR = {"semgan": "tab:blue", "gan": "tab:orange"}


# ------------------------------------------------------------------------------------------ document model


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """Text with two inline marks: ``**bold**`` and ```code```."""

    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Cell:
    text: str
    bold: bool = False


@dataclass(frozen=True)
class Table:
    """``align``: one letter per column, ``l`` or ``r``; empty = the first column left, the others right."""

    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    caption: str = ""
    align: str = ""

    def alignment(self) -> str:
        return self.align or "l" + "r" * (len(self.header) - 1)


@dataclass(frozen=True)
class Image:
    """A PNG, ``path`` relative to the report folder."""

    path: str
    alt: str


@dataclass(frozen=True)
class Figure:
    image: Image
    caption: str


@dataclass(frozen=True)
class ImageTable:
    """Images side by side: one column per model, one row per kind of grid (``None`` = not available)."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, tuple[Image | None, ...]], ...]
    caption: str = ""


@dataclass(frozen=True)
class Code:
    text: str
    summary: str


Block = Heading | Paragraph | Bullets | Table | Figure | ImageTable | Code


# ----------------------------------------------------------------------------------------------- run data


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


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    except ValueError as exc:
        raise SemGANError(f"{path} is not valid JSON lines: {exc}") from exc
    return sorted(lines, key=lambda x: int(x.get("step", 0)))


def read_run(out: Path, entry: dict[str, Any]) -> RunResult:
    """Read one run of a compare folder (a run that was never started comes back with ``exists=False``)."""
    path = out / str(entry["name"])
    run = RunResult(name=str(entry["name"]), mode=str(entry["mode"]), seed=int(entry["seed"]), path=path,
                    exists=is_run_dir(path), sessions=list(entry.get("sessions", [])))
    if not run.exists:
        return run
    try:
        run.target_steps = int(json.loads((path / "config.json").read_text())["config"]["train"]["steps"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SemGANError(f"{path / 'config.json'} is unreadable: {exc}") from exc
    run.metrics = {p.stem.removeprefix("metric-"): _read_jsonl(p) for p in sorted(path.glob("metric-*.jsonl"))}
    run.stats = _read_jsonl(path / "stats.jsonl")
    logged = [int(x["step"]) for x in run.stats] + [int(x["step"]) for v in run.metrics.values() for x in v]
    ckpt = checkpoint_step(path)
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

    def value(self, line: dict[str, Any], snapped: bool) -> float | None:
        """The column's number in one log line (``snapped``: the baseline's palette-snapped score)."""
        value: Any = line.get("snapped") if snapped else line.get(self.metric)
        for k in self.key:
            if not isinstance(value, dict) or k not in value:
                return None
            value = value[k]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        return float(value)

    def better(self, values: Sequence[float]) -> float:
        return max(values) if self.higher_better else min(values)

    def format(self, value: float) -> str:
        return format(value, self.fmt)


@dataclass(frozen=True)
class Row:
    label: str
    mode: str
    snapped: bool = False


PAPER_ROWS = (Row("SemGAN", "semgan"), Row("GAN", "gan"))
SNAPPED_ROW = Row("GAN, snapped to palette", "gan", snapped=True)


def swd_levels(runs: Sequence[RunResult], resolution: int) -> list[str]:
    """The SWD level keys, coarsest first as in the paper's tables (16, 32, 64, 128)."""
    keys = {k for r in runs for line in r.metrics.get("swd", []) for k in (line.get("swd") or {}) if k != "avg"}
    if not keys:
        from semgan.metrics.swd import pyramid_resolutions

        keys = {str(res) for res in pyramid_resolutions(resolution)} if resolution >= 16 else set()
    return sorted(keys, key=int)


def main_columns(levels: Sequence[str]) -> list[Column]:
    """The columns of the paper's Tables 1-4, with their number formats."""
    return [
        Column("FID", "fid", fmt=".2f"),
        Column("MS-SSIM", "ms_ssim", fmt=".4f"),
        *(Column(f"SWD {lv}", "swd", (lv,), fmt=".1f") for lv in levels),
        Column("SWD avg", "swd", ("avg",), fmt=".1f"),
    ]


SEMANTIC_COLUMNS = [
    Column("label validity ↑", "semantic", ("validity_fake",), fmt=".4f", higher_better=True),
    Column("class-share L1", "semantic", ("class_share_l1",), fmt=".4f"),
    Column("class-share JS", "semantic", ("class_share_js",), fmt=".4f"),
    Column("FSD", "semantic", ("fsd",), fmt=".4g"),
]


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
    return col.better([v for _, v in points]) if which == "best" else points[-1][1]


# --------------------------------------------------------------------------------------------------- tables


def _aggregate(values: list[float], col: Column, agg: str) -> tuple[str, float | None]:
    """Cell text and the number it is ranked by: ``mean`` (± sample std over seeds) or ``best`` seed."""
    if not values:
        return MISSING, None
    if agg == "best" or len(values) == 1:
        v = col.better(values) if agg == "best" else values[0]
        return col.format(v), v
    mean = statistics.fmean(values)
    return f"{col.format(mean)} ± {col.format(statistics.stdev(values))}", mean


def metric_table(
    runs: Sequence[RunResult],
    cols: Sequence[Column],
    *,
    which: str,
    agg: str,
    caption: str,
    reference: dict[str, float] | None = None,
) -> Table:
    """Rows SemGAN, GAN (and the baseline snapped to the palette when logged); bold = the better of the two.

    Args:
        runs: every run of the compare.
        cols: the columns.
        which: ``"best"`` (per run, the best value over its evaluations) or ``"final"``.
        agg: across seeds, ``"mean"`` (mean ± std) or ``"best"`` (the best seed).
        caption: the table caption.
        reference: column label -> value for a "Real data" row (e.g. the reals' own MS-SSIM).
    """
    rows: list[tuple[Cell, ...]] = []
    ranked: dict[str, list[float | None]] = {c.label: [] for c in cols}
    has_snapped = any(series(r, c, snapped=True) for r in runs if r.mode == "gan" for c in cols)
    for row in (*PAPER_ROWS, *((SNAPPED_ROW,) if has_snapped else ())):
        cells = [Cell(row.label)]
        for col in cols:
            values = [v for r in runs if r.mode == row.mode
                      if (v := run_value(r, col, which, row.snapped)) is not None]
            text, rank = _aggregate(values, col, agg)
            cells.append(Cell(text))
            if not row.snapped:
                ranked[col.label].append(rank)
        rows.append(tuple(cells))
    # Bold the better of SemGAN and GAN per column (the paper's rows; the snapped baseline is extra).
    for j, col in enumerate(cols, 1):
        a, b = ranked[col.label]
        if a is None or b is None or a == b:
            continue
        winner = 0 if col.better([a, b]) == a else 1
        rows[winner] = tuple(Cell(c.text, bold=(k == j) or c.bold) for k, c in enumerate(rows[winner]))
    if reference:
        rows.append((Cell("Real data"),
                     *(Cell(c.format(reference[c.label]) if c.label in reference else MISSING) for c in cols)))
    return Table(("Model", *(c.label for c in cols)), tuple(rows), caption)


def class_share_table(runs: Sequence[RunResult], class_names: Sequence[str]) -> Table | None:
    """Per-class pixel shares of the reals and of each model's samples at its last evaluation."""
    real: list[float] | None = None
    fake: dict[str, list[list[float]]] = {m: [] for m in MODES}
    for r in runs:
        lines = r.metrics.get("semantic", [])
        if not lines or not isinstance(lines[-1].get("semantic"), dict):
            continue
        sem = lines[-1]["semantic"]
        real = real or list(sem["class_share_real"])
        fake[r.mode].append(list(sem["class_share_fake"]))
    if real is None:
        return None
    header = ("class", "real", *(MODEL_LABEL[m] for m in MODES))
    rows = []
    for k, name in enumerate(class_names):
        cells = [Cell(name), Cell(f"{100 * real[k]:.2f}%")]
        for m in MODES:
            shares = [s[k] for s in fake[m]]
            cells.append(Cell(f"{100 * statistics.fmean(shares):.2f}%" if shares else MISSING))
        rows.append(tuple(cells))
    return Table(header, tuple(rows), "Per-class pixel shares at the end of training (mean over seeds). The "
                 "baseline's classes are its output snapped to the nearest palette colour.")


# ---------------------------------------------------------------------------------------------------- plots


def _matplotlib_figure(**kwargs: Any) -> Any:
    """A matplotlib Figure on the Agg canvas, without pyplot (no global backend switch, no GUI)."""
    try:
        from matplotlib.figure import Figure as MplFigure
    except ImportError:
        raise SemGANError("the comparison report draws its plots with matplotlib: pip install matplotlib") from None
    return MplFigure(layout="constrained", **kwargs)


def _mean_curve(curves: list[list[tuple[int, float]]]) -> tuple[list[int], list[float]]:
    """The mean over seeds at the steps every seed evaluated."""
    steps = sorted(set.intersection(*({s for s, _ in c} for c in curves)))
    maps = [dict(c) for c in curves]
    return steps, [statistics.fmean(m[s] for m in maps) for s in steps]


Curve = Callable[[RunResult, bool], list[tuple[int, float]]]  # (run, snapped) -> (step, value) points


def _column_curve(col: Column) -> Curve:
    return lambda run, snapped: series(run, col, snapped)


def _stats_curve(key: str) -> Curve:
    return lambda run, _snapped: [(int(x["step"]), float(x[key])) for x in run.stats if key in x]


def _plot_curves(ax: Any, runs: Sequence[RunResult], get: Curve, *, snapped_too: bool, suffix: str = "",
                 linestyle: str = "-") -> None:
    """Draw one model comparison on ``ax``: per model a line per seed (thin when there are several) and their mean.

    Markers only on short curves: a few evaluations must stay visible, thousands of log steps must not blur.
    """
    for mode in MODES:
        for snapped in (False, True) if mode == "gan" and snapped_too else (False,):
            curves = [c for r in runs if r.mode == mode if (c := get(r, snapped))]
            if not curves:
                continue
            label = MODEL_LABEL[mode] + (", snapped" if snapped else "") + suffix
            style: dict[str, Any] = {"color": MODEL_COLOR[mode], "linestyle": "--" if snapped else linestyle,
                                     "marker": "o" if max(map(len, curves)) <= 40 else None, "markersize": 3}
            if len(curves) == 1:
                ax.plot(*zip(*curves[0], strict=True), label=label, linewidth=1.5, **style)
            else:
                for c in curves:
                    ax.plot(*zip(*c, strict=True), linewidth=0.8, alpha=0.35, **{**style, "marker": None})
                ax.plot(*_mean_curve(curves), label=f"{label} (mean of {len(curves)})", linewidth=1.8, **style)


def _finish_axis(ax: Any, title: str, ylabel: str = "") -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_title(title)
    ax.set_xlabel("training step")
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are integers; no "2.5" ticks on short runs
    ax.grid(alpha=0.3)


def plot_swd(runs: Sequence[RunResult], levels: Sequence[str], path: Path) -> bool:
    """SWD against training step, one panel per pyramid level and one for the average (Figures 4 and 5)."""
    keys = [*levels, "avg"]
    if not any(r.metrics.get("swd") for r in runs):
        return False
    fig = _matplotlib_figure(figsize=(3.3 * len(keys), 3.0))
    for ax, key in zip(fig.subplots(1, len(keys), squeeze=False)[0], keys, strict=True):
        _plot_curves(ax, runs, _column_curve(Column(f"SWD {key}", "swd", (key,))), snapped_too=True)
        _finish_axis(ax, f"SWD {key}×{key}" if key != "avg" else "SWD average", "SWD ×10³")
    fig.axes[0].legend(fontsize=8)
    fig.savefig(path, dpi=100)
    return True


def plot_metrics(runs: Sequence[RunResult], path: Path, reference: dict[str, float] | None = None) -> bool:
    """FID, MS-SSIM and the semantic headline numbers against training step (whichever were evaluated).

    ``reference`` (column label -> value, e.g. the reals' own MS-SSIM) is drawn as a grey dotted line.
    """
    cols = [c for c in (Column("FID", "fid"), Column("MS-SSIM", "ms_ssim"), *SEMANTIC_COLUMNS)
            if any(series(r, c) for r in runs)]
    if not cols:
        return False
    fig = _matplotlib_figure(figsize=(3.3 * len(cols), 3.0))
    for ax, col in zip(fig.subplots(1, len(cols), squeeze=False)[0], cols, strict=True):
        _plot_curves(ax, runs, _column_curve(col), snapped_too=True)
        if reference and col.label in reference:
            ax.axhline(reference[col.label], color="0.4", linestyle=":", label="real data")
        _finish_axis(ax, col.label)
    for ax in fig.axes:
        if ax.get_legend_handles_labels()[1]:  # the first panel with a line has the legend
            ax.legend(fontsize=8)
            break
    fig.savefig(path, dpi=100)
    return True


def plot_losses(runs: Sequence[RunResult], path: Path) -> bool:
    """D loss, G (feature-matching) loss and D's mean outputs on real and fake batches, per logged step."""
    if not any(r.stats for r in runs):
        return False
    fig = _matplotlib_figure(figsize=(11.0, 3.0))
    panels = fig.subplots(1, 3, squeeze=False)[0]
    _plot_curves(panels[0], runs, _stats_curve("loss_D"), snapped_too=False)
    _finish_axis(panels[0], "D loss (BCE)")
    _plot_curves(panels[1], runs, _stats_curve("loss_G"), snapped_too=False)
    _finish_axis(panels[1], "G loss (feature matching)")
    _plot_curves(panels[2], runs, _stats_curve("D_real"), snapped_too=False, suffix=" D(real)")
    _plot_curves(panels[2], runs, _stats_curve("D_fake"), snapped_too=False, suffix=" D(fake)", linestyle=":")
    _finish_axis(panels[2], "mean D output (sigmoid)")
    panels[0].legend(fontsize=8)
    panels[2].legend(fontsize=7)
    fig.savefig(path, dpi=100)
    return True


def plot_class_shares(table: Table, path: Path) -> None:
    """Grouped bars of the per-class pixel shares (real and each model)."""
    names = [row[0].text for row in table.rows]
    fig = _matplotlib_figure(figsize=(min(16.0, max(5.0, 0.45 * len(names) * len(table.header))), 3.2))
    ax = fig.subplots()
    groups = table.header[1:]
    width = 0.8 / len(groups)
    colors = ["0.4", *(MODEL_COLOR[m] for m in MODES)]
    for g, (label, color) in enumerate(zip(groups, colors, strict=True)):
        values = [float(row[g + 1].text.rstrip("%")) if row[g + 1].text != MISSING else 0.0 for row in table.rows]
        ax.bar([i + (g - (len(groups) - 1) / 2) * width for i in range(len(names))], values, width, label=label,
               color=color)
    many = len(names) > 6  # long class lists (Cityscapes) need slanted labels
    ax.set_xticks(range(len(names)), names, rotation=30 if many else 0, ha="right" if many else "center")
    ax.set_ylabel("pixel share (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.savefig(path, dpi=100)


# ---------------------------------------------------------------------------------------------------- grids


def _sample_steps(run: RunResult) -> list[int]:
    return sorted(int(p.stem.removeprefix("step-")) for p in (run.path / "samples").glob("step-*.png")
                  if p.stem.removeprefix("step-").isdigit())


def best_swd_step(run: RunResult) -> int | None:
    """The step of the run's lowest average SWD (the one ``checkpoints/best-swd.pt`` holds)."""
    scored = [(v, int(x["step"])) for x in run.metrics.get("swd", [])
              if (v := headline({"swd": x.get("swd")}, "swd")) is not None and math.isfinite(v)]
    return min(scored)[1] if scored else None


def write_grids(run: RunResult, grids: Path) -> tuple[tuple[Image, str] | None, tuple[Image, str] | None]:
    """Copy the run's latest sample grid and make the grid of its best-SWD step.

    The best-SWD grid is rendered from ``checkpoints/best-swd.pt`` with the run's fixed grid latents, so it is
    the grid training would have written at that step; without that checkpoint the nearest sample step's grid
    stands in, and the caption says so.

    Returns:
        ``(image, caption)`` for the latest and the best-SWD grid, None where there is none.
    """
    latest: tuple[Image, str] | None = None
    if (run.path / "grid.png").is_file():
        steps = _sample_steps(run)
        dest = grids / f"{run.name}-latest.png"
        shutil.copyfile(run.path / "grid.png", dest)
        latest = (Image(f"{grids.name}/{dest.name}", f"{run.name} latest samples"),
                  f"step {steps[-1]}" if steps else "latest")
    best_step = best_swd_step(run)
    if best_step is None:
        return latest, None
    dest = grids / f"{run.name}-best-swd.png"
    image = Image(f"{grids.name}/{dest.name}", f"{run.name} samples at the best-SWD step")
    ckpt = run.path / "checkpoints" / "best-swd.pt"
    if ckpt.is_file():
        from semgan.sample import latents, load_run, render

        loaded = load_run(ckpt)
        z = latents(16, loaded.cfg.model.ld,
                    generator=torch.Generator().manual_seed(loaded.cfg.train.seed + GRID_SEED_OFFSET))
        write_rgb_png(dest, make_grid(render(loaded.G, z, loaded.palette).images, nrow=4))
        return latest, (image, f"best SWD avg, step {loaded.step}")
    steps = _sample_steps(run)
    if not steps:
        return latest, None
    nearest = min(steps, key=lambda s: (abs(s - best_step), s))
    shutil.copyfile(run.path / "samples" / f"step-{nearest:06d}.png", dest)
    return latest, (image, f"step {nearest}, the sample step nearest the best SWD avg (step {best_step})")


# --------------------------------------------------------------------------------------------------- report


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 90 else f"{minutes / 60:.2f} h"


def _images_per_set(runs: Sequence[RunResult]) -> str:
    ns = sorted({int(x["n"]) for r in runs for lines in r.metrics.values() for x in lines if "n" in x})
    return ", ".join(map(str, ns)) if ns else MISSING


def _hardware(runs: Sequence[RunResult]) -> str:
    found = sorted({str(s.get("hardware", s.get("device", "?"))) for r in runs for s in r.sessions})
    return "; ".join(found) if found else "not recorded (runs not trained by compare)"


def _wall(run: RunResult) -> tuple[float | None, str]:
    """A run's training time and where it comes from (compare's own timing, else the logged steps/s)."""
    return (run.wall_s, "") if run.wall_s is not None else (run.stats_wall_s, " (from stats.jsonl)")


def _summary(doc: dict[str, Any], runs: Sequence[RunResult]) -> Paragraph:
    """The protocol in one paragraph, for right under the tables (details in the Protocol section)."""
    cfg = from_dict(doc["config"])
    ds = doc.get("dataset", {})
    walls = []
    for r in runs:
        if r.exists:
            wall, source = _wall(r)
            walls.append(f"{r.name} {_duration(wall)}{source}")
    return Paragraph(
        f"**Protocol**: `{ds.get('name', cfg.data.name)}` ({ds.get('count', '?')} maps, "
        f"{ds.get('resolution', '?')}×{ds.get('resolution', '?')} px, {len(ds.get('class_names', []))} classes); "
        f"{cfg.train.steps} training steps per run, evaluated every {cfg.eval.every} steps and at the end on "
        f"{_images_per_set(runs)} generated images against as many real maps per set; hardware: {_hardware(runs)}; "
        f"wall time per run: {', '.join(walls) or MISSING}. For every metric lower is better (label validity: higher)."
    )


def _protocol(doc: dict[str, Any], runs: Sequence[RunResult]) -> list[Block]:
    cfg = from_dict(doc["config"])
    ds = doc.get("dataset", {})
    per_set = _images_per_set(runs)
    whole = " (the whole training set, the paper's protocol)" if cfg.eval.n <= 0 else ""
    seeds = sorted({r.seed for r in runs})
    unfinished = [f"{r.name} (step {r.step} of {r.target_steps})" if r.exists else f"{r.name} (not started)"
                  for r in runs if not r.finished]
    evals = sorted({int(x["step"]) for r in runs for lines in r.metrics.values() for x in lines})
    items = [
        f"**Dataset**: `{ds.get('name', cfg.data.name)}`, {ds.get('count', '?')} label maps of "
        f"{ds.get('resolution', '?')}×{ds.get('resolution', '?')} px, {len(ds.get('class_names', []))} classes "
        f"({', '.join(ds.get('class_names', []))}).",
        f"**Models**: SemGAN (softmax over the classes) and GAN (RGB tanh head), otherwise the same configuration "
        f"(below): {cfg.train.steps} steps, batch {cfg.train.batch}, lr {cfg.train.lr:g}, ks {cfg.model.ks}, "
        f"ld {cfg.model.ld}, G loss `{cfg.train.g_loss}`; seeds {', '.join(map(str, seeds))}.",
        f"**Evaluation**: every {cfg.eval.every} steps and at the last step"
        + (f" (steps {', '.join(map(str, evals))})" if 0 < len(evals) <= 12 else "")
        + f"; {per_set} generated images against as many real maps per set{whole}; metric seed {cfg.eval.seed}. "
        "Images are colourised label maps (argmax then palette for SemGAN and the reals); the GAN is scored on "
        "its raw RGB output and, in the extra row, after snapping each pixel to the nearest palette colour.",
        "**Metrics**: SWD ×10³ per Laplacian-pyramid level (ProGAN's protocol; named by level resolution), "
        "MS-SSIM over consecutive pairs of generated images (diversity; the reals' own value is the reference "
        "row), FID on Inception pool features, and label-map checks (label validity = share of pixels within "
        "10 RGB units of a palette colour; L1 and Jensen-Shannon distance of the class pixel shares; FSD = "
        "Fréchet distance of per-image class proportions). **Lower is better** for every metric except label "
        "validity.",
        "**Best during training** = per run and per column, the best value over the evaluated steps (the paper's "
        "\"best results obtained during training\"); **final** = the last evaluation."
        + (" With several seeds: mean ± sample standard deviation over seeds, and a table of the best seed."
           if len(seeds) > 1 else ""),
        f"**Hardware**: {_hardware(runs)}.",
    ]
    if unfinished:
        items.append(f"**Unfinished runs** (their numbers are partial): {', '.join(unfinished)}.")
    header = ("run", "steps", "wall time", "steps/s", "device")
    rows = []
    for r in runs:
        wall, source = _wall(r)
        devices = ", ".join(sorted({str(s.get("device", "?")) for s in r.sessions})) or MISSING
        rate = f"{r.step / wall:.2f}" if wall and r.step else MISSING
        rows.append((Cell(r.name), Cell(f"{r.step} / {r.target_steps}" if r.exists else "not started"),
                     Cell(_duration(wall) + source), Cell(rate), Cell(devices)))
    table = Table(header, tuple(rows), "Training time per run, as measured by compare (evaluation and sample "
                  "grids included); steps/s = steps over that time.", align="lrrrl")
    return [Bullets(tuple(items)), table]


def build_document(out: Path) -> list[Block]:
    """Read the compare folder ``out``, write its plots and grids, and return the report's blocks."""
    doc = read_compare(out)
    runs = [read_run(out, entry) for entry in doc["runs"]]
    cfg = from_dict(doc["config"])
    ds = doc.get("dataset", {})
    seeds = sorted({r.seed for r in runs if r.exists})  # a seed whose runs never started adds no numbers
    levels = swd_levels(runs, int(ds.get("resolution", 0)))
    cols = main_columns(levels)
    real = doc.get("real")
    reference = {"MS-SSIM": float(real["ms_ssim"])} if real else None
    name = ds.get("name", cfg.data.name)
    stat = f"mean ± std over {len(seeds)} seeds" if len(seeds) > 1 else "one seed"

    blocks: list[Block] = [
        Heading(f"SemGAN vs GAN on {name}", 1),
        Paragraph(f"SemGAN and the RGB GAN baseline trained with the same configuration; only the output head "
                  f"differs (the paper's Section 5). Built from `{COMPARE_FILE}` and the run folders "
                  f"{', '.join(f'`{r.name}`' for r in runs)}."),
        Heading("Results"),
        metric_table(runs, cols, which="best", agg="mean", reference=reference, caption=(
            f"Table 1. SemGAN vs GAN on {name}, best value during training ({stat}). SWD ×10³ per pyramid level "
            "(16 = the 16×16 level). Bold: the better of SemGAN and GAN. For every metric lower is better."
            + (" The Real data row is the MS-SSIM of pairs of real maps." if reference else ""))),
        metric_table(runs, cols, which="final", agg="mean", reference=reference, caption=(
            f"Table 2. The same at the end of training (step {cfg.train.steps}; {stat}). Lower is better.")),
    ]
    if len(seeds) > 1:
        blocks.append(metric_table(runs, cols, which="best", agg="best", reference=reference, caption=(
            f"Table 2b. Best over {len(seeds)} seeds and during training (the paper's \"best results obtained "
            "among a set of experiments and during training\"). Lower is better.")))
    blocks.append(_summary(doc, runs))
    blocks += [
        Heading("Label maps"),
        metric_table(runs, SEMANTIC_COLUMNS, which="best", agg="mean", caption=(
            f"Table 3. Label-map metrics, best during training ({stat}). Label validity (higher is better): share "
            "of generated pixels that are a class colour; class-share L1 / JS and FSD (lower is better) compare "
            "class frequencies with the reals (the baseline's classes are its snapped output).")),
        metric_table(runs, SEMANTIC_COLUMNS, which="final", agg="mean",
                     caption=f"Table 4. Label-map metrics at the end of training ({stat})."),
    ]
    grids, plots = out / "grids", out / "plots"
    grids.mkdir(exist_ok=True)
    plots.mkdir(exist_ok=True)
    shares = class_share_table(runs, ds.get("class_names", []))
    if shares is not None:
        blocks.append(shares)
        plot_class_shares(shares, plots / "class-shares.png")
        blocks.append(Figure(Image("plots/class-shares.png", "per-class pixel shares"),
                             "Per-class pixel shares at the end of training: reals, SemGAN, GAN (snapped)."))

    blocks.append(Heading("Training curves"))
    if plot_swd(runs, levels, plots / "swd.png"):
        blocks.append(Figure(Image("plots/swd.png", "SWD against training step"), (
            f"SWD (×10³) against training step per pyramid level and averaged, SemGAN vs GAN on {name} (the "
            "paper's Figures 4 and 5). Dashed: the GAN snapped to the palette. Lower is better.")))
    if plot_metrics(runs, plots / "metrics.png", reference):
        blocks.append(Figure(Image("plots/metrics.png", "other metrics against training step"), (
            "The other evaluated metrics against training step (dotted grey: the reals' own MS-SSIM). Lower is "
            "better except for label validity.")))
    if plot_losses(runs, plots / "losses.png"):
        blocks.append(Figure(Image("plots/losses.png", "training losses"), (
            "Training losses per logged step: D's binary cross-entropy, G's feature-matching loss, and D's mean "
            "output on real and generated batches.")))

    blocks.append(Heading("Samples"))
    by_seed: dict[int, dict[str, RunResult]] = {}
    for r in runs:
        by_seed.setdefault(r.seed, {})[r.mode] = r
    for seed in seeds:
        made = {m: write_grids(r, grids) for m, r in by_seed[seed].items() if r.exists}
        header = tuple(MODEL_LABEL[m] for m in MODES)
        rows = []
        for i, kind in enumerate(("latest samples", "best-SWD samples")):
            pairs = [made.get(m, (None, None))[i] for m in MODES]
            if any(pairs):
                captions = "; ".join(f"{MODEL_LABEL[m]}: {p[1]}" for m, p in zip(MODES, pairs, strict=True) if p)
                rows.append((f"{kind} ({captions})", tuple(p[0] if p else None for p in pairs)))
        if rows:
            blocks.append(ImageTable(header, tuple(rows), (
                f"4×4 samples from fixed latents, seed {seed}: SemGAN (left) and GAN (right), at the latest step "
                "and at the step of the lowest SWD avg (the paper's Figures 3, 6 and 7).")))

    blocks.append(Heading("Protocol"))
    blocks += _protocol(doc, runs)
    flat = {k: ("semgan | gan" if k == "model.mode" else v) for k, v in flatten(cfg).items()}
    blocks.append(Code("\n".join(f"{k} = {v!r}" for k, v in flat.items()),
                       "The shared configuration (train.seed = the base seed + the seed index)"))
    return blocks


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(blocks: Sequence[Block]) -> str:
    """The report as GitHub-flavoured Markdown; images are referenced by their relative paths."""
    parts: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Paragraph):
            parts.append(b.text)
        elif isinstance(b, Bullets):
            parts.append("\n".join(f"- {item}" for item in b.items))
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(_md_cell(h) for h in b.header) + " |",
                     "|" + "|".join("---:" if a == "r" else "---" for a in b.alignment()) + "|"]
            for row in b.rows:
                lines.append("| " + " | ".join(f"**{_md_cell(c.text)}**" if c.bold else _md_cell(c.text)
                                               for c in row) + " |")
            parts.append("\n".join(lines) + (f"\n\n*{b.caption}*" if b.caption else ""))
        elif isinstance(b, Figure):
            parts.append(f"![{b.image.alt}]({b.image.path})\n\n*{b.caption}*")
        elif isinstance(b, ImageTable):
            lines = ["| | " + " | ".join(b.header) + " |", "|---|" + "---|" * len(b.header)]
            for label, images in b.rows:
                cells = [f"![{im.alt}]({im.path})" if im else MISSING for im in images]
                lines.append(f"| {_md_cell(label)} | " + " | ".join(cells) + " |")
            parts.append("\n".join(lines) + (f"\n\n*{b.caption}*" if b.caption else ""))
        elif isinstance(b, Code):
            parts.append(f"{b.summary}:\n\n```\n{b.text}\n```")
    return "\n\n".join(parts) + "\n"


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def build_report(out: str | Path) -> Path:
    """Write ``report.md``, ``report.html``, ``plots/`` and ``grids/`` of the compare folder ``out``.

    Reads only what the runs logged (and renders the best-SWD grids from their checkpoints); trains nothing,
    so it also reports an interrupted compare, marking its unfinished runs.

    Returns:
        The path of ``report.md``.
    """
    from semgan.report_html import render_html

    out = Path(out)
    blocks = build_document(out)
    title = blocks[0].text if isinstance(blocks[0], Heading) else "SemGAN comparison"
    _write_text_atomic(out / REPORT_MD, render_markdown(blocks))
    _write_text_atomic(out / REPORT_HTML, render_html(blocks, out, title=title))
    return out / REPORT_MD


# ------------------------------------------------------------------------------------------------------ CLI


def _cmd_report(args: argparse.Namespace) -> int:
    md = build_report(args.dir)
    print(f"report: {md}, {md.with_name(REPORT_HTML)}\n  plots: {md.parent / 'plots'}, grids: {md.parent / 'grids'}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` command.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers()``.
    """
    p = subparsers.add_parser(
        "report", help="rebuild the report of a compare folder from its runs (no training)",
        description="Rebuild DIR/report.md and DIR/report.html (tables, plots, sample grids) from the runs of a "
        "`semgan compare` folder, without training.",
    )
    p.add_argument("dir", type=Path, help="a folder written by semgan compare")
    p.set_defaults(func=_cmd_report)
