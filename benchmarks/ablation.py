"""Recipe ablation: train a preset under switch combinations, both modes, several seeds; one summary table.

Each (variant, mode, seed) is an ordinary run folder ``OUT/<variant>/<mode>-s<seed>`` (rerunning the command
resumes unfinished runs and reuses finished ones), trained for the same number of steps: both modes cost the
same per step (the output head differs), so equal steps are equal CPU budget. The table gives per variant and
mode the mean ± std over seeds of the numbers issue 10 asks for, the reals' own values and the real-vs-real
SWD floor beside them, and the wall time of each run as measured here (evaluation and grids included)::

    python benchmarks/ablation.py --preset shapes-cpu --variants base,ema,aug --modes semgan,gan --seeds 3 \\
        --out runs/ablation-shapes

A variant is switches joined by ``+`` (``ema+aug``); ``base`` is the preset as it is. ``--set`` applies to every
run (e.g. ``--set train.channels_last=true --set model.d_dropout_rng=hash`` for speed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from train_speed import variant_overrides  # noqa: E402

from semgan.compare import real_swd_floor  # noqa: E402
from semgan.config import apply_overrides, get_preset  # noqa: E402
from semgan.data import dataset_from_config  # noqa: E402
from semgan.run_dir import RunDir  # noqa: E402
from semgan.train import train  # noqa: E402

# One change each; values are the literature's defaults scaled to CPU-sized runs (batch 32, a few thousand steps).
SWITCHES: dict[str, dict[str, object]] = {
    "base": {},
    "ema": {"train.ema_half_life": 5000.0},  # ~160 steps of batch 32; StyleGAN2's 10k images at 25k+ steps
    "aug": {"model.augment": "translation,cutout", "model.augment_p": 0.2},  # DiffAugment, fixed p
    "ada": {"model.augment": "flip,translation,cutout", "model.ada_target": 0.6, "model.ada_images": 50_000},
    "r1": {"model.r1_gamma": 1.0, "model.r1_every": 4},
    "floor": {"model.d_noise_floor": 0.1},  # never lets D separate one-hot from softmax by values alone
    "st": {"model.fake_input": "st-argmax"},
    "sharpen": {"model.fake_input": "sharpen", "model.fake_temperature": 0.5},
    "gumbel": {"model.fake_input": "st-gumbel"},  # a one-hot sample: speckle unless G saturates its softmax
    "blur": {"model.d_blur": 1.0},  # both inputs smoothed alike: soft one-hot edges, isolated pixels faint
    "hinge": {"model.g_loss": "hinge", "model.d_loss": "hinge"},
    "ns": {"model.g_loss": "ns"},
    "fmns": {"model.g_ns_weight": 0.003},  # fm plus a per-map term that grows as D learns
    "deep": {"model.init_res": 2},  # one more block in G and D at equal width (cheap: at 2x2 and 4x4)
    "dwide": {"model.d_channels": 32, "model.d_max_channels": 256},  # D twice as wide
    "mbstd": {"model.d_mbstd": 4},
    "spectral": {"model.d_norm": "spectral"},
    "nonoise": {"model.d_noise": 0.0},
    "prior": {"model.class_prior": 1.0},  # SemGAN only: a floor under every class's share and presence rate
    "prior0.1": {"model.class_prior": 0.1},
    "prior0.01": {"model.class_prior": 0.01},
    "decay": {"train.lr_decay": 0.3},  # both learning rates down linearly over the last 30 % of the steps
    "nodecay": {"train.lr_decay": 0.0},  # the CPU presets without it (before issue 23 ended)
    "guard": {"train.guard_rollbacks": 3},  # roll back to the last healthy checkpoint when a class is lost
    "noprior": {"model.class_prior": 0.0},  # the CPU presets without their class prior ...
    "noguard": {"train.guard_rollbacks": 0},  # ... or their collapse guard (both: the presets before issue 23)
}

FINAL_KEYS = {  # label -> (metric, path in its log line); "final" = the last evaluation
    "MS-SSIM gap": ("ms_ssim", ("ms_ssim_gap",)),
    "rarest class": ("structure", ("structure", "presence_min")),
    "one/class": ("structure", ("structure", "one_per_class")),
    "fragments": ("structure", ("structure", "fragments")),
    "count TV": ("structure", ("structure", "count_tv_mean")),
}
FINAL_FILE = "fid-final.json"  # ``semgan evaluate RUN --metrics fid,kid --out RUN/fid-final.json`` (final weights)


def overrides(variant: str) -> dict[str, object]:
    return variant_overrides(variant, SWITCHES)


def _get(line: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = line
    for k in path:
        if not isinstance(value, dict) or k not in value:
            return None
        value = value[k]
    return float(value) if isinstance(value, int | float) else None


def run_numbers(run: RunDir, snapped: bool = False) -> dict[str, float]:
    """What the table shows of one finished run; ``snapped``: the baseline's palette-snapped view (SWD, FID)."""
    out: dict[str, float] = {}
    # A metric line holds the snapped view's headline beside its own: {"swd": {...}, "snapped": {...}}.
    lines = [{"swd": line.get("snapped")} if snapped else line for line in run.read_metric("swd")]
    swd = [x for line in lines if isinstance(x := line.get("swd"), dict)]
    if swd:
        out["SWD best"], out["SWD final"] = min(x["avg"] for x in swd), swd[-1]["avg"]
        out |= {f"SWD {level}": v for level, v in swd[-1].items() if level != "avg"}
    if not snapped:
        for label, (metric, path) in FINAL_KEYS.items():
            if (metric_lines := run.read_metric(metric)) and (v := _get(metric_lines[-1], path)) is not None:
                out[label] = v
    if (final := run.root / FINAL_FILE).is_file():
        scores = json.loads(final.read_text())
        scores = scores.get("snapped", {}) if snapped else scores
        out |= {label: float(scores[key]) for label, key in (("FID", "fid"), ("KID x1e3", "kid")) if key in scores}
        if "KID x1e3" in out:
            out["KID x1e3"] *= 1e3
    return out


def real_numbers(run: RunDir) -> dict[str, float]:
    """The reals' own values, from any run's last evaluation."""
    out: dict[str, float] = {}
    if (lines := run.read_metric("ms_ssim")) and (v := _get(lines[-1], ("ms_ssim_real",))) is not None:
        out["MS-SSIM"] = v
    if lines := run.read_metric("structure"):
        for label, key in (("rarest class", "presence_min_real"), ("one/class", "one_per_class_real"),
                           ("fragments", "fragments_real")):
            if (v := _get(lines[-1], ("structure", key))) is not None:
                out[label] = v
    return out


def cell(values: list[float], fmt: str) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(statistics.fmean(values), fmt)} ± {format(statistics.stdev(values), fmt)}"


def write_sheet(rows: dict[str, list[Path]], columns: list[str], path: Path, size: int = 0) -> None:
    """One PNG of sample grids: a labelled band per row of ``rows`` (label -> grid PNGs), a column per entry of
    ``columns``; rows with no grid at all (never trained) are left out, missing grids stay blank."""
    from PIL import Image, ImageDraw

    rows = {label: row for label, row in rows.items() if any(c.is_file() for c in row)}
    size = size or max((Image.open(c).size[0] for row in rows.values() for c in row if c.is_file()), default=256)
    pad, head = 8, 18
    sheet = Image.new("RGB", (len(columns) * (size + pad) + pad, len(rows) * (size + pad + head) + pad + head),
                      "white")
    draw = ImageDraw.Draw(sheet)
    for j, column in enumerate(columns):
        draw.text((pad + j * (size + pad), 3), column, fill="black")
    for i, (label, row) in enumerate(rows.items()):
        y = head + i * (size + pad + head)
        draw.text((pad, y + 3), label, fill="black")
        for j, grid in enumerate(row):
            if grid.is_file():
                sheet.paste(Image.open(grid).convert("RGB").resize((size, size), Image.Resampling.NEAREST),
                            (pad + j * (size + pad), y + head))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="shapes-cpu")
    parser.add_argument("--variants", default="base,ema,aug")
    parser.add_argument("--modes", default="semgan,gan")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--data-root", default="")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--summary-only", action="store_true", help="train nothing; summarise the runs in --out")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--sheet", type=Path, help="also write the final grid of every run here, a row per "
                        "(variant, mode) and a column per seed (PNG)")
    args = parser.parse_args()
    base = apply_overrides(get_preset(args.preset), args.set)
    if args.data_root:
        base = apply_overrides(base, {"data.root": args.data_root})
    dataset = dataset_from_config(base.data)
    variants, modes = args.variants.split(","), args.modes.split(",")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    args.out.mkdir(parents=True, exist_ok=True)
    walls_file = args.out / "walls.json"
    walls: dict[str, float] = json.loads(walls_file.read_text()) if walls_file.is_file() else {}

    for variant in variants:
        for seed in seeds:
            for mode in modes:
                name = f"{variant}/{mode}-s{seed}"
                run = RunDir(args.out / variant / f"{mode}-s{seed}")
                if args.summary_only or (run.exists() and (run.checkpoint_step() or 0) >= base.train.steps):
                    continue
                cfg = apply_overrides(base, {**overrides(variant), "model.mode": mode,
                                             "train.seed": base.train.seed + seed})
                t0 = time.perf_counter()
                train(cfg, run.root, resume=run.exists(), progress=not args.no_progress, dataset=dataset)
                # Re-read before writing: another ablation may share --out (one process per core).
                walls = json.loads(walls_file.read_text()) if walls_file.is_file() else {}
                walls[name] = walls.get(name, 0.0) + time.perf_counter() - t0
                walls_file.write_text(json.dumps(walls, indent=1))
                print(f"{name}: {run_numbers(run)}", file=sys.stderr, flush=True)

    floor = real_swd_floor(dataset, base.eval.n, base.eval.seed)
    columns = ["SWD best", "SWD final", *[f"SWD {k}" for k in sorted((k for k in floor["swd"] if k != "avg"), key=int)],
               *FINAL_KEYS, "FID", "KID x1e3", "wall min"]
    real: dict[str, float] = {}
    rows = []
    walls = json.loads(walls_file.read_text()) if walls_file.is_file() else {}
    fmt = {"SWD": ".1f", "FID": ".1f", "KID": ".1f", "wall min": ".1f"}
    for variant in variants:
        for mode in modes:
            for snapped in (False, True) if mode == "gan" else (False,):
                per_seed = []
                for seed in seeds:
                    run = RunDir(args.out / variant / f"{mode}-s{seed}")
                    if run.exists() and run.read_metric("swd"):
                        numbers = run_numbers(run, snapped)
                        if f"{variant}/{mode}-s{seed}" in walls and not snapped:
                            numbers["wall min"] = walls[f"{variant}/{mode}-s{seed}"] / 60
                        per_seed.append(numbers)
                        real = real or real_numbers(run)
                if not per_seed:  # a (variant, mode) never trained: st has no RGB baseline
                    continue
                rows.append([variant, f"{mode}, snapped" if snapped else mode, str(len(per_seed)), *(
                    cell([n[c] for n in per_seed if c in n], next((f for p, f in fmt.items() if c.startswith(p)),
                                                                  ".3f"))
                    for c in columns)])
    floor_row = ["real data", "", "", format(floor["swd"]["avg"], ".1f"), format(floor["swd"]["avg"], ".1f"),
                 *(format(floor["swd"][c.split()[1]], ".1f") for c in columns if c.startswith("SWD ") and
                   c.split()[1] in floor["swd"]),
                 *(format(real[c], ".3f") if c in real else ("0" if c in ("MS-SSIM gap", "count TV") else "—")
                   for c in FINAL_KEYS), "—", "—", ""]
    print(f"\n{args.preset}, seeds {seeds.start}-{seeds.stop - 1}, {base.train.steps} steps; SWD x1e3 (best = lowest "
          f"avg during training, the rest at the last evaluation); FID and KID of the final weights ({FINAL_FILE}); "
          f"real data: SWD between two disjoint halves of {floor['n']} maps (the floor), the reals' own structure "
          f"values; mean ± std over seeds")
    print("| variant | mode | seeds | " + " | ".join(columns) + " |")
    print("|---|---|---:|" + "---:|" * len(columns))
    for row in [*rows, floor_row]:
        print("| " + " | ".join(row) + " |")
    if args.sheet:
        write_sheet({f"{v} {m}": [RunDir(args.out / v / f"{m}-s{s}").grid_path for s in seeds]
                     for v in variants for m in modes}, [f"seed {s}" for s in seeds], args.sheet)
        print(f"final grids of every seed: {args.sheet}")
    for variant in variants:
        print(f"{variant}: " + " ".join(f"--set {k}={v}" for k, v in overrides(variant).items()))


if __name__ == "__main__":
    main()
