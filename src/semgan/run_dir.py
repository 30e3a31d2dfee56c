"""A run folder: every path, write and log read of one training run, in one place.

Layout::

    config.json               resolved config, package version, the dataset's description
    checkpoints/step-NNNNNN.pt  the last train.keep_checkpoints checkpoints (every train.ckpt_every steps, the end)
    checkpoints/latest.pt     the newest of those (a hard link where the file system has them, else a copy)
    checkpoints/best-<m>.pt   the best evaluation of metric m so far
    checkpoints/healthy.pt    with the collapse guard: the last evaluated state that drew every class
    .lock                     held by the one process that writes the run (see :meth:`RunDir.lock`)
    stats.jsonl               training scalars, one line per train.log_every steps; events (rollbacks)
    metric-<m>.jsonl          evaluations of metric m, one line per evaluation
    samples/step-NNNNNN.png   the fixed-input sample grid at each train.sample_every step
    grid.png                  the latest of those grids
    tb/                       TensorBoard events

Everything that other commands read is written atomically (:mod:`semgan.io`) and every checkpoint is read back
after writing; logs are appended a line at a time and read back tolerating a torn last line. A resume takes the
newest checkpoint that loads, saying so when that is not ``latest.pt``. Nothing outside this module spells
these names.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from semgan import __version__
from semgan.checkpoint import load_checkpoint, save_checkpoint, verify_checkpoint
from semgan.config import RunConfig, from_dict, to_dict
from semgan.errors import SemGANError
from semgan.io import TMP_SUFFIX, append_jsonl, read_jsonl, rewrite_jsonl, write_json
from semgan.labels import write_rgb_png


class RunDir:
    """The run folder at ``root`` (which need not exist yet)."""

    CONFIG = "config.json"
    STATS = "stats.jsonl"
    LATEST = "latest"
    LOCK = ".lock"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    # ----------------------------------------------------------------------------------------------- paths

    @property
    def config_path(self) -> Path:
        return self.root / self.CONFIG

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def stats_path(self) -> Path:
        return self.root / self.STATS

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def grid_path(self) -> Path:
        return self.root / "grid.png"

    @property
    def tb_dir(self) -> Path:
        return self.root / "tb"

    def checkpoint_path(self, name: str = LATEST) -> Path:
        return self.checkpoints / f"{name}.pt"

    def metric_path(self, name: str) -> Path:
        return self.root / f"metric-{name}.jsonl"

    def sample_path(self, step: int) -> Path:
        return self.samples / f"step-{step:06d}.png"

    # ---------------------------------------------------------------------------------------------- config

    def exists(self) -> bool:
        """Whether the folder holds a run (its ``config.json``)."""
        return self.config_path.is_file()

    def read_document(self) -> dict[str, Any]:
        """The whole ``config.json``: ``semgan_version``, ``config``, ``dataset``."""
        if not self.exists():
            raise SemGANError(f"{self.root} is not a semgan run folder (no {self.CONFIG})")
        try:
            doc = json.loads(self.config_path.read_text())
            if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
                raise ValueError("no 'config' mapping")
            return doc
        except (OSError, ValueError) as exc:
            raise SemGANError(f"{self.config_path} is unreadable or not a semgan run config: {exc}") from exc

    def read_config(self) -> RunConfig:
        """The run's resolved configuration."""
        doc = self.read_document()
        try:
            return from_dict(doc["config"])
        except SemGANError as exc:
            raise SemGANError(f"{self.config_path}: {exc}") from exc

    def write_config(self, cfg: RunConfig, dataset: dict[str, Any]) -> None:
        """Write ``config.json`` (the resolved config and the dataset's description with its provenance)."""
        write_json(self.config_path, {"semgan_version": __version__, "config": to_dict(cfg), "dataset": dataset})

    # ----------------------------------------------------------------------------------------- checkpoints

    def has_checkpoint(self, name: str = LATEST) -> bool:
        return self.checkpoint_path(name).is_file()

    def checkpoint_names(self) -> list[str]:
        return sorted(p.stem for p in self.checkpoints.glob("*.pt")) if self.checkpoints.is_dir() else []

    def save_checkpoint(self, state: dict[str, Any], name: str = LATEST, keep: int = 0) -> Path:
        """Write checkpoint ``name`` atomically and read it back; return its path.

        ``name == "latest"`` writes ``step-NNNNNN.pt``, points ``latest.pt`` at it and keeps the newest ``keep``
        step files (0 = all). Until the new file has been read back, ``latest.pt`` stays the previous one.
        """
        step = int(state["step"])
        path = self.checkpoint_path(f"step-{step:06d}" if name == self.LATEST else name)
        save_checkpoint(path, state)
        verify_checkpoint(path, step)
        if name != self.LATEST:
            return path
        self._point_latest(path)
        steps = self.checkpoint_steps()
        for old in steps[:-keep] if keep > 0 else []:
            self.checkpoint_path(f"step-{old:06d}").unlink(missing_ok=True)
        return self.checkpoint_path()

    def _point_latest(self, target: Path) -> None:
        latest = self.checkpoint_path()
        tmp = latest.with_name(f".{latest.name}.link{TMP_SUFFIX}")
        tmp.unlink(missing_ok=True)
        try:
            os.link(target, tmp)  # no second copy of the weights
        except OSError:
            shutil.copyfile(target, tmp)  # file systems without hard links
        os.replace(tmp, latest)

    def checkpoint_steps(self) -> list[int]:
        """The steps of the kept ``step-NNNNNN.pt`` checkpoints, oldest first."""
        stems = (p.stem.removeprefix("step-") for p in self.checkpoints.glob("step-*.pt"))
        return sorted(int(s) for s in stems if s.isdigit())

    def load_resume_checkpoint(self, map_location: str | torch.device = "cpu",
                               check: Callable[[dict[str, Any]], None] | None = None) -> tuple[dict[str, Any], Path]:
        """The newest checkpoint that loads (and passes ``check``, which raises :class:`SemGANError` saying what
        is wrong with a state): ``latest.pt``, else the kept step files from the newest down.

        Says on stderr which one it took when it is not ``latest.pt``, and why.

        Raises:
            SemGANError: when none loads, naming each file and its fault.
        """
        candidates = [self.checkpoint_path()] + [self.checkpoint_path(f"step-{s:06d}")
                                                 for s in reversed(self.checkpoint_steps())]
        faults: list[str] = []
        for path in candidates:
            if not path.is_file():
                continue
            try:
                state = load_checkpoint(path, map_location=map_location)
                if check is not None:
                    try:
                        check(state)
                    except SemGANError as exc:
                        raise SemGANError(f"{path} {exc}") from exc
            except SemGANError as exc:
                faults.append(str(exc))
                continue
            if faults:
                print(f"semgan: {'; '.join(faults)}\nsemgan: resuming from {path} (step {state['step']}) instead",
                      file=sys.stderr)
            return state, path
        raise SemGANError(f"no loadable checkpoint in {self.checkpoints}: " + ("; ".join(faults) or "none written"))

    def load_checkpoint(self, name: str = LATEST, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        return load_checkpoint(self.checkpoint_path(name), map_location=map_location)

    def checkpoint_step(self, name: str = LATEST) -> int | None:
        """The step of a checkpoint, or None if there is none, read without loading its weights."""
        path = self.checkpoint_path(name)
        if not path.is_file():
            return None
        try:
            # mmap: only the small "step" entry is read, not every weight tensor.
            return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["step"])
        except Exception as exc:  # unpickling errors come in many types; a damaged file is the user's to fix
            raise SemGANError(f"cannot read the step of {path}: {exc}") from exc

    # ------------------------------------------------------------------------------------- one writer, no litter

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's writer lock (``.lock``, an advisory ``flock``) for the ``with`` block.

        Two processes writing one run folder would interleave checkpoints and logs; the second is refused with
        the first one's process id. The lock dies with its process, so a killed run never leaves the folder
        locked. Where ``fcntl`` does not exist (Windows) there is no lock.

        Raises:
            SemGANError: when another process holds it.
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / self.LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise SemGANError(f"{self.root} is being written by another semgan process (pid {holder}); wait "
                                  "for it to finish or stop it, then resume") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete the temporary files of writes that a killed process left half-done; returns them.

        Only call this holding :meth:`lock`: another writer's temporaries are not stale.
        """
        stale = [p for folder in (self.root, self.checkpoints, self.samples) if folder.is_dir()
                 for p in folder.glob(f".*{TMP_SUFFIX}") if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    @classmethod
    def is_own_litter(cls, path: Path) -> bool:
        """Whether ``path`` is a file a run folder may hold before its config: a lock or a stale temporary."""
        return path.name == cls.LOCK or (path.name.startswith(".") and path.name.endswith(TMP_SUFFIX))

    # ------------------------------------------------------------------------------------------------ logs

    def append_stats(self, record: dict[str, Any]) -> None:
        append_jsonl(self.stats_path, record)

    def read_stats(self) -> list[dict[str, Any]]:
        """The training scalars of ``stats.jsonl`` by step (without its event lines)."""
        return sorted((r for r in read_jsonl(self.stats_path) if "event" not in r), key=lambda r: int(r.get("step", 0)))

    def read_events(self) -> list[dict[str, Any]]:
        """The event lines of ``stats.jsonl`` (``{"step": ..., "event": "rollback", ...}``), in the order written."""
        return [r for r in read_jsonl(self.stats_path) if "event" in r]

    def append_metric(self, name: str, record: dict[str, Any]) -> None:
        append_jsonl(self.metric_path(name), record)

    def read_metric(self, name: str) -> list[dict[str, Any]]:
        """The evaluations of metric ``name`` by step."""
        return sorted(read_jsonl(self.metric_path(name)), key=lambda r: int(r.get("step", 0)))

    def metric_names(self) -> list[str]:
        return sorted(p.stem.removeprefix("metric-") for p in self.root.glob("metric-*.jsonl"))

    def drop_checkpoints_after(self, step: int) -> None:
        """Delete the kept ``step-NNNNNN.pt`` files after ``step`` (a branch of training that was abandoned)."""
        for later in [s for s in self.checkpoint_steps() if s > step]:
            self.checkpoint_path(f"step-{later:06d}").unlink(missing_ok=True)

    def truncate_logs(self, step: int) -> None:
        """Drop log lines after ``step``: what a run logged after its checkpoint and then lost to a crash."""
        for path in [self.stats_path, *(self.metric_path(m) for m in self.metric_names())]:
            if not path.is_file():
                continue
            records = read_jsonl(path)
            kept = [r for r in records if int(r.get("step", 0)) <= step]
            if len(kept) != len(records) or len(path.read_text().splitlines()) != len(records):
                rewrite_jsonl(path, kept)  # also drops a torn last line, so appends start on a fresh line

    # ----------------------------------------------------------------------------------------------- grids

    def write_grid(self, step: int, image: torch.Tensor) -> None:
        """Store the (3, H, W) uint8 sample grid of ``step`` (and as the latest ``grid.png``)."""
        self.samples.mkdir(parents=True, exist_ok=True)
        write_rgb_png(self.sample_path(step), image)
        write_rgb_png(self.grid_path, image)

    def sample_steps(self) -> list[int]:
        """The steps that have a sample grid, in order."""
        stems = (p.stem.removeprefix("step-") for p in self.samples.glob("step-*.png"))
        return sorted(int(s) for s in stems if s.isdigit())


def find_checkpoint(run: str | Path, which: str = "latest") -> Path:
    """``run`` is a run folder (its checkpoint ``which``, e.g. ``latest`` or ``best-swd``) or a checkpoint file."""
    path = Path(run)
    if path.is_file():
        return path
    if not path.is_dir():
        raise SemGANError(f"run folder not found: {path}")
    folder = RunDir(path)
    if not folder.has_checkpoint(which):
        found = folder.checkpoint_names()
        hint = f"available: {', '.join(found)}" if found else "is this a semgan run folder?"
        raise SemGANError(f"no checkpoint {folder.checkpoint_path(which)}; {hint}")
    return folder.checkpoint_path(which)
