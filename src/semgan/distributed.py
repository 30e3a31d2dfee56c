"""Several processes, one run: ``torchrun --nproc-per-node N [--nnodes M ...] -m semgan train ...``.

torchrun starts one process per device and tells each its place through the environment (``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` or a c10d rendezvous). :func:`setup` reads it,
joins the process group (NCCL between GPUs, gloo on CPUs), picks each rank's device from ``LOCAL_RANK``,
and returns a :class:`DistEnv`; a plain ``semgan train`` gets a one-process ``DistEnv`` and no collectives.

Control traffic (the stop flag, RNG states, evaluation samples) goes through a gloo group on the CPU, so it
never waits on the GPU stream.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from semgan.devices import resolve_device
from semgan.errors import SemGANError

T = TypeVar("T")


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands among the ranks of a run (``world == 1``: a plain single process)."""

    rank: int = 0
    local_rank: int = 0
    world: int = 1
    backend: str = ""
    control: Any = None  # a gloo process group for host-side traffic (None = the default group)
    owns_group: bool = False  # whether setup() created the process group (and teardown() destroys it)

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only rank that writes files, logs and prints."""
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any (e.g. a stop signal that reached one rank)."""
        if not self.active:
            return flag
        t = torch.tensor([int(flag)], dtype=torch.int32)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.control)
        return bool(t.item())

    def gather(self, obj: T) -> list[T]:
        """Every rank's ``obj``, in rank order, on every rank (pickled; for small host-side objects)."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj, group=self.control)
        return out

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, float]:
        """Scalars averaged over ranks, as floats (one all-reduce; a host sync, for logging only)."""
        keys = sorted(values)
        t = torch.stack([values[k].detach().float().cpu() for k in keys]) if keys else torch.zeros(0)
        if self.active:
            dist.all_reduce(t, group=self.control)
            t /= self.world
        return {k: float(v) for k, v in zip(keys, t.tolist(), strict=True)}

    def broadcast_buffers(self, modules: Iterable[nn.Module]) -> None:
        """Give every rank rank 0's buffers (batch-norm running statistics drift apart per rank, as in DDP
        without ``broadcast_buffers``; rank 0's are the ones its checkpoint holds)."""
        if not self.active:
            return
        for module in modules:
            for buf in module.buffers():
                dist.broadcast(buf, src=0)

    def barrier(self) -> None:
        if self.active:
            dist.barrier(group=self.control)


def launched_world_size() -> int:
    """The number of processes torchrun started for this run (1 without torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise SemGANError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from None


def setup(device_name: str) -> tuple[DistEnv, torch.device]:
    """Join the run's process group (when launched by torchrun) and choose this rank's device.

    Args:
        device_name: ``train.device``; under torchrun ``auto`` and ``cuda`` mean ``cuda:LOCAL_RANK``.

    Returns:
        The rank's place and its device.
    """
    world = launched_world_size()
    if world <= 1:
        return DistEnv(), resolve_device(device_name)
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device_name.startswith("cuda:"):
        raise SemGANError(f"train.device={device_name!r} under torchrun: every rank takes cuda:LOCAL_RANK; "
                          "use train.device=cuda (or auto)")
    device = resolve_device(device_name)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise SemGANError(f"LOCAL_RANK={local_rank} but this machine has {torch.cuda.device_count()} CUDA "
                              "device(s); start at most that many processes per node")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend, timeout=timedelta(minutes=30))
    control = dist.new_group(backend="gloo") if backend != "gloo" else None
    return DistEnv(rank=rank, local_rank=local_rank, world=world, backend=backend, control=control,
                   owns_group=owns), device


def teardown(env: DistEnv) -> None:
    if env.owns_group and dist.is_initialized():
        dist.destroy_process_group()
