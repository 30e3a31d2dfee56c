"""SemGAN against the RGB baseline under one configuration: the paper's Section 5 protocol.

The paper compares SemGAN with "a traditional architecture working on RGB images", using "the same parameters,
the same loss, and the same architecture"; only the output layer differs. :func:`compare` trains both from one
:class:`~semgan.config.RunConfig` (only ``model.mode`` differs; ``train.seed`` is the base seed plus the seed
index), evaluates them on the same schedule, and writes the report (:mod:`semgan.report`). The folder::

    DIR/compare.json          format, resolved base config, run list with timed sessions, the reals' own
                              MS-SSIM and SWD floor (two disjoint halves)
    DIR/semgan-s0/ gan-s0/    ordinary run folders (the ``semgan train`` layout), one per mode and seed
    DIR/report.md, report.html, plots/, grids/

Runs already in DIR are resumed (a finished run is a no-op), so rerunning an interrupted compare continues it,
and rerunning it with a larger ``train.steps`` or more seeds extends it.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from semgan import __version__
from semgan.comparison import COMPARE_FILE, FORMAT, MODES, read_compare, write_compare
from semgan.config import Mode, RunConfig, SemGANModelConfig, diff, from_dict, to_dict
from semgan.data import LabelDataset, dataset_from_config
from semgan.devices import resolve_device
from semgan.errors import SemGANError
from semgan.report import build_report
from semgan.report.grids import REAL_GRID, write_real_grid
from semgan.run_dir import RunDir
from semgan.train import train

DEFAULT_METRICS = ("swd", "ms_ssim", "semantic", "structure")
DEFAULT_EVALUATIONS = 10  # evaluations per run when eval.every is left at 0
# Keys that may differ from the saved compare: the mode is per run, and the device does not change what a
# step computes (an interrupted compare may continue on another machine). train.steps may grow, checked apart.
COMPARE_FREE_KEYS = ("model.mode", "train.device", "train.steps")


@dataclass(frozen=True)
class RunSpec:
    """One run of a comparison: a mode and a training seed."""

    mode: Mode
    seed: int

    @property
    def name(self) -> str:
        """The run's folder name inside the compare folder, e.g. ``semgan-s0``."""
        return f"{self.mode}-s{self.seed}"


# ------------------------------------------------------------------------------------------- configuration


def resolve_config(cfg: RunConfig, saved: RunConfig | None = None) -> RunConfig:
    """Fill in what a comparison needs and ``cfg`` leaves open.

    Both models must be scored on the same schedule, so evaluation is always on: empty ``eval.metrics``
    becomes the saved compare's metrics or :data:`DEFAULT_METRICS`; ``eval.every == 0`` becomes the saved
    value or ``train.steps // DEFAULT_EVALUATIONS``. Taking the saved value first keeps a defaulted schedule
    fixed when a later call extends ``train.steps``. ``model.mode`` is normalised to ``"semgan"``.

    Args:
        cfg: the requested base configuration.
        saved: the base configuration recorded in an existing ``compare.json``, if any.

    Returns:
        The validated base configuration.
    """
    from semgan.metrics import METRICS

    ev = cfg.eval
    metrics = ev.metrics or (saved.eval.metrics if saved is not None else ()) or DEFAULT_METRICS
    for name in metrics:
        METRICS.get(name)  # a typo fails before any training
    if "l1" in metrics:
        raise SemGANError("metric 'l1' compares paired images (a pix2pix translation against its photo); a "
                          "generator's samples have no pairs among the reals. Use swd, ms_ssim, fid, kid, "
                          "semantic or structure")
    every = ev.every or (saved.eval.every if saved is not None else 0)
    every = every or max(1, cfg.train.steps // DEFAULT_EVALUATIONS)
    return replace(
        cfg,
        model=replace(cfg.model_as(SemGANModelConfig, "semgan compare"), mode=MODES[0]),
        eval=replace(ev, metrics=tuple(metrics), every=every),
    )


def run_config(base: RunConfig, spec: RunSpec) -> RunConfig:
    """The configuration of one run: ``base`` with its mode and seed."""
    return replace(base, model=replace(base.model_as(SemGANModelConfig), mode=spec.mode),
                   train=replace(base.train, seed=spec.seed))


def check_compatible(saved: RunConfig, new: RunConfig, out: Path) -> None:
    """Refuse to mix runs of different configurations in one compare folder.

    Raises:
        SemGANError: naming every differing key, as ``semgan train --resume`` does; ``train.steps`` may grow
            but not shrink (the runs already hold the later steps).
    """
    changed = diff(saved, new, ignore=COMPARE_FREE_KEYS)
    parts = [f"{k} (saved {a!r}, now {b!r})" for k, (a, b) in changed.items()]
    if new.train.steps < saved.train.steps:
        parts.append(f"train.steps (saved {saved.train.steps}, now {new.train.steps}; it may only grow)")
    if parts:
        raise SemGANError(
            f"{out} holds a compare of a different configuration: {', '.join(parts)}. "
            f"Choose another --out, or repeat the saved configuration (see {out / COMPARE_FILE})"
        )


# ------------------------------------------------------------------------------------------------ protocol


def real_ms_ssim(dataset: LabelDataset, n: int, seed: int) -> dict[str, Any]:
    """MS-SSIM over pairs of real maps: the diversity floor the generators' MS-SSIM is read against.

    The reals are the evaluator's own (:func:`semgan.evaluate.real_subset` with the same ``n`` and ``seed``,
    colourised with the palette), so the value equals the ``ms_ssim_real`` of every evaluation; the metric
    logs of the runs do not keep it.

    Returns:
        ``{"ms_ssim": value, "n": images, "seed": seed}``.
    """
    from semgan.evaluate import real_subset
    from semgan.labels import colorize
    from semgan.metrics.ms_ssim import ms_ssim_pairs

    labels = real_subset(dataset, n, seed).long()  # (N, H, W)
    images = colorize(labels, dataset.palette)  # (N, 3, H, W) uint8
    return {"ms_ssim": ms_ssim_pairs(images), "n": int(labels.shape[0]), "seed": seed}


def real_swd_floor(dataset: LabelDataset, n: int, seed: int) -> dict[str, Any]:
    """SWD between two disjoint halves of the real maps: the floor a generator's SWD is read against.

    A generator that drew fresh maps from the data's own distribution would score about this, not 0. The
    halves hold ``n`` maps each when the data has ``2 n`` (the evaluation's count), else half the data each:
    then the floor is measured on fewer maps than the evaluations and sits somewhat higher than at ``n``.

    Returns:
        ``{"swd": {level: value, ..., "avg": value}, "n": maps per half, "seed": seed}``.
    """
    from semgan.labels import colorize
    from semgan.metrics.swd import swd

    N = len(dataset)
    half = n if n > 0 and 2 * n <= N else N // 2
    if half < 1:
        raise SemGANError(f"the real-vs-real SWD floor needs at least 2 maps; {dataset.name!r} has {N}")
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(seed))
    a, b = (colorize(dataset.labels[idx.sort().values].long(), dataset.palette)  # (half, 3, H, W) uint8
            for idx in (perm[:half], perm[half:2 * half]))
    return {"swd": swd(a, b, generator=torch.Generator().manual_seed(seed)), "n": half, "seed": seed}


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; elsewhere what :mod:`platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: platform's answer stands
    return platform.processor() or platform.machine()


def hardware(device: torch.device) -> str:
    """A one-line description of the device a run trains on, for the report's protocol."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}, torch {torch.__version__})"
    return (f"CPU {cpu_name()}, {os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()} (torch "
            f"{torch.__version__}, {torch.get_num_threads()} threads)")


def _require_matplotlib() -> None:
    # The plots come after hours of training; find out now that they cannot be drawn.
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SemGANError("the comparison report draws its plots with matplotlib: pip install matplotlib") from None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------------- compare


def compare(cfg: RunConfig, out: str | Path, *, seeds: int = 1, progress: bool = True) -> Path:
    """Train SemGAN and the RGB baseline with one configuration, then write the comparison report.

    For each seed index ``i < seeds`` the runs ``DIR/semgan-s<seed>`` and ``DIR/gan-s<seed>`` are trained
    with ``train.seed = cfg.train.seed + i``. Runs already in ``out`` are resumed (a finished one returns at
    once), as are runs of seeds recorded there by an earlier call with more seeds. Each call's training time
    per run is recorded in ``compare.json``.

    Args:
        cfg: the base configuration; ``model.mode`` is ignored, and evaluation defaults are filled in by
            :func:`resolve_config`.
        out: the compare folder (new, empty, or holding a compare of the same configuration).
        seeds: number of seeds per model.
        progress: show progress bars and one line per run on stderr.

    Returns:
        ``out``, holding the runs, ``compare.json``, ``report.md`` and ``report.html``.

    Raises:
        SemGANError: for a folder holding something else or a compare of a different configuration.
        TrainingInterrupted: after SIGINT/SIGTERM, once the interrupted run's checkpoint is written; the same
            call continues the compare.
    """
    out = Path(out)
    if seeds < 1:
        raise SemGANError(f"--seeds must be at least 1, got {seeds}")
    if out.exists() and not out.is_dir():
        raise SemGANError(f"--out {out} is a file; expected a folder for the comparison")
    if RunDir(out).exists():
        raise SemGANError(f"{out} is a training run folder (it holds config.json); give compare a folder of its own")
    doc = read_compare(out) if (out / COMPARE_FILE).is_file() else None
    saved = from_dict(doc["config"]) if doc is not None else None
    base = resolve_config(cfg, saved)
    if saved is not None:
        check_compatible(saved, base, out)
    _require_matplotlib()
    if "fid" in base.eval.metrics:
        from semgan.metrics.fid import inception_weights_path

        inception_weights_path()  # raises with the install command; better now than at the first evaluation

    requested = [RunSpec(mode, base.train.seed + i) for i in range(seeds) for mode in MODES]
    entries: dict[str, dict[str, Any]] = {r["name"]: r for r in (doc or {}).get("runs", [])}
    for spec in requested:
        entries.setdefault(spec.name, {"name": spec.name, "mode": spec.mode, "seed": spec.seed, "sessions": []})
    # Seed-major order: after an interruption, the runs already done form complete SemGAN/GAN pairs.
    ordered = sorted(entries.values(), key=lambda r: (int(r["seed"]), MODES.index(r["mode"])))

    dataset = dataset_from_config(base.data)
    device = resolve_device(base.train.device)
    doc = {
        **(doc or {}),
        "format": FORMAT,
        "semgan_version": __version__,
        "config": to_dict(base),
        "modes": list(MODES),
        "dataset": dataset.describe(),
        "runs": ordered,
    }
    real = dict(doc.get("real") or {})
    if "ms_ssim" in base.eval.metrics and "ms_ssim" not in real:
        real.update(real_ms_ssim(dataset, base.eval.n, base.eval.seed))
    if "swd" in base.eval.metrics and "swd_floor" not in real:
        real["swd_floor"] = real_swd_floor(dataset, base.eval.n, base.eval.seed)
    if real:
        doc["real"] = real
    out.mkdir(parents=True, exist_ok=True)
    write_compare(out, doc)
    (out / "grids").mkdir(exist_ok=True)
    write_real_grid(dataset, out / "grids" / REAL_GRID, seed=base.eval.seed)  # the report sets samples beside it

    for i, entry in enumerate(ordered, 1):
        spec = RunSpec(entry["mode"], int(entry["seed"]))
        run_dir = RunDir(out / spec.name)
        exists = run_dir.exists()
        before = (run_dir.checkpoint_step() or 0) if exists else 0
        if progress:
            state = ("finished, reused" if before >= base.train.steps else f"resuming at step {before}") if exists \
                else "new"
            print(f"compare [{i}/{len(ordered)}] {spec.name} ({state}): to step {base.train.steps}", file=sys.stderr)
        started, t0 = _now(), time.perf_counter()
        try:
            train(run_config(base, spec), run_dir.root, resume=exists, progress=progress, dataset=dataset)
        finally:
            # Also after an interruption: the steps it did took time the report should count.
            _record_session(entry, run_dir, before, started, time.perf_counter() - t0, device)
            write_compare(out, doc)

    build_report(out)
    return out


def _record_session(
    entry: dict[str, Any], run_dir: RunDir, before: int, started: str, wall_s: float, device: torch.device
) -> None:
    """Append a timed session to a run's entry if the run advanced (a finished run's no-op call does not)."""
    try:
        after = run_dir.checkpoint_step()
    except SemGANError:
        after = None  # keep the original exception, if any, as the one the user sees
    if after is None or after <= before:
        return
    entry.setdefault("sessions", []).append({
        "from_step": before,
        "to_step": after,
        "wall_s": round(wall_s, 3),
        "started": started,
        "device": str(device),
        "hardware": hardware(device),
    })

