"""Training speed per switch (precision, channels_last, dropout masks, compile) against a plain fp32 eager loop.

Every number comes from one invocation, on one machine, in fresh child processes run in interleaved rounds
(A B C A B C ...), and each row is the median over rounds, so a neighbour's load hits every variant alike.

- ``plain``: a textbook fp32 eager loop of the same networks, losses and Adam settings, written here;
- the engine (``SemGANTask.train_step`` through :class:`semgan.train.engine.Engine`) per variant, a ``+``-joined
  list of switches: ``fp32`` (the defaults), ``bf16`` (train.precision), ``cl`` (train.channels_last),
  ``hash`` (model.d_dropout_rng=hash), ``compile`` (train.compile).

Also printed: FLOPs per step (``torch.utils.flop_counter``, one fp32 step), the achieved GFLOP/s of each row
against this machine's matmul peak in fp32 and bf16 (measured in the same run), and with ``--ddp`` the speed
of 2 gloo processes (torchrun, 1 thread each) against 1 process (2 threads) on the same global batch.

    python benchmarks/train_speed.py                                   # shapes-cpu, both modes, the main variants
    python benchmarks/train_speed.py --presets facades-cpu --data-root ../shared/data/cmp_facade_base
    python benchmarks/train_speed.py --presets shapes --steps 4 --rounds 2 --variants fp32,cl+hash
    python benchmarks/train_speed.py --ddp --variants fp32
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F

from semgan.compare import cpu_name
from semgan.config import RunConfig, SemGANModelConfig, apply_overrides, get_preset
from semgan.data import dataset_from_config
from semgan.devices import resolve_device
from semgan.distributed import DistEnv, setup
from semgan.losses import d_bce, feature_matching, feature_matching_all
from semgan.models import build_models

SWITCHES: dict[str, dict[str, object]] = {
    "fp32": {},
    "bf16": {"train.precision": "bf16"},
    "fp16": {"train.precision": "fp16"},
    "cl": {"train.channels_last": True},
    "hash": {"model.d_dropout_rng": "hash"},
    "compile": {"train.compile": True},
    "noprior": {"model.class_prior": 0.0},  # the CPU presets without their class prior (its cost; SemGAN only)
}
DEFAULT_VARIANTS = "fp32,cl,hash,cl+hash,compile+cl+hash,bf16,bf16+cl+hash"


def variant_overrides(variant: str, switches: dict[str, dict[str, object]] = SWITCHES) -> dict[str, object]:
    """The config overrides of a ``+``-joined variant, e.g. ``cl+hash``, from a table of switches."""
    out: dict[str, object] = {}
    for switch in variant.split("+"):
        if switch not in switches:
            raise SystemExit(f"unknown switch {switch!r} in variant {variant!r}; expected {', '.join(switches)}")
        out.update(switches[switch])
    return out


def _config(preset: str, mode: str, variant: str, overrides: list[str]) -> RunConfig:
    cfg = apply_overrides(get_preset(preset), {"model.mode": mode})
    cfg = apply_overrides(cfg, overrides)
    return apply_overrides(cfg, variant_overrides(variant)) if variant != "plain" else cfg


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(step: Callable[[int], object], steps: int, warmup: int, device: torch.device, budget_s: float
          ) -> tuple[float, float]:
    """Steps/s over ``steps`` timed steps after ``warmup`` ones, or fewer (at least 2) once ``budget_s`` is
    spent: emulated bf16 on a CPU without it runs a hundred times slower."""
    t0 = time.perf_counter()
    for i in range(warmup):
        step(i)
    _sync(device)
    warm = time.perf_counter() - t0
    t, done = time.perf_counter(), 0
    while done < steps and (done < 2 or time.perf_counter() - t < budget_s):
        step(warmup + done)
        done += 1
    _sync(device)
    return done / (time.perf_counter() - t), warm


def engine_step(cfg: RunConfig, root: str | None, device: torch.device
                ) -> tuple[Callable[[int], dict[str, torch.Tensor]], DistEnv]:
    from semgan.tasks.semgan import SemGANTask
    from semgan.train.engine import Engine

    env, device = setup(cfg.train.device)
    task = SemGANTask(cfg, dataset_from_config(cfg.data, root=root), Engine(cfg.train, device, env))
    return task.train_step, env


def plain_step(cfg: RunConfig, root: str | None, device: torch.device) -> Callable[[int], None]:
    """The textbook loop: same G, D, losses, instance noise and Adam settings; no sampler or RNG bookkeeping."""
    model = cfg.model_as(SemGANModelConfig, "the plain loop's preset")
    mode, t = model.mode, cfg.train
    ds = dataset_from_config(cfg.data, root=root)
    G, D = build_models(model, ds.num_classes, ds.resolution[0])
    G, D = G.to(device), D.to(device)
    opt_G = torch.optim.Adam(G.parameters(), lr=t.lr, betas=(t.beta1, t.beta2), eps=t.eps)
    opt_D = torch.optim.Adam(D.parameters(), lr=t.lr, betas=(t.beta1, t.beta2), eps=t.eps)
    labels = ds.labels.to(device)
    palette = ds.palette.to(device).float() / 127.5 - 1

    def step(_: int) -> None:
        idx = torch.randint(0, len(labels), (t.batch,), device=device)
        lab = labels[idx].long()
        real = F.one_hot(lab, ds.num_classes).permute(0, 3, 1, 2).float() if mode == "semgan" else \
            palette[lab].permute(0, 3, 1, 2)
        fake = G(torch.randn(t.batch, model.ld, device=device))
        if model.d_noise > 0:
            real = real + model.d_noise * torch.randn_like(real)
            fake = fake + model.d_noise * torch.randn_like(fake)
        loss_D = d_bce(D(real), D(fake.detach()))
        opt_D.zero_grad()
        loss_D.backward()
        opt_D.step()
        with torch.no_grad():
            _, rf = D(real, return_features=True)
        _, ff = D(fake, return_features=True)
        loss_G = feature_matching_all(rf, ff) if model.g_loss == "fm_all" else feature_matching(rf, ff)
        opt_G.zero_grad()
        loss_G.backward()
        opt_G.step()

    return step


def child(variant: str, cfg: RunConfig, root: str | None, steps: int, warmup: int, budget_s: float = 20.0) -> None:
    warnings.simplefilter("ignore")
    device = resolve_device(cfg.train.device)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # as train() does
    step: Callable[[int], object]
    env: DistEnv | None
    if variant == "plain":
        step, env = plain_step(cfg, root, device), None
    else:
        step, env = engine_step(cfg, root, device)
    sps, warm = _time(step, steps, warmup, device, budget_s)
    if env is not None and not env.is_main:
        return
    peak_mb = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps({"steps_per_s": sps, "peak_mb": peak_mb, "warmup_s": warm}))


def count_flops(cfg: RunConfig, root: str | None) -> float:
    """FLOPs of one fp32 training step (convolutions and matmuls, forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = apply_overrides(cfg, {"train.precision": "fp32", "train.compile": False})
    step, _ = engine_step(cfg, root, resolve_device(cfg.train.device))
    step(0)
    with FlopCounterMode(display=False) as counter:
        step(1)
    return float(counter.get_total_flops())


def matmul_peak(dtype: torch.dtype, device: torch.device, seconds: float = 1.0) -> float:
    """GFLOP/s of a square GEMM sized to take ~0.1 s per call (emulated bf16 on some CPUs is 100x slower)."""
    n = 256
    while True:
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        a @ b
        _sync(device)
        t = time.perf_counter()
        a @ b
        _sync(device)
        dt = time.perf_counter() - t
        if dt > 0.05 or n >= 4096:
            break
        n *= 2
    reps = max(2, int(seconds / max(dt, 1e-6)))
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def run_child(args: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"child {' '.join(args)} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def ddp_speed(preset: str, mode: str, variant: str, steps: int, warmup: int, root: str, sets: list[str]
              ) -> tuple[float, float]:
    """Steps/s of 2 gloo processes (1 thread each) and of 1 process (2 threads), same global batch."""
    child_args = ["--child", variant, preset, mode, str(steps), str(warmup), "--data-root", root,
                  *(a for s in sets for a in ("--set", s))]  # fmt: skip
    one = run_child(child_args)["steps_per_s"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", __file__,
           *child_args]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"torchrun failed:\n{res.stderr[-3000:]}")
    two = json.loads(res.stdout.strip().splitlines()[-1])["steps_per_s"]
    return one, two


def hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    return (f"CPU {cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads "
            f"({torch.backends.cpu.get_cpu_capability()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="shapes-cpu")
    parser.add_argument("--modes", default="semgan,gan")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated (default {DEFAULT_VARIANTS})")
    parser.add_argument("--steps", type=int, default=0,
                        help="timed steps per child (default: 30 for -cpu presets, 4 else)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each row is their median")
    parser.add_argument("--data-root", default="", help="dataset folder, for presets on real data")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--ddp", action="store_true", help="also time 2 gloo processes against 1 (fp32 variant)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, preset, mode, steps, warmup = args.child
        child(variant, _config(preset, mode, variant, args.set), args.data_root or None, int(steps), int(warmup))
        return

    device = resolve_device("auto")
    print(f"{time.strftime('%Y-%m-%d')}  torch {torch.__version__}  {hardware()}"
          + (f"  overrides {' '.join(args.set)}" if args.set else ""))
    peaks = {"fp32": matmul_peak(torch.float32, device), "bf16": matmul_peak(torch.bfloat16, device)}
    print(f"matmul peak: fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s "
          f"(bf16/fp32 = {peaks['bf16'] / peaks['fp32']:.2f})")
    variants = ["plain", *args.variants.split(",")]
    for v in variants[1:]:
        variant_overrides(v)  # typos fail before any timing
    header = (f"{'preset':<11} {'mode':<6} {'variant':<18} {'steps/s':>8} {'img/s':>7} {'x plain':>7} "
              f"{'GFLOP/s':>8} {'% peak':>7} {'peak MB':>8} {'warmup s':>8}")
    for preset in args.presets.split(","):
        batch = get_preset(preset).train.batch
        steps = args.steps or (30 if "cpu" in preset or preset == "tiny" else 4)
        warmup = max(2, steps // 10)
        for mode in args.modes.split(","):
            flops = count_flops(_config(preset, mode, "fp32", args.set), args.data_root or None)
            print(f"\n{preset} {mode}: {flops / 1e9:.2f} GFLOP per training step (fp32 count)")
            print(header)
            print("-" * len(header))
            runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
            for _ in range(args.rounds):
                for v in variants:
                    runs[v].append(run_child(["--child", v, preset, mode, str(steps), str(warmup),
                                              "--data-root", args.data_root, *(a for s in args.set
                                                                               for a in ("--set", s))]))
            base = statistics.median(r["steps_per_s"] for r in runs["plain"])
            for v in variants:
                sps = statistics.median(r["steps_per_s"] for r in runs[v])
                peak = peaks["bf16" if "bf16" in v else "fp32"]
                gflops = flops * sps / 1e9
                print(f"{preset:<11} {mode:<6} {v:<18} {sps:8.2f} {sps * batch:7.1f} {sps / base:7.2f} "
                      f"{gflops:8.1f} {100 * gflops / peak:6.1f}% {max(r['peak_mb'] for r in runs[v]):8.0f} "
                      f"{statistics.median(r['warmup_s'] for r in runs[v]):8.1f}", flush=True)
            if args.ddp:
                one, two = ddp_speed(preset, mode, "fp32", steps, warmup, args.data_root, args.set)
                print(f"DDP: 1 process x 2 threads {one:.2f} steps/s, 2 gloo processes x 1 thread {two:.2f} "
                      f"steps/s (x{two / one:.2f}), same global batch {batch}")


if __name__ == "__main__":
    main()
