"""Does a speed switch keep the quality? Train a preset under several variants and seeds, compare SWD.

Each (variant, seed) is an ordinary run folder under ``--out`` (rerunning the command resumes or reuses
finished runs); the table gives, per variant, the SWD average (x1e3) at the last evaluation and the best during
training, as mean +- sample std over seeds, and the wall time from ``stats.jsonl``. A switch keeps the
quality when its mean lies within the seed-to-seed spread of the reference variant (the first).

    python benchmarks/recipe_quality.py --preset shapes-cpu --seeds 3 --variants fp32,cl+hash --out runs/quality
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from train_speed import variant_overrides  # noqa: E402

from semgan.config import apply_overrides, get_preset  # noqa: E402
from semgan.metrics import headline  # noqa: E402
from semgan.run_dir import RunDir  # noqa: E402
from semgan.train import train  # noqa: E402


def summary(values: list[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="shapes-cpu")
    parser.add_argument("--variants", default="fp32,cl+hash")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/quality"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    base = apply_overrides(get_preset(args.preset), args.set)
    rows = []
    for variant in args.variants.split(","):
        finals, bests, walls = [], [], []
        for seed in range(args.seeds):
            cfg = apply_overrides(base, {**variant_overrides(variant), "train.seed": base.train.seed + seed})
            run = RunDir(args.out / f"{args.preset}-{variant}-s{seed}")
            train(cfg, run.root, resume=run.exists(), progress=not args.no_progress)
            swd = [v for r in run.read_metric("swd") if (v := headline(r, "swd")) is not None]
            finals.append(swd[-1])
            bests.append(min(swd))
            stats, prev, wall = run.read_stats(), 0, 0.0
            for r in stats:
                wall += (r["step"] - prev) / r["steps_per_s"]
                prev = r["step"]
            walls.append(wall)
            print(f"{variant} seed {seed}: SWD avg final {swd[-1]:.1f}, best {min(swd):.1f}, "
                  f"wall {wall / 60:.1f} min", flush=True)
        rows.append((variant, summary(finals), summary(bests), summary([w / 60 for w in walls])))
    print(f"\n{args.preset}, {args.seeds} seeds: SWD avg x1e3 (mean ± std over seeds); wall minutes from stats.jsonl "
          "(training, grids and evaluations)")
    print("| variant | final SWD avg | best SWD avg | wall min |\n|---|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
