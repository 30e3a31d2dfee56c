"""The training loop: one ``fit`` for every model family, on one process or many.

::

    train(cfg, out)    run folder checks -> ranks and devices (torchrun) -> engine -> the family's task
      fit(...)         resume -> for each step:
                           task.train_step(step)             the family: batch, losses, updates
                           stop flag, OR-ed over ranks        Ctrl-C / SIGTERM on any rank stops every rank
                           log (means over ranks) | grid | evaluate | checkpoint

The loop knows nothing of GANs: a family is the five methods of :class:`semgan.tasks.Task`. Everything that
decides the next step (the family's state, the engine's, torch's RNG of every rank, the step) is in the
checkpoint, so ``--resume`` continues bit for bit on CPU; only rank 0 writes files, and no checkpoint with a
non-finite number in it is ever written.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from semgan import distributed
from semgan.config import RunConfig, diff, to_dict
from semgan.data import LabelDataset
from semgan.distributed import DistEnv
from semgan.errors import SemGANError
from semgan.run_dir import RunDir
from semgan.tasks import Task, build_task, load_task_data
from semgan.train.engine import Engine, finite_tensors
from semgan.train.evaluation import Evaluator
from semgan.train.logger import Logger
from semgan.train.signals import Interrupted, StopFlag

# Keys that may change when a run is resumed: they do not change what the next step computes.
RESUME_FREE_KEYS = (
    "train.steps", "train.device", "train.log_every", "train.sample_every", "train.ckpt_every",
    "train.keep_checkpoints", "eval.every", "eval.metrics", "eval.n", "eval.seed",
)  # fmt: skip


class TrainingInterrupted(SemGANError):
    """Raised after a signal stopped training; the checkpoint for the last finished step is on disk."""


class TrainingDiverged(SemGANError):
    """Raised when a loss or a weight is no longer finite; the last finite checkpoint is kept as it was."""


class TrainingCollapsed(SemGANError):
    """Raised when the collapse guard has used up its rollbacks; every checkpoint is kept."""


#: Seeds of the random streams after the n-th rollback: train.seed + ROLLBACK_SEED_STRIDE * n.
ROLLBACK_SEED_STRIDE = 1_000_003


def saved_config(out: str | Path) -> RunConfig:
    """The config of an existing run folder."""
    run = RunDir(out)
    if not run.exists():
        raise SemGANError(f"{out} is not a semgan run folder (no {RunDir.CONFIG}); nothing to resume")
    return run.read_config()


def check_out_dir(run: RunDir, cfg: RunConfig, resume: bool) -> None:
    """Refuse a folder that is not ours, a run without ``--resume``, and a resume that changes the config."""
    out = run.root
    if out.exists() and not out.is_dir():
        raise SemGANError(f"--out {out} is a file; expected a folder for the run")
    nonempty = out.is_dir() and any(not RunDir.is_own_litter(p) for p in out.iterdir())
    if not resume:
        if run.exists():
            raise SemGANError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
        if nonempty:
            raise SemGANError(f"{out} is not empty and is not a semgan run; choose an empty or new folder for --out")
        return
    if not run.exists():
        if nonempty:
            raise SemGANError(f"{out} is not a semgan run (no {RunDir.CONFIG}); cannot --resume it")
        raise SemGANError(f"nothing to resume in {out}: it holds no run; drop --resume to start one")
    free: tuple[str, ...] = RESUME_FREE_KEYS
    schedule = cfg.model.steps_schedule() or cfg.train.steps_schedule()
    if schedule is not None:
        free = tuple(k for k in free if k != "train.steps")
    changed = diff(run.read_config(), cfg, ignore=free)
    if changed:
        lines = ", ".join(f"{k} (saved {a!r}, now {b!r})" for k, (a, b) in sorted(changed.items()))
        hint = f"; {schedule}" if schedule is not None and "train.steps" in changed else ""
        raise SemGANError(f"cannot resume {out}: the config differs from the saved one in {lines}{hint}")


def train(
    cfg: RunConfig,
    out: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    dataset: LabelDataset | None = None,
) -> Path:
    """Train one run of ``cfg`` (any model family) into the run folder ``out``; returns ``out``.

    ``cfg.train.steps`` is the run's total: with ``resume=True`` an interrupted or finished run in ``out``
    continues from its last checkpoint up to that step. Launched by ``torchrun``, every process calls this
    and they train as one run.

    Raises:
        TrainingInterrupted: after SIGINT/SIGTERM (on any rank), once the checkpoint is written.
        TrainingDiverged: when a loss or weight stops being finite; nothing non-finite is written.
    """
    run = RunDir(out)
    if distributed.launched_world_size() <= 1:
        check_out_dir(run, cfg, resume)  # before anything else, so that a wrong --out fails at once
    env, device = distributed.setup(cfg.train.device)
    flushing = _flushing_denormals()
    try:
        if env.active:
            check_out_dir(run, cfg, resume)  # every rank, before rank 0 writes anything
            env.barrier()
        if device.type == "cpu":
            # Saturated tanh/softmax heads can push gradients into the subnormal range, where x86 arithmetic
            # is many times slower; flushing them to zero changes nothing above 1e-38. Process-wide state:
            # restored when training ends, so that the caller's own float arithmetic is left as it was.
            torch.set_flush_denormal(True)
        if dataset is None:
            dataset = load_task_data(cfg)
        engine = Engine(cfg.train, device, env)
        task = build_task(cfg, dataset, engine)
        if env.rank > 0:  # dropout and noise draw from torch's RNG: after the shared init, a stream per rank
            torch.manual_seed(cfg.train.seed + 7919 * env.rank)
        with run.lock() if env.is_main else contextlib.nullcontext():
            if env.is_main:
                check_out_dir(run, cfg, resume)  # again, now that no one else can write the folder
                for path in run.remove_stale_temporaries():
                    print(f"semgan: removed {path}, left by an interrupted write", file=sys.stderr)
            fit(task, run, cfg, engine, dataset, resume=resume, progress=progress)
        # Rank 0 finishes later (final evaluation, files); a rank that destroys its gloo group while another
        # is still connected can abort the whole launch ("terminate called ..."). No-op alone.
        env.barrier()
    finally:
        torch.set_flush_denormal(flushing)
        distributed.teardown(env)
    return run.root


def _flushing_denormals() -> bool:
    """Whether the CPU flushes subnormal floats to zero now (torch has a setter but no getter)."""
    tiny = torch.tensor([1e-39], dtype=torch.float32)  # subnormal in float32
    return bool((tiny * 1.0).item() == 0.0)


class _Checkpoints:
    """The full state of a run (gathered over ranks) and the one guarded way to write it."""

    def __init__(self, run: RunDir, cfg: RunConfig, task: Task, engine: Engine, dataset: LabelDataset) -> None:
        self.run, self.cfg, self.task, self.engine, self.dataset = run, cfg, task, engine, dataset
        self.last: tuple[int, Path] | None = None  # (step, path) of the newest checkpoint written or resumed
        self.rollbacks = 0  # the collapse guard's rollbacks so far (checkpointed: a resume counts on)

    def state(self, step: int) -> dict[str, Any]:
        """Everything that decides the next step (collective: every rank must call it)."""
        env, device = self.engine.env, self.engine.device
        own = {"torch": torch.get_rng_state()}
        if device.type == "cuda":
            own["cuda"] = torch.cuda.get_rng_state(device)
        ranks = env.gather(own)
        task_state = self.task.state_dict()
        rng = {**task_state.pop("rng", {}), **ranks[0]}
        if env.active:
            rng["ranks"] = ranks
        return {
            "step": step,
            "config": to_dict(self.cfg),
            "family": self.cfg.model.family,
            "data": self.dataset.describe(),
            "world_size": env.world,
            **task_state,
            **self.engine.state_dict(),
            "rng": rng,
            "rollbacks": self.rollbacks,
        }

    def restore(self) -> int:
        """Load the latest checkpoint that is sound (:meth:`check`) into the task and engine; returns its step."""
        state, path = self.run.load_resume_checkpoint(map_location=self.engine.device, check=self.check)
        self.rollbacks = int(state.get("rollbacks", 0))
        return self._load(state, path)

    def check(self, state: dict[str, Any]) -> None:
        """Refuse a state this run cannot continue from: non-finite numbers, or networks whose weights do not fit
        the ones this run's config builds (another width, latent size or mode). Raises :class:`SemGANError`."""
        bad = [p for p, ok in finite_tensors(state) if not ok]
        if bad:
            raise SemGANError(f"holds non-finite values ({', '.join(bad[:4])}{', ...' if len(bad) > 4 else ''})")
        for name, net in self.task.networks.items():
            weights = state.get(name)
            if not isinstance(weights, dict):
                raise SemGANError(f"holds no {name} weights; it is not a checkpoint of this run's model family")
            expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
            got = {k: tuple(v.shape) for k, v in weights.items() if torch.is_tensor(v)}
            if got != expected:
                wrong = sorted(set(got) ^ set(expected)) or [k for k in expected if got[k] != expected[k]]
                raise SemGANError(f"holds {name} weights that do not fit this run's config ({', '.join(wrong[:3])}"
                                  f"{', ...' if len(wrong) > 3 else ''}: {len(wrong)} tensors differ in name or "
                                  "shape)")

    def _load(self, state: dict[str, Any], path: Path) -> int:
        """Load ``state`` (read from ``path``) into the task, engine and torch's RNG; returns its step."""
        data, now = state.get("data", {}), self.dataset.describe()
        if list(data.get("class_names", [])) != list(now["class_names"]) or data.get("resolution") != now["resolution"]:
            raise SemGANError(
                f"the checkpoint was trained on {len(data.get('class_names', []))} classes at "
                f"{data.get('resolution')}px ({', '.join(data.get('class_names', []))}); the data now has "
                f"{len(now['class_names'])} classes at {now['resolution']}px ({', '.join(now['class_names'])})"
            )
        try:
            self.task.load_state_dict(state)
            self.engine.load_state_dict(state)
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:  # what check() does not see: optimizers, RNGs
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SemGANError(f"{path} does not fit this run: {reason[:300]}") from exc
        _restore_rng(state["rng"], self.engine.env, self.engine.device, self.cfg.train.seed, int(state["step"]))
        step = int(state["step"])
        self.last = (step, path)
        return step

    def save(self, step: int, name: str = RunDir.LATEST, *, losses: Sequence[dict[str, torch.Tensor]] = (),
             extra: dict[str, Any] | None = None) -> None:
        """Write the state as checkpoint ``name``, unless a number in it, or a loss since the last log, is not
        finite: then stop with :class:`TrainingDiverged` and leave the files on disk as they were."""
        state = self.state(step)
        bad = [path for path, ok in finite_tensors(state) if not ok]
        bad += [f"{k} at step {step - len(losses) + i + 1}" for i, s in enumerate(losses) for k, v in s.items()
                if not bool(torch.isfinite(v))]
        if self.engine.env.any(bool(bad)):
            self.diverged(step, f"non-finite values in {', '.join(bad[:6]) or 'another rank'}"
                                + (f" and {len(bad) - 6} more" if len(bad) > 6 else ""))
        if self.engine.env.is_main:
            self.run.save_checkpoint({**state, **(extra or {})}, name, keep=self.cfg.train.keep_checkpoints)
        if name == RunDir.LATEST:
            self.last = (step, self.run.checkpoint_path())

    def rollback(self, step: int, problem: str, allowed: int) -> int:
        """The collapse guard: go back to ``healthy.pt`` with fresh random streams; returns its step.

        The abandoned steps' checkpoints and log lines are dropped, one event line records the rollback, and
        the new state is written as the latest checkpoint at once, so a resume from here equals a straight run.

        Raises:
            TrainingCollapsed: after ``allowed`` rollbacks, once the collapsed state is saved beside healthy.pt.
        """
        healthy = self.run.checkpoint_path(Evaluator.HEALTHY)
        if self.rollbacks >= allowed:
            self.save(step)  # nothing trained is lost, not even a collapsed model
            raise TrainingCollapsed(
                f"step {step}: {problem}; the collapse guard went back {self.rollbacks} time(s) already "
                f"(train.guard_rollbacks={allowed}), so the run stops here. Every file is kept: the collapsed state "
                f"in {self.run.checkpoint_path()}, the last healthy one in {healthy} (step "
                f"{self.run.checkpoint_step(Evaluator.HEALTHY)}). Try another train.seed or a lower train.lr")
        state = self.run.load_checkpoint(Evaluator.HEALTHY, map_location=self.engine.device)
        to_step = self._load(state, healthy)
        self.rollbacks += 1
        seed = self.cfg.train.seed + ROLLBACK_SEED_STRIDE * self.rollbacks
        self.task.reseed(seed)
        torch.manual_seed(seed + 7919 * self.engine.env.rank)
        if self.engine.env.is_main:
            self.run.drop_checkpoints_after(to_step)
            self.run.truncate_logs(to_step)
            self.run.append_stats({"step": to_step, "event": "rollback", "at_step": step, "signal": problem,
                                   "checkpoint": str(healthy), "rollback": self.rollbacks, "of": allowed,
                                   "seed": seed, "time": time.time()})
        self.save(to_step)
        return to_step

    def diverged(self, step: int, what: str) -> None:
        kept = (f"the last finite checkpoint is {self.last[1]} (step {self.last[0]})" if self.last else
                "no checkpoint was written")
        raise TrainingDiverged(f"training diverged at step {step}: {what}; nothing was saved for this step, {kept}. "
                               "Lower train.lr or change the recipe, then start again or resume from it")


def _evaluate(evaluator: Evaluator, task: Task, step: int, logger: Logger, stop: StopFlag, env: DistEnv
              ) -> str | None:
    """Evaluate; returns what the family found broken, or None. With one process a stop signal abandons the
    evaluation at once (the step's checkpoint is written and a resume evaluates the step again). Ranks finish
    it together: a collective cannot be left."""
    with contextlib.suppress(Interrupted):  # the flag is set: the loop writes the step's checkpoint and stops
        return evaluator(task, step, logger, guard=lambda: stop.interruptible(enabled=not env.active))
    return None


def _check_room(run: RunDir, task: Task, keep: int) -> None:
    """Before the first step: the run folder must take the checkpoints, which are written beside the kept ones."""
    probe = run.root / f".write-probe{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SemGANError(f"cannot write to the run folder {run.root}: {exc.strerror or exc}") from exc
    # weights and buffers, and Adam's two moments per weight: the bulk of a checkpoint
    nbytes = sum(t.numel() * t.element_size() * (3 if t.requires_grad else 1)
                 for net in task.networks.values() for t in [*net.parameters(), *net.buffers()])
    need = nbytes * (max(keep, 1) + 1)  # the kept ones and the one being written
    free = shutil.disk_usage(run.root).free
    if free < need:
        raise SemGANError(f"{run.root} has {_mib(free)} free; the checkpoints of this run need about {_mib(need)} "
                          f"({_mib(nbytes)} each, {max(keep, 1)} kept + 1 being written; train.keep_checkpoints)")


def _mib(n: float) -> str:
    """A size for a message: never rounded to a misleading 0 MiB."""
    return f"{n / 2**20:.0f} MiB" if n >= 10 * 2**20 else f"{n / 2**20:.2f} MiB"


def _restore_rng(rng: dict[str, Any], env: DistEnv, device: torch.device, seed: int, step: int) -> None:
    """Each rank's torch RNG: its own saved state when the world size is unchanged, else rank 0's saved state
    and fresh seeds for the others (a run moved to another number of processes continues, not bit for bit)."""
    ranks = rng.get("ranks")
    own = ranks[env.rank] if ranks is not None and len(ranks) == env.world else (rng if env.rank == 0 else None)
    if own is None:
        torch.manual_seed(seed + 7919 * env.rank + 104_729 * step)
        return
    torch.set_rng_state(own["torch"])
    if device.type == "cuda" and "cuda" in own:
        torch.cuda.set_rng_state(own["cuda"], device)


def fit(
    task: Task, run: RunDir, cfg: RunConfig, engine: Engine, dataset: LabelDataset, *, resume: bool = False,
    progress: bool = True,
) -> None:
    """Run ``task`` from its current state (or the run's checkpoint, with ``resume``) to ``cfg.train.steps``."""
    env, t = engine.env, cfg.train
    ckpt = _Checkpoints(run, cfg, task, engine, dataset)
    resumable = run.has_checkpoint() or bool(run.checkpoint_steps())
    step = ckpt.restore() if resume and resumable else 0
    if step >= t.steps and resumable:
        return  # nothing to train: the run and its config stay as they are, no empty TensorBoard file
    if env.is_main:
        run.root.mkdir(parents=True, exist_ok=True)
        _check_room(run, task, t.keep_checkpoints)
        run.write_config(cfg, {**dataset.describe(), "meta": dataset.meta})
        run.truncate_logs(step)  # logged after the checkpoint by a session that then died
    env.barrier()

    label = cfg.model.label
    logger = Logger(run, step, t.steps, f"{label} {dataset.name}", enabled=env.is_main, progress=progress,
                    config=to_dict(cfg))
    guarded = t.guard_rollbacks > 0 and bool(cfg.eval.metrics)
    evaluator = (Evaluator(cfg.eval, t.steps, run, env, lambda name, extra: ckpt.save(step, name, extra=extra),
                           collapse_guard=guarded) if cfg.eval.metrics else None)
    stop = StopFlag()
    pending: list[dict[str, torch.Tensor]] = []  # per-step scalars since the last log
    last_time, last_step = time.perf_counter(), step

    def write_grid() -> None:
        if env.is_main:
            grid = task.sample_grid()
            run.write_grid(step, grid)
            logger.image("samples", grid, step)

    try:
        with stop.installed():
            if step == 0:
                write_grid()
                if guarded:  # the start is the first healthy state: a collapse at the first evaluation goes back here
                    ckpt.save(0, Evaluator.HEALTHY)
            elif evaluator is not None and evaluator.due(step) and env.broadcast(evaluator.missing(step)):
                _evaluate(evaluator, task, step, logger, stop, env)  # abandoned by a stop signal last time
            while step < t.steps:
                engine.begin_step(step)
                pending.append(task.train_step(step))
                engine.end_step()
                step += 1
                logger.advance()
                stopping = env.any(stop.is_set())
                if step % t.log_every == 0 or step == t.steps:
                    stats = env.mean({k: torch.stack([p[k] for p in pending]).mean() for k in pending[0]})
                    if not all(math.isfinite(v) for v in stats.values()):
                        ckpt.diverged(step, "losses " + ", ".join(f"{k}={v:.4g}" for k, v in stats.items()))
                    pending.clear()
                    now = time.perf_counter()
                    stats["steps_per_s"] = (step - last_step) / max(now - last_time, 1e-9)
                    stats["time"] = time.time()  # wall clock, for wall-time reports
                    last_time, last_step = now, step
                    logger.scalars(step, stats)
                if step % t.sample_every == 0 or step == t.steps:
                    write_grid()
                if evaluator is not None and evaluator.due(step) and not stopping:
                    t_eval = time.perf_counter()
                    problem = _evaluate(evaluator, task, step, logger, stop, env)
                    last_time += time.perf_counter() - t_eval  # steps_per_s counts training time only
                    stopping = env.any(stop.is_set())
                    if problem is not None and guarded and not stopping:
                        at, step = step, ckpt.rollback(step, problem, t.guard_rollbacks)
                        logger.rewind(step)
                        logger.warn(f"step {at}: {problem}; rolled back to {run.checkpoint_path(Evaluator.HEALTHY)} "
                                    f"(step {step}) with fresh random streams, rollback {ckpt.rollbacks} of "
                                    f"{t.guard_rollbacks}", at)
                        logger.scalar("guard/rollbacks", ckpt.rollbacks, at)
                        pending.clear()
                        last_time, last_step = time.perf_counter(), step
                        continue
                if step % t.ckpt_every == 0 or step == t.steps or stopping:
                    ckpt.save(step, losses=pending)
                if stopping:
                    raise TrainingInterrupted(
                        f"stopped by a signal at step {step}; checkpoint saved to {run.checkpoint_path()}. "
                        f"Continue with: semgan train --out {run.root} --resume --steps {t.steps}"
                    )
            if ckpt.last is None:  # steps == 0: still leave a checkpoint (decided alike on every rank)
                ckpt.save(step)
    except OSError as exc:  # a log, grid or metric write refused: a full disk, a folder made read-only
        kept = f"the last checkpoint is {ckpt.last[1]} (step {ckpt.last[0]})" if ckpt.last else "no checkpoint"
        raise SemGANError(f"cannot write to the run folder at step {step}: {exc.filename or run.root}: "
                          f"{exc.strerror or exc}; {kept}. Fix the folder, then --resume") from exc
    finally:
        logger.close()
