"""The report's pictures of maps: each run's latest and best-SWD grids, a grid of real maps, the class colours."""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from semgan.data import LabelDataset
from semgan.labels import colorize, make_grid, write_rgb_png
from semgan.metrics import METRICS
from semgan.report.document import Image
from semgan.report.runs import RunResult
from semgan.run_dir import RunDir


def best_swd_step(run: RunResult) -> int | None:
    """The step of the run's lowest average SWD (the one ``checkpoints/best-swd.pt`` holds)."""
    spec = METRICS.get("swd")
    scored = {int(x["step"]): v for x in run.metrics.get("swd", []) if (v := spec.value(x)) is not None
              if math.isfinite(v)}
    if not scored:
        return None
    best = spec.best(scored.values())
    return min(step for step, v in scored.items() if v == best)  # the first step that reached it


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
        from semgan.model_files import load_generator
        from semgan.sample import grid_image, grid_latents

        loaded = load_generator(folder.checkpoint_path("best-swd"))
        write_rgb_png(dest, grid_image(loaded.G, grid_latents(loaded.cfg), loaded.palette))
        return latest, (image, f"best SWD avg, step {loaded.step}")
    steps = folder.sample_steps()
    if not steps:
        return latest, None
    nearest = min(steps, key=lambda s: (abs(s - best_step), s))
    shutil.copyfile(folder.sample_path(nearest), dest)
    return latest, (image, f"step {nearest}, the sample step nearest the best SWD avg (step {best_step})")



REAL_GRID = "real.png"  # in the compare folder's grids/, written by compare (report remakes it only if missing)
LEGEND = "legend.png"


def write_real_grid(dataset: LabelDataset, path: Path, *, seed: int, n: int = 16) -> None:
    """A 4x4 grid of real maps (the evaluation's seeded subset of ``n``), in the sample grids' layout."""
    from semgan.evaluate import real_subset

    images = colorize(real_subset(dataset, n, seed).long(), dataset.palette)  # (n, 3, H, W) uint8
    write_rgb_png(path, make_grid(images, nrow=4))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 scales its bundled font
    except TypeError:
        return ImageFont.load_default()


def write_legend(class_names: Sequence[str], palette: Sequence[Sequence[int]], path: Path, *,
                 width: int = 800) -> None:
    """The class colours as a PNG: a swatch and the name per class, in reading order, wrapped at ``width`` px.

    A picture rather than HTML so that report.md and report.html show the same legend.
    """
    font, sw, gap, line = _font(15), 18, 8, 26
    draw = ImageDraw.Draw(PILImage.new("RGB", (1, 1)))
    cells = [(f"{i} {name}", int(draw.textlength(f"{i} {name}", font=font))) for i, name in enumerate(class_names)]
    cell_w = sw + gap + max(w for _, w in cells) + 2 * gap  # one column width: the names line up
    per_row = max(1, (width - gap) // cell_w)
    rows = math.ceil(len(cells) / per_row)
    img = PILImage.new("RGB", (min(width, gap + per_row * cell_w), gap + rows * line), "white")
    draw = ImageDraw.Draw(img)
    for i, ((text, _), color) in enumerate(zip(cells, palette, strict=True)):
        r, c = divmod(i, per_row)
        x, y = gap + c * cell_w, gap + r * line
        draw.rectangle((x, y, x + sw, y + sw), fill=tuple(int(v) for v in color), outline=(60, 60, 60))
        if isinstance(font, ImageFont.FreeTypeFont):
            draw.text((x + sw + gap, y + sw // 2), text, fill=(20, 20, 20), font=font, anchor="lm")
        else:  # old Pillow's bitmap font takes no anchor
            draw.text((x + sw + gap, y + 3), text, fill=(20, 20, 20), font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
