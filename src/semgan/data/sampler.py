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


class MixedSampler:
    """Batches drawn from two index pools in a fixed proportion: ``batch - extra`` indices of ``[0, n_main)`` and
    ``extra`` of ``[n_main, n_main + n_extra)``, each pool in its own seeded epochs, the batch's order shuffled.

    Why: a few real pairs beside many dreamed ones are otherwise a small share of every batch (85 of 1085 is 8 %);
    a fixed share keeps the real pairs' weight whatever the dreamed set's size (docs/results.md, issue 25).
    """

    def __init__(self, n_main: int, n_extra: int, batch: int, extra: int, generator: torch.Generator) -> None:
        if not 0 < extra < batch:
            raise SemGANError(f"a mixed batch of {batch} takes {extra} extra pairs; expected 1 to {batch - 1}")
        if batch - extra > n_main or extra > n_extra:
            raise SemGANError(f"a mixed batch of {batch - extra} + {extra} pairs does not fit pools of {n_main} and "
                              f"{n_extra} pairs: lower train.batch or change the share")
        self.n_main, self.generator = n_main, generator
        self.main = EpochSampler(n_main, batch - extra, generator)
        self.extra = EpochSampler(n_extra, extra, generator)

    def next(self) -> torch.Tensor:
        """The next (batch,) int64 indices into the concatenated pools."""
        idx = torch.cat([self.main.next(), self.extra.next() + self.n_main])
        # shuffled, so that every rank's contiguous share of the batch holds both kinds
        return idx[torch.randperm(len(idx), generator=self.generator)]

    def state_dict(self) -> dict[str, Any]:
        return {"main": self.main.state_dict(), "extra": self.extra.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.main.load_state_dict(state["main"])
        self.extra.load_state_dict(state["extra"])  # the same generator as main's: the same state
