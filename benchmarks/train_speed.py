"""Training speed: semgan's Trainer against a plain eager loop of the same networks, in the same run.

For each preset and mode, a fresh child process times ``Trainer.train_step`` (the real loop: on-device
batches, one-hot or colorize, D step, feature-matching G step) and then a plain loop written here with the
same networks, losses and batch size. The ratio (ours / plain) is the figure: ~1.0 means the training
machinery adds nothing. Peak memory is the child's max RSS on CPU, or ``max_memory_allocated`` on CUDA.

    python benchmarks/train_speed.py                      # shapes-cpu and shapes, both modes
    python benchmarks/train_speed.py --presets shapes-cpu --steps 50
    python benchmarks/train_speed.py --presets facades-cpu --data-root ../shared/data/cmp_facade_base \
        --set train.d_noise=0                             # any config override, e.g. without instance noise
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from semgan.config import RunConfig, apply_overrides, get_preset
from semgan.data import dataset_from_config
from semgan.losses import d_bce, feature_matching, feature_matching_all
from semgan.models import build_models
from semgan.train.loop import Trainer, resolve_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _config(preset: str, mode: str, overrides: list[str]) -> RunConfig:
    return apply_overrides(apply_overrides(get_preset(preset), {"model.mode": mode}), overrides)


def time_trainer(cfg: RunConfig, root: str | None, steps: int, warmup: int) -> float:
    device = resolve_device(cfg.train.device)
    trainer = Trainer(cfg, dataset_from_config(cfg.data, root=root), device)
    for _ in range(warmup):
        trainer.train_step()
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    _sync(device)
    return steps / (time.perf_counter() - t)


def time_plain(cfg: RunConfig, root: str | None, steps: int, warmup: int) -> float:
    """The textbook loop: same G, D, losses, instance noise and Adam settings; no sampler, no RNG bookkeeping."""
    mode = cfg.model.mode
    device = resolve_device(cfg.train.device)
    ds = dataset_from_config(cfg.data, root=root)
    G, D = build_models(cfg.model, ds.num_classes, ds.resolution[0])
    G, D = G.to(device), D.to(device)
    t_cfg = cfg.train
    opt_G = torch.optim.Adam(G.parameters(), lr=t_cfg.lr, betas=(t_cfg.beta1, t_cfg.beta2), eps=t_cfg.eps)
    opt_D = torch.optim.Adam(D.parameters(), lr=t_cfg.lr, betas=(t_cfg.beta1, t_cfg.beta2), eps=t_cfg.eps)
    labels = ds.labels.to(device)
    palette = ds.palette.to(device).float() / 127.5 - 1

    def step() -> None:
        idx = torch.randint(0, len(labels), (t_cfg.batch,), device=device)
        lab = labels[idx].long()
        if mode == "semgan":
            real = F.one_hot(lab, ds.num_classes).permute(0, 3, 1, 2).float()
        else:
            real = palette[lab].permute(0, 3, 1, 2)
        fake = G(torch.randn(t_cfg.batch, cfg.model.ld, device=device))
        if t_cfg.d_noise > 0:
            real = real + t_cfg.d_noise * torch.randn_like(real)
            fake = fake + t_cfg.d_noise * torch.randn_like(fake)
        loss_D = d_bce(D(real), D(fake.detach()))
        opt_D.zero_grad()
        loss_D.backward()
        opt_D.step()
        with torch.no_grad():
            _, rf = D(real, return_features=True)
        _, ff = D(fake, return_features=True)
        loss_G = feature_matching_all(rf, ff) if t_cfg.g_loss == "fm_all" else feature_matching(rf, ff)
        opt_G.zero_grad()
        loss_G.backward()
        opt_G.step()

    for _ in range(warmup):
        step()
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps / (time.perf_counter() - t)


def child(kind: str, cfg: RunConfig, root: str | None, steps: int, warmup: int) -> None:
    fn = time_trainer if kind == "semgan" else time_plain
    sps = fn(cfg, root, steps, warmup)
    if torch.cuda.is_available():
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"steps_per_s": sps, "peak_mb": peak_mb}))


def measure(kind: str, preset: str, mode: str, steps: int, warmup: int, root: str, overrides: list[str]
            ) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", kind, preset, mode, str(steps), str(warmup), "--data-root", root]
    cmd += [a for o in overrides for a in ("--set", o)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="shapes-cpu,shapes")
    parser.add_argument("--modes", default="semgan,gan")
    parser.add_argument("--steps", type=int, default=0, help="timed steps (default: 60 for -cpu presets, 4 else)")
    parser.add_argument("--data-root", default="", help="dataset folder, for presets on real data")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, preset, mode, steps, warmup = args.child
        child(kind, _config(preset, mode, args.set), args.data_root or None, int(steps), int(warmup))
        return

    device = "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    print(f"torch {torch.__version__}, device {device}" + (f", overrides {' '.join(args.set)}" if args.set else ""))
    header = (f"{'preset':<11} {'mode':<7} {'steps/s':>8} {'images/s':>9} {'peak MB':>8} "
              f"{'plain steps/s':>14} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for preset in args.presets.split(","):
        batch = get_preset(preset).train.batch
        steps = args.steps or (60 if "cpu" in preset else 4)
        warmup = max(2, steps // 10)
        for mode in args.modes.split(","):
            ours = measure("semgan", preset, mode, steps, warmup, args.data_root, args.set)
            plain = measure("plain", preset, mode, steps, warmup, args.data_root, args.set)
            ratio = ours["steps_per_s"] / plain["steps_per_s"]
            print(f"{preset:<11} {mode:<7} {ours['steps_per_s']:8.2f} {ours['steps_per_s'] * batch:9.1f} "
                  f"{ours['peak_mb']:8.0f} {plain['steps_per_s']:14.2f} {ratio:6.2f}", flush=True)


if __name__ == "__main__":
    main()
