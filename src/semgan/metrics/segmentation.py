"""Agreement of paired label maps: pixel accuracy, per-class IoU and mIoU (the semantic segmentation convention).

``target`` and ``pred`` are paired: the i-th prediction belongs to the i-th map (a reconstruction of it, or a
segmenter's output for its photo). The counts are summed over the whole set before dividing, as the standard
benchmarks do (Cityscapes, PASCAL VOC, mmsegmentation), so a large map weighs more than a small one, and a
class absent from both the targets and the predictions has no IoU (NaN) and is left out of the mean; a class
that only one side has scores 0.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from semgan.errors import SemGANError


def confusion_matrix(target: torch.Tensor, pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) int64 counts: row = the target's class, column = the prediction's, over every pixel.

    Args:
        target: (N, H, W) integer labels in [0, K).
        pred: (N, H, W) integer labels in [0, K), paired with ``target``.
        num_classes: K.
    """
    if target.shape != pred.shape:
        raise SemGANError(f"paired label maps must have one shape; got {tuple(target.shape)} and "
                          f"{tuple(pred.shape)}")
    t, p = target.reshape(-1).long(), pred.reshape(-1).long()
    for name, x in (("target", t), ("prediction", p)):
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= num_classes):
            raise SemGANError(f"{name} labels {int(x.min())}..{int(x.max())} lie outside the {num_classes} classes "
                              f"(0..{num_classes - 1})")
    return torch.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def segmentation_scores(target: torch.Tensor, pred: torch.Tensor, num_classes: int) -> dict[str, Any]:
    """Pixel accuracy, per-class IoU (None where the class is in neither set) and mIoU over the classes present.

    Returns:
        ``{"pixel_acc": float, "miou": float, "iou": [float | None] * K}``; on an empty set pixel accuracy and
        mIoU are NaN.
    """
    conf = confusion_matrix(target, pred, num_classes).double()
    inter = conf.diag()
    union = conf.sum(0) + conf.sum(1) - inter  # (K,)
    iou = [float(i / u) if u > 0 else None for i, u in zip(inter, union, strict=True)]
    present = [v for v in iou if v is not None]
    total = float(conf.sum())
    return {"pixel_acc": float(inter.sum()) / total if total else math.nan,
            "miou": sum(present) / len(present) if present else math.nan, "iou": iou}
