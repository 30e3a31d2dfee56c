"""Do the maps help a segmenter? The segmentation version of the Classification Accuracy Score (Ravuri & Vinyals).

On a fixed split of real (map, photo) pairs (CMP facades' seeded ``train``/``val`` split), the generators (SemGAN
and its RGB baseline) and the pix2pix translator train on the ``train`` split only; the ``val`` split is never
seen by any of them and is the one test set. Then a segmenter (``segmenter-cpu``) trains, per seed, on

- ``real``: all real training pairs;  ``real25``: 25 % of them (by name);
- ``real25+semgan`` / ``real25+gan``: 25 % real + N dreamed pairs from SemGAN / from the baseline (its snapped maps);
- ``semgan`` / ``gan``: the dreamed pairs alone (train on synthetic, test on real);
- ``real25+translated``: 25 % real + the translator's photos of the real training maps (the translator's part,
  without the generators');
- any ``real25+X@S`` (e.g. ``real25+semgan@0.5``, not in the default set): the same pairs, the extra ones as the
  share S of every batch instead of sampled evenly with the real ones (``model.extra_share``);

and the table gives each condition's test mIoU (mean ± std over seeds) beside the generators' and the
translator's own scores. Every step is an ordinary resumable run folder or dataset under ``--out``; rerunning
the command continues where it stopped::

    python benchmarks/downstream.py --data-root ../shared/data/cmp_facade_base --out runs/downstream --seeds 3

``--sheet PATH`` draws each condition's predictions on the first test photos (one row per condition).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from semgan.compare import cpu_name
from semgan.config import DataConfig
from semgan.data import pairs_from_config
from semgan.dream import staged
from semgan.labels import colorize, make_grid, write_label_png, write_rgb_png
from semgan.run_dir import RunDir

CONDITIONS = ("real", "real25", "real25+semgan", "real25+gan", "semgan", "gan", "real25+translated")


def semgan_cli(*args: str) -> None:
    cmd = [sys.executable, "-m", "semgan", *args, "--no-progress"] if args[0] != "dream" else \
        [sys.executable, "-m", "semgan", *args]
    print("+ semgan " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def trained(folder: Path, steps: int) -> bool:
    return (RunDir(folder).checkpoint_step() or 0) >= steps


def train_run(out: Path, family_cmd: list[str], preset: str, steps: int, sets: list[str],
              data_root: str | None) -> Path:
    """Train (or resume, or reuse) one run folder (``data_root`` None: the data are named in ``sets``)."""
    if not trained(out, steps):
        args = [*family_cmd, "--preset", preset, "--out", str(out), "--steps", str(steps)]
        if data_root is not None:
            args += ["--data-root", data_root]
        for s in sets:
            args += ["--set", s]
        if RunDir(out).exists():
            args.append("--resume")
        semgan_cli(*args)
    return out


def translated_real(tr_run: Path, data_root: str, size: int, out: Path) -> Path:
    """The translator's photos of every real training map, as a paired folder (maps/, photos/)."""
    from semgan.model_files import load_translator

    if (out / "maps" / "classes.json").is_file():
        return out
    real = pairs_from_config(DataConfig(name="facades", root=data_root, size=size, split="train"))
    tr = load_translator(tr_run)
    photos = tr(real.labels.long())
    with staged(out) as tmp:
        (tmp / "maps").mkdir()
        (tmp / "photos").mkdir()
        for i in range(len(real)):
            write_label_png(tmp / "maps" / f"{i:06d}.png", real.labels[i], real.palette)
            write_rgb_png(tmp / "photos" / f"{i:06d}.png", photos[i])
        (tmp / "maps" / "classes.json").write_text(json.dumps({"names": list(real.class_names),
                                                               "colors": real.palette.tolist()}))
    return out


def condition_sets(name: str, out: Path, data_root: str) -> list[str]:
    """The segmenter's overrides for one condition (the test set is always facades' val split); a condition with
    ``@S`` (``real25+semgan@0.5``) gives the extra pairs that share of every batch (``model.extra_share``)."""
    name, _, share = name.partition("@")
    test = ["model.test_name=facades", f"model.test_root={data_root}", "model.test_split=val",
            "model.test_photos="]
    if name in ("semgan", "gan"):  # the dreamed pairs alone
        d = out / f"dreamed-{name}"
        return [*test, "data.name=folder", f"data.root={d / 'maps'}", f"data.photos={d / 'photos'}", "data.split="]
    sets = [*test, f"data.root={data_root}"]
    if name != "real":
        sets.append("model.train_share=0.25")
    extra = {"real25+semgan": "dreamed-semgan", "real25+gan": "dreamed-gan", "real25+translated": "translated-real"}
    if name in extra:
        d = out / extra[name]
        sets += [f"model.extra_maps={d / 'maps'}", f"model.extra_photos={d / 'photos'}"]
        if share:
            sets.append(f"model.extra_share={share}")
    return sets


def final(run: Path, metric: str, key: str | None = None) -> float:
    lines = RunDir(run).read_metric(metric)
    return float(lines[-1][key or metric]) if lines else float("nan")


def cell(values: list[float], fmt: str = ".3f") -> str:
    values = [v for v in values if v == v]
    if not values:
        return "—"
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(statistics.fmean(values), fmt)} ± {format(statistics.stdev(values), fmt)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="the CMP facade folder (holding base/)")
    parser.add_argument("--out", type=Path, default=Path("runs/downstream"))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--dreamed", type=int, default=1000, help="dreamed pairs per generator")
    parser.add_argument("--gen-steps", type=int, default=1500, help="steps of each generator (facades-cpu)")
    parser.add_argument("--translator-steps", type=int, default=7000)
    parser.add_argument("--segmenter-steps", type=int, default=2000)
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--gen-set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for both generators (e.g. train.guard_rollbacks=0 for a smoke run)")
    parser.add_argument("--sheet", type=Path)
    args = parser.parse_args()
    out, root, size = args.out, str(Path(args.data_root).resolve()), args.size
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # 1. the generators and the translator, on the train split only
    split = ["data.split=train", f"data.size={size}"]
    gens = {mode: train_run(out / f"gen-{mode}", ["train"], "facades-cpu", args.gen_steps,
                            [*split, f"model.mode={mode}", *args.gen_set], root) for mode in ("semgan", "gan")}
    tr = train_run(out / "translator", ["pix2pix", "train"], "pix2pix-facades-cpu", args.translator_steps, split, root)
    # 2. the dreamed sets and the translated real maps
    for mode, gen in gens.items():
        d = out / f"dreamed-{mode}"
        have = json.loads((d / "dream.json").read_text()).get("n", 0) if (d / "dream.json").is_file() else 0
        if have < args.dreamed or len(list((d / "photos").glob("*.png"))) < args.dreamed:
            semgan_cli("dream", "--generator", str(gen), "--translator", str(tr), "--n", str(args.dreamed),
                       "--dataset", str(d), "--no-progress")
    translated_real(tr, root, size, out / "translated-real")
    # 3. the segmenters
    conditions = args.conditions.split(",")
    runs: dict[str, list[Path]] = {}
    for name in conditions:
        for seed in range(args.seeds):
            run = out / "seg" / name.replace("+", "-").replace("@", "-x") / f"s{seed}"
            sets = [*condition_sets(name, out, root), f"train.seed={seed}", f"data.size={size}"]
            train_run(run, ["segmenter", "train"], "segmenter-cpu", args.segmenter_steps, sets,
                      None if name in ("semgan", "gan") else root)
            runs.setdefault(name, []).append(run)
    # 4. the table
    print(f"\nCMP facades at {size} px, test = the val split; {args.seeds} seeds; {args.dreamed} dreamed pairs per "
          f"generator; machine {cpu_name()}, {torch.backends.cpu.get_cpu_capability()}; "
          f"{(time.perf_counter() - t0) / 60:.1f} min this session")
    print("\n| condition | test mIoU | test pixel accuracy | per seed (mIoU) |\n|---|---:|---:|---|")
    for name, folders in runs.items():
        mious = [final(r, "miou") for r in folders]
        print(f"| {name} | {cell(mious)} | {cell([final(r, 'pixel_acc') for r in folders])} | "
              f"{', '.join(f'{m:.3f}' for m in mious)} |")
    print("\n| model | score |\n|---|---|")
    for mode, gen in gens.items():
        swd = RunDir(gen).read_metric("swd")
        snapped = swd[-1].get("snapped", {}).get("avg") if swd else None
        print(f"| generator {mode} | SWD avg {swd[-1]['swd']['avg']:.1f}" + (f" (snapped {snapped:.1f})" if snapped
                                                                           else "") + " |" if swd else "| — |")
    print(f"| translator | held-out L1 {final(tr, 'l1'):.4f}, FID {final(tr, 'fid'):.1f} |")
    if args.sheet:
        sheet(runs, root, size, args.sheet)


def sheet(runs: dict[str, list[Path]], root: str, size: int, path: Path, n: int = 8) -> None:
    """Row 1: test photos; row 2: their true maps; then each condition's predictions (its seed 0)."""
    from semgan.model_files import load_model

    test = pairs_from_config(DataConfig(name="facades", root=root, size=size, split="val"))
    assert test.photos is not None
    rows = [test.photos[:n], colorize(test.labels[:n].long(), test.palette)]
    for folders in runs.values():
        seg = load_model(folders[0])
        rows.append(colorize(seg(test.photos[:n]), test.palette))
    write_rgb_png(path, make_grid(torch.cat(rows), nrow=n))
    print(f"sheet: {path} (rows: test photos, true maps, then {', '.join(runs)})")


if __name__ == "__main__":
    main()
