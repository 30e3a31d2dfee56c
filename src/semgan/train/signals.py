"""Ctrl-C and SIGTERM as a flag that the loop reads between steps, so no checkpoint is ever cut mid-step."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


class Interrupted(Exception):
    """Raised by the signal handler inside :meth:`StopFlag.interruptible` (the flag is set as well)."""


class StopFlag:
    """Set by SIGINT or SIGTERM while :meth:`installed` is active; a second signal interrupts at once."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._interruptible = False

    def is_set(self) -> bool:
        return self.signal is not None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:  # a second Ctrl-C: give up on the graceful path
            raise KeyboardInterrupt
        self.signal = int(signum)
        if self._interruptible:
            raise Interrupted(f"signal {signum}")

    @contextmanager
    def interruptible(self, enabled: bool = True) -> Iterator[None]:
        """Within the block a signal also raises :class:`Interrupted` at once: for work that may be abandoned
        (an evaluation) and that would otherwise keep a stopping run busy for minutes."""
        self._interruptible = enabled
        try:
            if enabled and self.is_set():
                raise Interrupted(f"signal {self.signal}")
            yield
        finally:
            self._interruptible = False

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        previous: dict[signal.Signals, Any] = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._handler)
        except ValueError:  # not the main thread: signals stay as they are
            pass
        try:
            yield self
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
