"""The report's tables and prose: metric tables in the paper's format, class shares, the protocol."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from semgan.comparison import MODES
from semgan.config import SemGANModelConfig, from_dict
from semgan.report.document import MISSING, Block, Bullets, Cell, Paragraph, Table
from semgan.report.runs import MODEL_LABEL, PAPER_ROWS, SNAPPED_ROW, Column, RunResult, run_value, series


def _aggregate(values: list[float], col: Column, agg: str) -> tuple[str, float | None]:
    """Cell text and the number it is ranked by: ``mean`` (± sample std over seeds) or ``best`` seed."""
    if not values:
        return MISSING, None
    if not col.rank:
        agg = "mean"  # a value read against a reference (raw MS-SSIM) has no "best seed"
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
            if not row.snapped and col.rank:
                ranked[col.label].append(rank)
        rows.append(tuple(cells))
    # Bold the better of SemGAN and GAN per column (the paper's rows; the snapped baseline is extra).
    for j, col in enumerate(cols, 1):
        if not col.rank:
            continue
        a, b = ranked[col.label]
        if a is None or b is None or a == b:
            continue
        winner = 0 if col.better([a, b]) == a else 1
        rows[winner] = tuple(Cell(c.text, bold=(k == j) or c.bold) for k, c in enumerate(rows[winner]))
    if reference:
        rows.append((Cell("Real data"),
                     *(Cell(c.format(reference[c.label]) if c.label in reference else MISSING) for c in cols)))
    return Table(("Model", *(c.label for c in cols)), tuple(rows), caption)


def _last_per_class(runs: Sequence[RunResult], metric: str, real_key: str, fake_key: str
                    ) -> tuple[list[float] | None, dict[str, list[list[float]]]]:
    """A per-class list of ``metric`` at each run's last evaluation: the reals' (the same in every run) and, per
    mode, one list per run."""
    real: list[float] | None = None
    fake: dict[str, list[list[float]]] = {m: [] for m in MODES}
    for r in runs:
        lines = r.metrics.get(metric, [])
        if not lines or not isinstance(lines[-1].get(metric), dict):
            continue
        values = lines[-1][metric]
        real = real or list(values[real_key])
        fake[r.mode].append(list(values[fake_key]))
    return real, fake


def class_share_table(runs: Sequence[RunResult], class_names: Sequence[str]) -> Table | None:
    """Per-class pixel shares of the reals and of each model's samples at its last evaluation."""
    real, fake = _last_per_class(runs, "semantic", "class_share_real", "class_share_fake")
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


def class_presence_table(runs: Sequence[RunResult], class_names: Sequence[str]) -> Table | None:
    """Per class, the share of maps that contain it at all: reals, and each model's samples at its last
    evaluation (mean over seeds, the worst seed in brackets: a class one seed never draws shows there)."""
    real, fake = _last_per_class(runs, "structure", "presence_real", "presence")
    if real is None:
        return None
    rows = []
    for k, name in enumerate(class_names):
        cells = [Cell(name), Cell(f"{100 * real[k]:.1f}%")]
        for m in MODES:
            shares = [p[k] for p in fake[m]]
            text = MISSING
            if shares:
                text = f"{100 * statistics.fmean(shares):.1f}%" + (f" ({100 * min(shares):.1f}%)"
                                                                   if len(shares) > 1 else "")
            cells.append(Cell(text))
        rows.append(tuple(cells))
    return Table(("class", "real", *(MODEL_LABEL[m] for m in MODES)), tuple(rows), (
        "Share of maps containing each class at the end of training (mean over seeds; the worst seed in "
        "brackets). The baseline's classes are its output snapped to the nearest palette colour."))


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
    m = cfg.model_as(SemGANModelConfig, "the comparison")
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
        f"(below): {cfg.train.steps} steps, batch {cfg.train.batch}, lr {cfg.train.lr:g}, ks {m.ks}, "
        f"ld {m.ld}, G loss `{m.g_loss}`; seeds {', '.join(map(str, seeds))}.",
        f"**Evaluation**: every {cfg.eval.every} steps and at the last step"
        + (f" (steps {', '.join(map(str, evals))})" if 0 < len(evals) <= 12 else "")
        + f"; {per_set} generated images against as many real maps per set{whole}; metric seed {cfg.eval.seed}. "
        "Images are colourised label maps (argmax then palette for SemGAN and the reals); the GAN is scored on "
        "its raw RGB output and, in the extra row, after snapping each pixel to the nearest palette colour.",
        "**Metrics**: SWD ×10³ per Laplacian-pyramid level (ProGAN's protocol; named by level resolution; the "
        "Real data row is the SWD between two disjoint halves of the reals, the floor), MS-SSIM over consecutive "
        "pairs of generated images (diversity, judged by its gap to the reals' own value), FID on Inception pool "
        "features, label-map checks (label validity = share of pixels within 10 RGB units of a palette colour; "
        "L1 and Jensen-Shannon distance of the class pixel shares; FSD = Fréchet distance of per-image class "
        "proportions) and structure (connected components per class against the reals'). **Lower is better** "
        "for every metric except label validity, one per class and rarest class.",
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

