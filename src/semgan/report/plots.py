"""The report's plots (matplotlib, on the Agg canvas without pyplot): metrics and losses against step."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from semgan.comparison import MODES
from semgan.errors import SemGANError
from semgan.report.document import MISSING, Table
from semgan.report.runs import MODEL_LABEL, SEMANTIC_COLUMNS, Column, RunResult, series

MODEL_COLOR = {"semgan": "tab:blue", "gan": "tab:orange"}
WIDTH_IN, DPI = 8.0, 100  # 800 px: read at their natural size in the report, and still on a laptop screen
PANEL_H_IN = 2.6


def _panels(n: int) -> tuple[Any, list[Any]]:
    """A figure of ``n`` panels, at most three per row, 800 px wide."""
    cols = min(3, n)
    rows = -(-n // cols)
    fig = _matplotlib_figure(figsize=(WIDTH_IN, PANEL_H_IN * rows))
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


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
    fig, axes = _panels(len(keys))
    for ax, key in zip(axes, keys, strict=True):
        _plot_curves(ax, runs, _column_curve(Column(f"SWD {key}", "swd", (key,))), snapped_too=True)
        _finish_axis(ax, f"SWD {key}×{key}" if key != "avg" else "SWD average", "SWD ×10³")
    fig.axes[0].legend(fontsize=8)
    fig.savefig(path, dpi=DPI)
    return True


def plot_metrics(runs: Sequence[RunResult], path: Path, reference: dict[str, float] | None = None) -> bool:
    """FID, MS-SSIM and the semantic headline numbers against training step (whichever were evaluated).

    ``reference`` (column label -> value, e.g. the reals' own MS-SSIM) is drawn as a grey dotted line.
    """
    cols = [c for c in (Column("FID", "fid"), Column("MS-SSIM", "ms_ssim"), *SEMANTIC_COLUMNS)
            if any(series(r, c) for r in runs)]
    if not cols:
        return False
    fig, axes = _panels(len(cols))
    for ax, col in zip(axes, cols, strict=True):
        _plot_curves(ax, runs, _column_curve(col), snapped_too=True)
        if reference and col.label in reference:
            ax.axhline(reference[col.label], color="0.4", linestyle=":", label="real data")
        _finish_axis(ax, col.label)
    for ax in fig.axes:
        if ax.get_legend_handles_labels()[1]:  # the first panel with a line has the legend
            ax.legend(fontsize=8)
            break
    fig.savefig(path, dpi=DPI)
    return True


LOSS_NAMES = {"bce": "BCE", "hinge": "hinge", "fm": "feature matching", "fm_all": "feature matching, every layer",
              "fm_l1": "feature matching, L1", "ns": "non-saturating"}


def _loss_title(part: str, names: set[str]) -> str:
    return f"{part} loss ({' / '.join(LOSS_NAMES.get(n, n) for n in sorted(names))})"


def plot_losses(runs: Sequence[RunResult], path: Path) -> bool:
    """D loss, G loss and D's mean outputs on real and fake batches, per logged step."""
    if not any(r.stats for r in runs):
        return False
    with_stats = [r for r in runs if r.stats]
    fig, panels = _panels(3)
    _plot_curves(panels[0], runs, _stats_curve("loss_D"), snapped_too=False)
    _finish_axis(panels[0], _loss_title("D", {r.losses[0] for r in with_stats}))
    _plot_curves(panels[1], runs, _stats_curve("loss_G"), snapped_too=False)
    _finish_axis(panels[1], _loss_title("G", {r.losses[1] for r in with_stats}))
    _plot_curves(panels[2], runs, _stats_curve("D_real"), snapped_too=False, suffix=" D(real)")
    _plot_curves(panels[2], runs, _stats_curve("D_fake"), snapped_too=False, suffix=" D(fake)", linestyle=":")
    _finish_axis(panels[2], "mean D output (sigmoid)")
    panels[0].legend(fontsize=8)
    panels[2].legend(fontsize=7)
    fig.savefig(path, dpi=DPI)
    return True


def plot_class_shares(table: Table, path: Path) -> None:
    """Grouped bars of the per-class pixel shares (real and each model)."""
    names = [row[0].text for row in table.rows]
    fig = _matplotlib_figure(figsize=(WIDTH_IN, 3.2))
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
    fig.savefig(path, dpi=DPI)

