"""What the training loop lends a model family: its device, precision, compiler and the other ranks.

A family builds its networks and optimizers through the engine (:meth:`Engine.prepare`, :meth:`Engine.adam`),
runs its forward passes under :meth:`Engine.autocast`, and hands every update to :meth:`Engine.step`, which
scales the loss (fp16), backpropagates, averages the gradients over ranks and steps the optimizer. So a family
writes its losses once and gets bf16, fp16, channels_last, torch.compile and torchrun without a line of its
own, as with nanoGPT's twenty lines of DDP and autocast.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from semgan.config import TrainConfig
from semgan.distributed import DistEnv
from semgan.errors import SemGANError
from semgan.parallel import LOCAL, BatchSync, average_gradients

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX); elsewhere oneDNN emulates it slowly."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def check_compiler(device: torch.device) -> None:
    """Compile and run a one-line function, so that a missing compiler fails now, not at the first step."""
    try:
        import torch._dynamo

        if not torch._dynamo.is_dynamo_supported():
            raise RuntimeError("torch.compile does not support this Python version")
        probe = torch.compile(lambda x: x * 2 + 1, dynamic=False)
        probe(torch.ones(8, device=device))
    except Exception as exc:  # the compiler stack fails in many ways; all of them mean "no compile here"
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        raise SemGANError(f"train.compile=true but torch.compile does not work on this machine ({reason[:200]}); "
                          "install a C++ compiler and the Python headers (e.g. g++, python3-dev), or set "
                          "train.compile=false") from exc


class Engine:
    """Device, precision, compilation and data parallelism for one rank of a run.

    Args:
        cfg: the run's training section (``precision``, ``compile``, ``channels_last``).
        device: this rank's device.
        env: this rank's place among the ranks.
    """

    def __init__(self, cfg: TrainConfig, device: torch.device, env: DistEnv | None = None) -> None:
        self.device, self.env = device, env or DistEnv()
        self.precision, self.compile, self.channels_last = cfg.precision, cfg.compile, cfg.channels_last
        self.dtype = DTYPES[cfg.precision]
        if cfg.precision == "fp16" and device.type != "cuda":
            raise SemGANError(f"train.precision=fp16 needs a CUDA device (train.device={device}); on a CPU use "
                              "bf16 or fp32")
        if cfg.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise SemGANError(f"train.precision=bf16 but {torch.cuda.get_device_name(device)} has no bf16; "
                              "use fp16 or fp32")
        if cfg.precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
            warnings.warn("train.precision=bf16 on a CPU without AVX512-BF16 or AMX: bf16 is emulated there "
                          "and much slower than fp32", stacklevel=2)
        world = self.env.world
        if cfg.batch % world:
            raise SemGANError(f"train.batch={cfg.batch} does not split over {world} processes; use a multiple of "
                              f"{world}, e.g. train.batch={world * max(1, cfg.batch // world)}")
        if cfg.compile:
            check_compiler(device)
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none.
        self.scaler = torch.amp.GradScaler(device.type) if cfg.precision == "fp16" else None
        self.sync: BatchSync = (
            BatchSync(self.env.world, self.env.rank) if self.env.active else LOCAL
        )
        self.lr_factor = cfg.lr_factor
        self.optimizers: list[tuple[torch.optim.Optimizer, float]] = []  # (optimizer, its base learning rate)

    # ------------------------------------------------------------------------------------------- building

    def prepare(self, module: nn.Module) -> Callable[..., Any]:
        """Move ``module`` to the device (channels_last if asked) and return what the step should call:
        the module itself, or its compiled wrapper (which shares its parameters)."""
        module.to(self.device)
        if self.channels_last:
            module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return torch.compile(module) if self.compile else module

    def input(self, x: torch.Tensor) -> torch.Tensor:
        """A network input (B, C, H, W) in the networks' memory format."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def adam(self, params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float], eps: float
             ) -> torch.optim.Adam:
        """Adam with its fused kernel where this torch and device have one (one kernel for all parameters),
        else the multi-tensor ``foreach`` implementation."""
        params = list(params)
        try:
            opt = torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, fused=True)
        except (RuntimeError, TypeError):
            opt = torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, foreach=True)
        self.optimizers.append((opt, lr))  # begin_step follows train.lr_decay's schedule for it
        return opt

    # ------------------------------------------------------------------------------------------- stepping

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The forward passes' precision: a no-op at fp32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """One update: clear the gradients, backpropagate ``loss`` (scaled at fp16), average the gradients
        over ranks, step the optimizer (which the scaler skips if a gradient overflowed)."""
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, enabled=False):  # backward runs in the forward's dtypes
            (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        if self.env.active:
            average_gradients([p for g in optimizer.param_groups for p in g["params"]], group=None)
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    def begin_step(self, step: int) -> None:
        """Before training step ``step``: every optimizer's learning rate from the schedule (``train.lr_decay``).
        Set from the step alone, so a resumed run follows it exactly."""
        factor = self.lr_factor(step)
        for opt, lr in self.optimizers:
            for group in opt.param_groups:
                group["lr"] = lr * factor

    def end_step(self) -> None:
        """After every optimizer of a training step has stepped: adapt the fp16 loss scale."""
        if self.scaler is not None:
            self.scaler.update()

    # ---------------------------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict()} if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])


def finite_tensors(tree: Any) -> Iterator[tuple[str, bool]]:
    """(path, finite) for every floating-point tensor in a nested dict/list (a checkpoint's state), in order."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from ((f"{k}{'' if not p or p.startswith('[') else '.'}{p}", ok) for p, ok in finite_tensors(v))
    elif isinstance(tree, list | tuple):
        for i, v in enumerate(tree):
            yield from ((f"[{i}].{p}" if p else f"[{i}]", ok) for p, ok in finite_tensors(v))
    elif isinstance(tree, torch.Tensor) and tree.is_floating_point():
        yield "", bool(torch.isfinite(tree).all())
