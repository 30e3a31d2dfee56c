"""Robustness: does a recipe draw every class on every seed and thread count? Collapse rate and spread.

Each (variant, mode, threads, seed) is an ordinary run folder ``OUT/<variant>/<mode>-t<threads>-s<seed>``,
trained by ``python -m semgan train`` in a process of its own with ``OMP_NUM_THREADS=<threads>`` (the thread
count changes the float reduction order, so a GAN run on 1 thread and on 2 are, in effect, two seeds).
Rerunning the command resumes unfinished runs and reuses finished ones; ``--cores`` processes' threads run at
once (two 1-thread runs, or one 2-thread run, on 2 cores). A run **loses a class** when a class present in at
least 10 % of the real maps is drawn in fewer than 2 % of its final samples, or when its final SWD avg is over
3x the real-vs-real floor::

    python benchmarks/robustness.py --preset shapes-cpu --variants base,prior --modes semgan,gan --seeds 10 \\
        --threads 1,2 --out runs/robust-shapes

The table gives, per (variant, mode, threads) and for both thread counts together, the collapse count (and the
seeds), mean ± std of the final and best SWD avg, the worst final/best ratio, the structure metrics and the
wall time, with the machine (CPU, ``get_cpu_capability``) in every row. ``--runs`` also lists every run.
Variants are ``benchmarks/ablation.py``'s switches joined by ``+``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))

from ablation import overrides, write_sheet  # noqa: E402

from semgan.compare import cpu_name, real_swd_floor  # noqa: E402
from semgan.config import apply_overrides, get_preset  # noqa: E402
from semgan.data import dataset_from_config  # noqa: E402
from semgan.metrics.structure import lost_classes  # noqa: E402
from semgan.run_dir import RunDir  # noqa: E402

SWD_COLLAPSE = 3.0  # a final SWD avg over this many times the real-vs-real floor is a collapse


def machine() -> dict[str, Any]:
    """What a number measured here depends on: the CPU, its vector unit as torch uses it, torch's version."""
    flags: set[str] = set()
    with contextlib.suppress(OSError, StopIteration):
        flags = set(next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("flags")).split(":", 1)[1].split())
    return {"cpu": cpu_name(), "capability": torch.backends.cpu.get_cpu_capability(),
            "avx512_bf16": "avx512_bf16" in flags, "amx": "amx_bf16" in flags, "cores": os.cpu_count(),
            "torch": torch.__version__}


def short_machine(m: dict[str, Any]) -> str:
    cpu = m.get("cpu", "?").replace("(R)", "").replace("Processor", "").replace("  ", " ").strip()
    return f"{cpu}, {m.get('capability', '?')}{' +AMX' if m.get('amx') else ''}"


@dataclass(frozen=True)
class Job:
    variant: str
    mode: str
    threads: int
    seed: int

    def folder(self, out: Path) -> Path:
        return out / self.variant / f"{self.mode}-t{self.threads}-s{self.seed}"

    def record(self, out: Path) -> Path:  # beside the run folder: wall time and machine of each session
        return self.folder(out).with_suffix(".json")


def train_command(args: argparse.Namespace, job: Job, steps: int) -> list[str]:
    sets = [*args.set, *(f"{k}={v}" for k, v in overrides(job.variant).items()), f"model.mode={job.mode}",
            f"train.seed={job.seed}"]
    cmd = [sys.executable, "-m", "semgan", "train", "--preset", args.preset, "--out", str(job.folder(args.out)),
           "--steps", str(steps), "--no-progress"]
    if args.data_root:
        cmd += ["--data-root", args.data_root]
    for s in sets:
        cmd += ["--set", s]
    if RunDir(job.folder(args.out)).exists():
        cmd.append("--resume")
    return cmd


def run_jobs(args: argparse.Namespace, jobs: list[Job], steps: int) -> None:
    """Train the unfinished jobs, as many at once as their threads fit in ``--cores``; record wall and machine."""
    todo = [j for j in jobs if (RunDir(j.folder(args.out)).checkpoint_step() or 0) < steps]
    running: list[tuple[Job, subprocess.Popen[bytes], float, float]] = []
    failed: list[str] = []
    while todo or running:
        busy = sum(j.threads for j, *_ in running)
        startable = [j for j in todo if busy + j.threads <= args.cores or not running]
        if startable:
            job = startable[0]
            todo.remove(job)
            job.folder(args.out).parent.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "OMP_NUM_THREADS": str(job.threads), "MKL_NUM_THREADS": str(job.threads)}
            log = open(job.folder(args.out).with_suffix(".log"), "ab")  # noqa: SIM115 (closed with the process)
            proc = subprocess.Popen(train_command(args, job, steps), env=env, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            running.append((job, proc, time.perf_counter(), os.getloadavg()[0]))
            print(f"started {job.folder(args.out)} ({job.threads} thread{'s' * (job.threads > 1)})", flush=True)
            continue
        time.sleep(1.0)
        for item in list(running):
            job, proc, t0, load0 = item
            if proc.poll() is None:
                continue
            running.remove(item)
            wall = time.perf_counter() - t0
            path = job.record(args.out)
            rec = json.loads(path.read_text()) if path.is_file() else {"sessions": []}
            rec["sessions"].append({"wall_s": wall, "threads": job.threads, "machine": machine(),
                                    "exit": proc.returncode, "load_start": load0, "load_end": os.getloadavg()[0],
                                    "date": time.strftime("%F")})
            path.write_text(json.dumps(rec, indent=1))
            status = "done" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}; see its .log)"
            print(f"{status}: {job.folder(args.out)} in {wall / 60:.1f} min", flush=True)
            if proc.returncode != 0:
                failed.append(str(job.folder(args.out)))
    if failed:
        print(f"{len(failed)} runs failed: {', '.join(failed)}", file=sys.stderr)


def run_numbers(run: RunDir, floor: float) -> dict[str, Any] | None:
    """One finished run's row: final and best SWD (and snapped for the baseline), structure, lost classes."""
    swd_lines = [line for line in run.read_metric("swd") if isinstance(line.get("swd"), dict)]
    structure = [line["structure"] for line in run.read_metric("structure") if isinstance(line.get("structure"), dict)]
    if not swd_lines or not structure:
        return None
    final, s = swd_lines[-1], structure[-1]
    row: dict[str, Any] = {"step": final["step"], "SWD final": final["swd"]["avg"],
                           "SWD best": min(line["swd"]["avg"] for line in swd_lines)}
    if isinstance(final.get("snapped"), dict):
        row["snapped final"] = final["snapped"]["avg"]
        row["snapped best"] = min(line["snapped"]["avg"] for line in swd_lines if isinstance(line.get("snapped"), dict))
    headline = row.get("snapped final", row["SWD final"])  # the baseline's label maps are its snapped output
    row["lost"] = lost_classes(s["presence"], s["presence_real"])
    row["swd collapse"] = headline > SWD_COLLAPSE * floor
    row["final/best"] = row["SWD final"] / row["SWD best"]
    row["rarest class"] = s["presence_min"]
    row["one/class"] = s.get("one_per_class")
    row["fragments"] = s["fragments"]
    row["rollbacks"] = sum(1 for r in run.read_events() if r["event"] == "rollback")
    return row


def cell(values: list[float], fmt: str = ".1f") -> str:
    values = [v for v in values if v == v]  # a run the guard stopped has no final numbers (NaN)
    if not values:
        return "—"
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(statistics.fmean(values), fmt)} ± {format(statistics.stdev(values), fmt)}"


def summary_row(label: list[str], rows: list[tuple[Job, dict[str, Any], dict[str, Any]]]) -> list[str]:
    nums = [n for _, n, _ in rows]
    both = len({x.threads for x, _, _ in rows}) > 1

    def count(key: str) -> str:  # "2 (seeds 1, 4/t2)"
        hit = [f"{j.seed}{'/t' + str(j.threads) if both else ''}" for j, n, _ in rows if n[key]]
        return f"{len(hit)}" + (f" ({', '.join(hit)})" if hit else "")

    walls = [sum(s["wall_s"] for s in rec.get("sessions", [])) / 60 for _, _, rec in rows if rec.get("sessions")]
    machines = sorted({short_machine(rec["sessions"][-1]["machine"]) for _, _, rec in rows if rec.get("sessions")})
    snapped = [n["snapped final"] for n in nums if "snapped final" in n]
    return [*label, "; ".join(machines) or "—", str(len(nums)), count("lost"), count("swd collapse"),
            cell([n["SWD final"] for n in nums]), cell(snapped) if snapped else "—",
            cell([n["SWD best"] for n in nums]),
            format(max((n["final/best"] for n in nums if n["final/best"] == n["final/best"]), default=float("nan")),
                   ".2f"),
            cell([n["rarest class"] for n in nums], ".3f"),
            cell([n["one/class"] for n in nums if n["one/class"] is not None], ".3f"),
            cell([n["fragments"] for n in nums], ".3f"),
            str(sum(n["rollbacks"] for n in nums)), cell(walls)]


CURVES = (  # (title, metric, path to the value in its log line, path to the reals' value)
    ("SWD avg x1e3", "swd", ("swd", "avg"), None),
    ("one component per shape class", "structure", ("structure", "one_per_class"), ("structure", "one_per_class_real")),
    ("maps with a fragment", "structure", ("structure", "fragments"), ("structure", "fragments_real")),
    ("rarest class: share of maps", "structure", ("structure", "presence_min"), ("structure", "presence_min_real")),
)


def _at(line: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = line
    for k in path:
        value = value.get(k) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else None


def write_curves(runs: dict[str, list[Path]], batch: int, path: Path, floor: float) -> None:
    """Every evaluation of every run against images seen: SWD and the structure metrics, a colour per label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CURVES), figsize=(5 * len(CURVES), 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (title, metric, key, real_key) in zip(axes, CURVES, strict=True):
        real = None
        for i, (label, folders) in enumerate(runs.items()):
            for j, folder in enumerate(folders):
                lines = RunDir(folder).read_metric(metric)
                points = [(line["step"] * batch, v) for line in lines if (v := _at(line, key)) is not None]
                if points:
                    ax.plot(*zip(*points, strict=True), color=colors[i % len(colors)], alpha=0.8,
                            label=label if j == 0 else None, linestyle=("-", "--", ":", "-.")[j % 4])
                real = real if real is not None or not lines or real_key is None else _at(lines[-1], real_key)
        if metric == "swd":
            ax.axhline(floor, color="black", linestyle=":", label="real vs real")
            ax.set_yscale("log")
        elif real is not None:
            ax.axhline(real, color="black", linestyle=":", label="reals")
        ax.set_title(title)
        ax.set_xlabel("images seen")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="shapes-cpu")
    parser.add_argument("--variants", default="base")
    parser.add_argument("--modes", default="semgan")
    parser.add_argument("--seeds", default="10", help="how many seeds from --first-seed, or a list: 1,4,6")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--threads", default="1,2", help="thread counts, each run on each (comma-separated)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="threads to run at once in all")
    parser.add_argument("--steps", type=int, default=0, help="train.steps of every run (default: the preset's)")
    parser.add_argument("--out", type=Path, default=Path("runs/robustness"))
    parser.add_argument("--data-root", default="")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="applies to every run")
    parser.add_argument("--summary-only", action="store_true", help="train nothing; summarise the runs in --out")
    parser.add_argument("--runs", action="store_true", help="also list every run")
    parser.add_argument("--curves", type=Path, help="plot every run's evaluations against images seen here (PNG): "
                        "SWD, one component per class, fragments, the rarest class; a colour per (variant, mode, "
                        "threads), a line style per seed")
    parser.add_argument("--sheet", type=Path, help="write every run's final grid here: a row per (variant, mode, "
                        "threads), a column per seed (PNG)")
    args = parser.parse_args()
    base = apply_overrides(get_preset(args.preset), args.set)
    if args.data_root:
        base = apply_overrides(base, {"data.root": args.data_root})
    steps = args.steps or base.train.steps
    variants, modes = args.variants.split(","), args.modes.split(",")
    threads = [int(t) for t in args.threads.split(",")]
    seeds = ([int(x) for x in args.seeds.split(",")] if "," in args.seeds
             else list(range(args.first_seed, args.first_seed + int(args.seeds))))
    for v in variants:
        overrides(v)  # an unknown switch fails before any training
    # 1-thread runs first, two at a time; then the 2-thread ones
    jobs = [Job(v, m, t, s) for t in threads for v in variants for s in seeds for m in modes]
    if not args.summary_only:
        run_jobs(args, jobs, steps)

    dataset = dataset_from_config(base.data)
    floor = real_swd_floor(dataset, base.eval.n, base.eval.seed)["swd"]["avg"]
    found: dict[tuple[str, str], list[tuple[Job, dict[str, Any], dict[str, Any]]]] = {}
    unfinished = 0
    for job in jobs:
        run = RunDir(job.folder(args.out))
        numbers = run_numbers(run, floor) if run.exists() else None
        log = job.folder(args.out).with_suffix(".log")
        gave_up = log.is_file() and "the collapse guard went back" in log.read_text(errors="replace")[-4000:]
        if gave_up:  # stopped by the guard: it lost a class for good (its collapsed evaluation is not on record)
            nan = float("nan")
            numbers = {"SWD final": nan, "SWD best": nan, "final/best": nan, "rarest class": nan, "one/class": None,
                       "fragments": nan, "swd collapse": False, **(numbers or {}), "lost": ["the guard gave up"],
                       "step": steps, "rollbacks": len(run.read_events())}
        if numbers is None or numbers["step"] < steps:
            unfinished += run.exists()
            continue
        rec = json.loads(job.record(args.out).read_text()) if job.record(args.out).is_file() else {}
        found.setdefault((job.variant, job.mode), []).append((job, numbers, rec))

    print(f"\n{args.preset}, {steps} steps, seeds {','.join(map(str, seeds))}; SWD avg x1e3 at the last evaluation "
          f"(final) and the lowest during training (best); a run loses a class when a class in >= 10% of real maps "
          f"is drawn in < 2% of its final samples; 'SWD > {SWD_COLLAPSE:g}x floor' counts the runs whose final SWD "
          f"avg is over {SWD_COLLAPSE:g}x the real-vs-real floor ({floor:.1f}); the baseline is judged on its snapped "
          f"maps; mean ± std over finished runs" + (f" ({unfinished} unfinished left out)" if unfinished else ""))
    head = ["variant", "mode", "threads", "machine", "runs", "lost a class", f"SWD > {SWD_COLLAPSE:g}x floor",
            "SWD final", "snapped final", "SWD best", "worst final/best", "rarest class", "one/class", "fragments",
            "rollbacks", "wall min"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * 4 + "---:|" * (len(head) - 4))
    for (variant, mode), rows in found.items():
        for t in threads:
            mine = [r for r in rows if r[0].threads == t]
            if mine:
                print("| " + " | ".join(summary_row([variant, mode, str(t)], mine)) + " |")
        if len({r[0].threads for r in rows}) > 1:
            print("| " + " | ".join(summary_row([variant, mode, "+".join(map(str, threads))], rows)) + " |")
    if args.runs:
        print("\n| run | step | lost classes | SWD final | snapped final | SWD best | rarest | one/class | fragments |"
              " rollbacks |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for rows in found.values():
            for job, n, _ in rows:
                print(f"| {job.variant}/{job.mode}-t{job.threads}-s{job.seed} | {n['step']} | "
                      f"{','.join(map(str, n['lost'])) or '—'}{' +SWD' if n['swd collapse'] else ''} | "
                      f"{n['SWD final']:.1f} | {n.get('snapped final', float('nan')):.1f} | {n['SWD best']:.1f} | "
                      f"{n['rarest class']:.3f} | {cell([n['one/class']] if n['one/class'] is not None else [], '.3f')}"
                      " | "
                      f"{n['fragments']:.3f} | {n['rollbacks']} |")
    if args.curves:
        write_curves({f"{v} {m} t{t}": [Job(v, m, t, s).folder(args.out) for s in seeds]
                      for v in variants for m in modes for t in threads}, base.train.batch, args.curves, floor)
        print(f"curves: {args.curves}")
    if args.sheet:
        rows_paths = {f"{v} {m} t{t}": [Job(v, m, t, s).folder(args.out) / "grid.png" for s in seeds]
                      for v in variants for m in modes for t in threads}
        write_sheet(rows_paths, [f"seed {s}" for s in seeds], args.sheet)
        print(f"final grids of every run: {args.sheet}")


if __name__ == "__main__":
    main()
