"""Model families: each trains through the one loop of :mod:`semgan.train` (see :mod:`semgan.tasks.base`).

A family is a task class registered with :func:`~semgan.tasks.base.register_family` under the name of its model
section; importing the family modules here registers them (as :mod:`semgan.data` does for datasets).
"""

from __future__ import annotations

from semgan.tasks import encoder, pix2pix, segmenter, semgan  # noqa: F401  (registers the families)
from semgan.tasks.base import FAMILIES, Task, build_task, load_task_data, register_family

__all__ = ["FAMILIES", "Task", "build_task", "load_task_data", "register_family"]
