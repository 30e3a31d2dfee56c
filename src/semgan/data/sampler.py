"""The order in which training visits a dataset."""

from __future__ import annotations

from typing import Any

import torch

from semgan.errors import SemGANError


class EpochSampler:
    """Batches of dataset indices: a fresh seeded permutation per epoch, the remainder dropped.

    Every rank of a run holds the same sampler and draws the same global batch; each then takes its own
    contiguous share (:meth:`semgan.parallel.BatchSync.shard`), so the shares of an epoch are disjoint and a
    checkpoint from N ranks continues the same order on M.
    """

    def __init__(self, n: int, batch: int, generator: torch.Generator) -> None:
        if batch > n:
            raise SemGANError(f"train.batch={batch} is larger than the dataset ({n} maps)")
        self.n, self.batch, self.generator = n, batch, generator
        self.perm = torch.randperm(n, generator=generator)
        self.pos = 0

    def next(self) -> torch.Tensor:
        """The next (batch,) int64 indices."""
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
