"""The report's sample grids: each run's latest grid and the grid of its best-SWD checkpoint."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from semgan.evaluate import headline
from semgan.labels import write_rgb_png
from semgan.report.document import Image
from semgan.report.runs import RunResult
from semgan.run_dir import RunDir


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
    folder = RunDir(run.path)
    latest: tuple[Image, str] | None = None
    if folder.grid_path.is_file():
        steps = folder.sample_steps()
        dest = grids / f"{run.name}-latest.png"
        shutil.copyfile(folder.grid_path, dest)
        latest = (Image(f"{grids.name}/{dest.name}", f"{run.name} latest samples"),
                  f"step {steps[-1]}" if steps else "latest")
    best_step = best_swd_step(run)
    if best_step is None:
        return latest, None
    dest = grids / f"{run.name}-best-swd.png"
    image = Image(f"{grids.name}/{dest.name}", f"{run.name} samples at the best-SWD step")
    if folder.has_checkpoint("best-swd"):
        from semgan.sample import grid_image, grid_latents, load_run

        loaded = load_run(folder.checkpoint_path("best-swd"))
        write_rgb_png(dest, grid_image(loaded.G, grid_latents(loaded.cfg), loaded.palette))
        return latest, (image, f"best SWD avg, step {loaded.step}")
    steps = folder.sample_steps()
    if not steps:
        return latest, None
    nearest = min(steps, key=lambda s: (abs(s - best_step), s))
    shutil.copyfile(folder.sample_path(nearest), dest)
    return latest, (image, f"step {nearest}, the sample step nearest the best SWD avg (step {best_step})")

