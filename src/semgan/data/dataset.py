"""The one face every dataset shares: label maps in memory as uint8, class names and a palette; and how
decoded maps are stacked into one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from semgan.data.classes import ClassSet
from semgan.data.files import train_val_split
from semgan.errors import SemGANError


@dataclass(frozen=True, eq=False)
class LabelDataset:
    """A set of semantic label maps.

    Attributes:
        name: dataset name, e.g. ``"shapes"``.
        labels: (N, H, W) uint8 tensor of class indices in [0, K).
        class_names: K names, index = class.
        palette: (K, 3) uint8 tensor, the colour of each class.
        meta: free-form provenance (source path, seed, class set, ...), JSON-serialisable.
        photos: (N, 3, H, W) uint8 RGB photo of each map, for paired (pix2pix) data; None for maps alone.
    """

    name: str
    labels: torch.Tensor
    class_names: tuple[str, ...]
    palette: torch.Tensor
    meta: dict[str, object] = field(default_factory=dict)
    photos: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.labels.dtype != torch.uint8 or self.labels.dim() != 3:
            raise SemGANError(
                f"dataset {self.name!r}: labels must be a (N, H, W) uint8 tensor, "
                f"got {self.labels.dtype} of shape {tuple(self.labels.shape)}"
            )
        K = len(self.class_names)
        if tuple(self.palette.shape) != (K, 3) or self.palette.dtype != torch.uint8:
            raise SemGANError(
                f"dataset {self.name!r}: palette must be ({K}, 3) uint8 for {K} classes, "
                f"got {self.palette.dtype} of shape {tuple(self.palette.shape)}"
            )
        if self.labels.numel() and int(self.labels.max()) >= K:
            raise SemGANError(
                f"dataset {self.name!r}: label value {int(self.labels.max())} found, "
                f"expected values in 0..{K - 1} for {K} classes"
            )

        if self.photos is not None:
            N, H, W = self.labels.shape
            if tuple(self.photos.shape) != (N, 3, H, W) or self.photos.dtype != torch.uint8:
                raise SemGANError(f"dataset {self.name!r}: photos must be ({N}, 3, {H}, {W}) uint8 to match the "
                                  f"labels, got {self.photos.dtype} of shape {tuple(self.photos.shape)}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def resolution(self) -> tuple[int, int]:
        """(H, W) of every map."""
        return int(self.labels.shape[1]), int(self.labels.shape[2])

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def square_pairs(self, who: str) -> tuple[torch.Tensor, int]:
        """The photos and the side of a paired set of square maps, for ``who`` (a family that trains on pairs);
        a clear error for maps alone or non-square maps."""
        if self.photos is None:
            raise SemGANError(f"dataset {self.name!r} was loaded without photos; {who} trains on pairs")
        H, W = self.resolution
        if H != W:
            raise SemGANError(f"dataset {self.name!r} has {H}x{W} maps; {who} needs square maps (set data.size)")
        return self.photos, H

    def describe(self) -> dict[str, Any]:
        """What a run folder, a checkpoint or a compare records of its data (JSON-able; meta excluded)."""
        return {
            "name": self.name,
            "count": len(self),
            "resolution": self.resolution[0],
            "class_names": list(self.class_names),
            "palette": self.palette.tolist(),
        }

    def class_shares(self) -> np.ndarray:
        """(K,) float64 share of all pixels that belong to each class."""
        counts = torch.bincount(self.labels.reshape(-1).long(), minlength=self.num_classes)
        return (counts.double() / max(1, self.labels.numel())).numpy()

    def class_presence(self) -> np.ndarray:
        """(K,) float64 share of the maps that contain each class at all."""
        flat = self.labels.reshape(len(self), -1)
        return np.array([float((flat == k).any(1).double().mean()) if len(self) else 0.0
                         for k in range(self.num_classes)])


def stack_maps(maps: Sequence[np.ndarray], names: Sequence[str], dataset: str) -> torch.Tensor:
    """Stack (H, W) uint8 maps into an (N, H, W) uint8 tensor; differing sizes are an error naming them."""
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for n, m in zip(names, maps, strict=True):
        by_shape.setdefault(m.shape, []).append(n)
    if len(by_shape) > 1:
        # The commonest size first, then the first file of every other size: the odd files are what to look at.
        ranked = sorted(by_shape.items(), key=lambda kv: -len(kv[1]))
        examples = "; ".join(f"{len(files)} of {shape[1]}x{shape[0]} (e.g. {files[0]})"
                             for shape, files in ranked[:4])
        raise SemGANError(
            f"{dataset}: maps have {len(by_shape)} different sizes: {examples}; pass a size (--size, data.size) "
            "to resize them all to size x size"
        )
    return torch.from_numpy(np.stack(maps)) if maps else torch.zeros(0, 0, 0, dtype=torch.uint8)


def label_dataset(
    name: str, maps: Sequence[np.ndarray], names: list[str], class_set: ClassSet, meta: dict[str, object],
    photos: Sequence[np.ndarray] | None = None,
) -> LabelDataset:
    """Stack decoded maps (and their (3, H, W) photos, for paired data) into a :class:`LabelDataset` with the
    class set's names and palette.

    ``meta`` gains ``class_set``, ``num_classes`` and ``files`` (the kept files' names, in order).
    """
    return LabelDataset(
        name=name,
        labels=stack_maps(maps, names, name),
        class_names=class_set.class_names,
        palette=torch.from_numpy(class_set.palette_array()),
        meta={**meta, "class_set": class_set.name, "num_classes": class_set.num_classes, "files": names},
        photos=None if photos is None else torch.from_numpy(np.stack(photos)),
    )


def item_names(dataset: LabelDataset) -> list[str]:
    """A stable name per map: its file name when the dataset records them, else its index."""
    files = dataset.meta.get("files")
    return ([str(n) for n in files] if isinstance(files, list) and len(files) == len(dataset)
            else [f"{i:06d}" for i in range(len(dataset))])


def holdout_split(dataset: LabelDataset, share: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, held-out) indices: a seeded split by file name (:func:`~semgan.data.files.train_val_split`)."""
    if share <= 0:
        return list(range(len(dataset))), []
    return train_val_split(item_names(dataset), val_fraction=share, seed=seed)


def share_by_name(dataset: LabelDataset, indices: list[int], share: float, seed: int) -> list[int]:
    """``round(share * len(indices))`` of ``indices``, chosen by name with ``seed`` (nested as the share grows)."""
    if share >= 1.0:
        return list(indices)
    if share <= 0.0 or not indices:
        return []
    names = item_names(dataset)
    _, kept = train_val_split([names[i] for i in indices], val_fraction=share, seed=seed)
    return [indices[k] for k in kept]
