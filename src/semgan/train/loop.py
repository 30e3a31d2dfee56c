"""The training loop (paper, appendix B): D with binary cross-entropy, G with feature matching, Adam for both.

One step::

    z ~ N(0, 1)                                  latents drawn on the CPU from a seeded generator
    fake = G(z)                                  probs (B, K, H, W) or rgb (B, 3, H, W)
    D step: BCE(D(real), 1) + BCE(D(fake), 0)    real = one-hot maps, or colorized maps in [-1, 1]
    G step: || E f(real) - E f(fake) ||^2        f = an intermediate D layer, D just updated

The whole dataset lives on the training device as uint8 and batches are gathered there. Everything that
decides the next step (weights, both optimizers, every RNG, the data order, the step) is in the checkpoint,
so an interrupted run resumed with ``--resume`` is bit-identical on CPU to an uninterrupted one.

:class:`Trainer` holds the models and the step; :func:`train` runs it with logging and checkpoints. A DDP
wrapper or another model family reuses ``Trainer.train_step`` / ``state_dict`` and the run-folder logic.
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from semgan import __version__
from semgan.checkpoint import load_checkpoint, save_checkpoint
from semgan.config import RunConfig, diff, from_dict, to_dict
from semgan.data import LabelDataset, dataset_from_config
from semgan.errors import SemGANError
from semgan.labels import colorize, make_grid, one_hot, uint8_to_rgb, write_rgb_png
from semgan.losses import (
    d_bce,
    feature_matching,
    feature_matching_all,
    feature_matching_l1,
    g_nonsaturating,
)
from semgan.models import build_models
from semgan.sample import latents, render

# Keys that may change when a run is resumed: they do not change what the next step computes.
RESUME_FREE_KEYS = (
    "train.steps", "train.device", "train.log_every", "train.sample_every", "train.ckpt_every",
    "eval.every", "eval.metrics", "eval.n", "eval.seed",
)  # fmt: skip
GRID_SEED_OFFSET = 1_000_003  # the fixed sample-grid latents come from their own seed


class TrainingInterrupted(SemGANError):
    """Raised after a signal stopped training; the checkpoint for the last finished step is on disk."""


class EpochSampler:
    """Batches of dataset indices: a fresh seeded permutation per epoch, the remainder dropped."""

    def __init__(self, n: int, batch: int, generator: torch.Generator) -> None:
        if batch > n:
            raise SemGANError(f"train.batch={batch} is larger than the dataset ({n} maps)")
        self.n, self.batch, self.generator = n, batch, generator
        self.perm = torch.randperm(n, generator=generator)
        self.pos = 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch > self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=self.generator), 0
        idx = self.perm[self.pos : self.pos + self.batch]
        self.pos += self.batch
        return idx

    def state_dict(self) -> dict[str, Any]:
        return {"perm": self.perm.clone(), "pos": self.pos, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.perm, self.pos = state["perm"].clone(), int(state["pos"])
        self.generator.set_state(state["generator"])


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise SemGANError(f"train.device={name!r} is not a device name (e.g. cpu, cuda, cuda:1, auto)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SemGANError(f"train.device={name!r} but CUDA is not available on this machine")
    return device


class Trainer:
    """Models, optimizers, data and RNG state of one run, and the step that advances them."""

    def __init__(self, cfg: RunConfig, dataset: LabelDataset, device: torch.device) -> None:
        self.cfg, self.dataset, self.device = cfg.validate(), dataset, device
        m, t = cfg.model, cfg.train
        H, W = dataset.resolution
        if H != W:
            raise SemGANError(f"dataset {dataset.name!r} has {H}x{W} maps; the networks need square maps")
        torch.manual_seed(t.seed)  # weight init and dropout; its state is checkpointed
        G, D = build_models(m, dataset.num_classes, H)
        self.G, self.D = G.to(device), D.to(device)
        betas = (t.beta1, t.beta2)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=t.lr, betas=betas, eps=t.eps)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=t.lr, betas=betas, eps=t.eps)
        labels = dataset.labels  # (N, H, W) uint8
        if cfg.data.hflip:  # the mirrored copies follow the originals: (2N, H, W)
            labels = torch.cat([labels, labels.flip(-1)])
        self.labels = labels.to(device)  # the whole training set on the device
        self.palette = dataset.palette.to(device)
        self.sampler = EpochSampler(len(self.labels), t.batch, torch.Generator().manual_seed(t.seed + 1))
        self.latent_gen = torch.Generator().manual_seed(t.seed + 2)
        self.step = 0
        self.scalar_sink: Callable[[str, float, int], None] | None = None  # set by train(): TensorBoard

    def log_scalar(self, tag: str, value: float, step: int) -> None:
        if self.scalar_sink is not None:
            self.scalar_sink(tag, value, step)

    # -------------------------------------------------------------------------------------------- the step

    def real_batch(self) -> torch.Tensor:
        """What D sees of a real batch: onehot (B, K, H, W) for SemGAN, rgb (B, 3, H, W) for the baseline."""
        idx = self.sampler.next().to(self.device)
        labels = self.labels.index_select(0, idx).long()  # (B, H, W)
        if self.cfg.model.mode == "semgan":
            return one_hot(labels, self.dataset.num_classes)
        return uint8_to_rgb(colorize(labels, self.palette))

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """What D sees of a fake batch: probs (or a straight-through Gumbel one-hot sample), or rgb."""
        if self.cfg.model.mode == "semgan" and self.cfg.model.fake_input == "st-gumbel":
            return F.gumbel_softmax(self.G.logits(z), tau=1.0, hard=True, dim=1)
        return self.G(z)

    def train_step(self) -> dict[str, torch.Tensor]:
        """One D update then one G update; returns detached scalars (no host sync)."""
        t = self.cfg.train
        real = self.real_batch()
        z = latents(t.batch, self.cfg.model.ld, generator=self.latent_gen).to(self.device)
        fake = self.generate(z)

        if t.d_noise > 0:  # instance noise (Sonderby et al. 2017), annealed linearly to 0
            # Drawn on the device from torch's global RNG (like dropout; its state is checkpointed): a CPU draw
            # of two (B, K, H, W) tensors would cost a GPU step more than the step itself.
            sigma = t.d_noise * max(0.0, 1.0 - self.step / (t.d_noise_steps or t.steps))
            real = real + sigma * torch.randn_like(real)
            fake = fake + sigma * torch.randn_like(fake)

        # Discriminator: real -> 1, fake -> 0.
        self.D.requires_grad_(True)
        real_logits = self.D(real)
        fake_logits = self.D(fake.detach())
        loss_D = d_bce(real_logits, fake_logits)
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self.opt_D.step()

        # Generator: match the just-updated D's features of real and fake batches.
        self.D.requires_grad_(False)  # no D gradients needed; saves the weight-gradient work
        with torch.no_grad():
            _, real_feats = self.D(real, return_features=True)
        fake_logits_G, fake_feats = self.D(fake, return_features=True)
        if t.g_loss == "fm":
            loss_G = feature_matching(real_feats, fake_feats, t.fm_layer)
        elif t.g_loss == "fm_all":
            loss_G = feature_matching_all(real_feats, fake_feats)
        elif t.g_loss == "fm_l1":
            loss_G = feature_matching_l1(real_feats, fake_feats)
        else:
            loss_G = g_nonsaturating(fake_logits_G)
        self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        self.opt_G.step()
        self.D.requires_grad_(True)

        self.step += 1
        return {
            "loss_D": loss_D.detach(),
            "loss_G": loss_G.detach(),
            "D_real": torch.sigmoid(real_logits.detach()).mean(),
            "D_fake": torch.sigmoid(fake_logits.detach()).mean(),
        }

    # --------------------------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        rng: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "latent": self.latent_gen.get_state(),
            "sampler": self.sampler.state_dict(),
        }
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "step": self.step,
            "config": to_dict(self.cfg),
            "data": self.dataset.describe(),
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "rng": rng,
        }

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        data = ckpt["data"]
        same_classes = list(data["class_names"]) == list(self.dataset.class_names)
        if not same_classes or data["resolution"] != self.dataset.resolution[0]:
            raise SemGANError(
                f"the checkpoint was trained on {len(data['class_names'])} classes at {data['resolution']}px "
                f"({', '.join(data['class_names'])}); the data now has {self.dataset.num_classes} classes at "
                f"{self.dataset.resolution[0]}px ({', '.join(self.dataset.class_names)})"
            )
        self.G.load_state_dict(ckpt["G"])
        self.D.load_state_dict(ckpt["D"])
        self.opt_G.load_state_dict(ckpt["opt_G"])
        self.opt_D.load_state_dict(ckpt["opt_D"])
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"])
        self.latent_gen.set_state(rng["latent"])
        self.sampler.load_state_dict(rng["sampler"])
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.step = int(ckpt["step"])


# ------------------------------------------------------------------------------------------- run folders


def _read_run_config(out: Path) -> RunConfig:
    try:
        return from_dict(json.loads((out / "config.json").read_text())["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SemGANError(f"{out / 'config.json'} is unreadable or not a semgan run config: {exc}") from exc


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / "config.json").is_file()


def saved_config(out: str | Path) -> RunConfig:
    """The config of an existing run folder."""
    out = Path(out)
    if not is_run_dir(out):
        raise SemGANError(f"{out} is not a semgan run folder (no config.json); nothing to resume")
    return _read_run_config(out)


def _check_out_dir(out: Path, cfg: RunConfig, resume: bool) -> None:
    exists_nonempty = out.is_dir() and any(out.iterdir())
    if out.exists() and not out.is_dir():
        raise SemGANError(f"--out {out} is a file; expected a folder for the run")
    if not resume:
        if is_run_dir(out):
            raise SemGANError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
        if exists_nonempty:
            raise SemGANError(f"{out} is not empty and is not a semgan run; choose an empty or new folder for --out")
        return
    if not is_run_dir(out):
        if exists_nonempty:
            raise SemGANError(f"{out} is not a semgan run (no config.json); cannot --resume it")
        raise SemGANError(f"nothing to resume in {out}: it holds no run; drop --resume to start one")
    free: tuple[str, ...] = RESUME_FREE_KEYS
    if cfg.train.d_noise > 0 and cfg.train.d_noise_steps == 0:  # the noise anneals over train.steps
        free = tuple(k for k in free if k != "train.steps")
    changed = diff(_read_run_config(out), cfg, ignore=free)
    if changed:
        lines = ", ".join(f"{k} (saved {a!r}, now {b!r})" for k, (a, b) in changed.items())
        hint = ("; the instance noise anneals over train.steps, so set train.d_noise_steps to the saved "
                "train.steps to keep its schedule" if "train.steps" in changed else "")
        raise SemGANError(f"cannot resume {out}: the config differs from the saved one in {lines}{hint}")


def _write_config(out: Path, cfg: RunConfig, dataset: LabelDataset) -> None:
    doc = {
        "semgan_version": __version__,
        "config": to_dict(cfg),
        "dataset": {**dataset.describe(), "meta": dataset.meta},
    }
    tmp = out / "config.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    tmp.replace(out / "config.json")


@contextmanager
def _stop_on_signals(flag: dict[str, int]) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into a flag checked between steps, so a checkpoint is never written mid-step."""
    previous: dict[signal.Signals, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        if flag.get("signal"):  # a second Ctrl-C: give up on the graceful path
            raise KeyboardInterrupt
        flag["signal"] = int(signum)

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: signals stay as they are
        pass
    try:
        yield
    finally:
        for old_sig, old in previous.items():
            signal.signal(old_sig, old)


class _Logger:
    """JSON lines (``stats.jsonl``) and TensorBoard scalars and images (``tb/``)."""

    def __init__(self, out: Path, start_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter  # slow import; only when training

        self.jsonl = (out / "stats.jsonl").open("a")
        self.tb = SummaryWriter(str(out / "tb"), purge_step=start_step if start_step > 0 else None)

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.tb.add_scalar(tag, value, step)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.jsonl.write(json.dumps({"step": step, **values}) + "\n")
        self.jsonl.flush()
        for k, v in values.items():
            self.tb.add_scalar(f"train/{k}", v, step)

    def image(self, step: int, tag: str, image: torch.Tensor) -> None:
        self.tb.add_image(tag, image, step)  # (3, H, W) uint8

    def close(self) -> None:
        self.jsonl.close()
        self.tb.close()


StepHook = Callable[[Trainer, Path], None]


def train(
    cfg: RunConfig,
    out: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    dataset: LabelDataset | None = None,
    hooks: tuple[StepHook, ...] = (),
) -> Path:
    """Train one model (``cfg.model.mode``) into the run folder ``out``; returns ``out``.

    ``cfg.train.steps`` is the run's total: with ``resume=True`` an interrupted or finished run in ``out``
    continues from its last checkpoint up to that step. ``hooks`` run after every step (evaluation plugs in
    here). Raises :class:`TrainingInterrupted` after SIGINT/SIGTERM, once the checkpoint is written.
    """
    out = Path(out)
    cfg = cfg.validate()
    _check_out_dir(out, cfg, resume)
    device = resolve_device(cfg.train.device)
    if device.type == "cpu":
        # Saturated tanh/softmax heads can push gradients into the subnormal range, where x86 arithmetic is
        # many times slower; flushing them to zero changes nothing above 1e-38 (a precaution, see benchmarks).
        torch.set_flush_denormal(True)
    if dataset is None:
        dataset = dataset_from_config(cfg.data)
    trainer = Trainer(cfg, dataset, device)
    ckpt_path = out / "checkpoints" / "latest.pt"
    if resume and ckpt_path.is_file():
        trainer.load_state_dict(load_checkpoint(ckpt_path, map_location=device))
    out.mkdir(parents=True, exist_ok=True)
    _write_config(out, cfg, dataset)
    _drop_log_lines_after(out, trainer.step)  # logged after the checkpoint by a run that then died
    if trainer.step >= cfg.train.steps and ckpt_path.is_file():
        return out  # a finished run: nothing to train, no empty TensorBoard file
    if cfg.eval.metrics:
        from semgan.evaluate import Evaluator  # metrics pull in scipy-free but heavier code; only when asked

        hooks = (*hooks, Evaluator(cfg.eval, cfg.train.steps))

    t = cfg.train
    grid_z = latents(16, cfg.model.ld, generator=torch.Generator().manual_seed(t.seed + GRID_SEED_OFFSET))
    logger = _Logger(out, trainer.step)
    trainer.scalar_sink = logger.scalar
    stop: dict[str, int] = {}
    window: list[dict[str, torch.Tensor]] = []
    last_time, last_step = time.perf_counter(), trainer.step

    def save() -> None:
        save_checkpoint(ckpt_path, trainer.state_dict())

    def write_grid() -> None:
        grid = make_grid(render(trainer.G, grid_z, trainer.palette).images, nrow=4)
        (out / "samples").mkdir(exist_ok=True)
        write_rgb_png(out / "samples" / f"step-{trainer.step:06d}.png", grid)
        write_rgb_png(out / "grid.png", grid)
        logger.image(trainer.step, "samples", grid)

    bar = tqdm(total=t.steps, initial=trainer.step, desc=f"{cfg.model.mode} {dataset.name}", unit="step",
               disable=not progress, dynamic_ncols=True)
    try:
        with _stop_on_signals(stop):
            if trainer.step == 0:
                write_grid()
            while trainer.step < t.steps:
                window.append(trainer.train_step())
                bar.update(1)
                step = trainer.step
                if step % t.log_every == 0 or step == t.steps:
                    stats = {k: float(torch.stack([w[k] for w in window]).mean()) for k in window[0]}
                    window.clear()
                    if not all(math.isfinite(v) for v in stats.values()):
                        raise SemGANError(
                            f"training diverged at step {step} ({stats}); the last finite checkpoint is {ckpt_path}"
                        )
                    now = time.perf_counter()
                    stats["steps_per_s"] = (step - last_step) / max(now - last_time, 1e-9)
                    stats["time"] = time.time()  # wall clock, for wall-time reports
                    last_time, last_step = now, step
                    logger.scalars(step, stats)
                    bar.set_postfix(loss_D=f"{stats['loss_D']:.3f}", loss_G=f"{stats['loss_G']:.4f}")
                if step % t.sample_every == 0 or step == t.steps:
                    write_grid()
                for hook in hooks:
                    hook(trainer, out)
                if step % t.ckpt_every == 0 or step == t.steps:
                    save()
                if stop:
                    save()
                    raise TrainingInterrupted(
                        f"stopped by signal {stop['signal']} at step {step}; checkpoint saved to {ckpt_path}. "
                        f"Continue with: semgan train --out {out} --resume --steps {t.steps}"
                    )
            if not ckpt_path.is_file():  # steps == 0, or resumed at the end: still leave a checkpoint
                save()
    finally:
        bar.close()
        logger.close()
    return out


def _drop_log_lines_after(out: Path, step: int) -> None:
    """Keep the JSON-lines logs consistent with the checkpoint a run resumes from."""
    for path in [out / "stats.jsonl", *out.glob("metric-*.jsonl")]:
        if not path.is_file():
            continue
        lines = path.read_text().splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
        if len(kept) != len(lines):
            path.write_text("".join(line + "\n" for line in kept))
