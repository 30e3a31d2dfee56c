"""Model families: each trains through the one loop of :mod:`semgan.train` (see :mod:`semgan.tasks.base`)."""

from __future__ import annotations

from semgan.tasks.base import FAMILIES, Task, build_task, load_task_data

__all__ = ["FAMILIES", "Task", "build_task", "load_task_data"]
