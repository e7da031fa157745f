"""A device's training data, prepared as front input: images, labels and the class count."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["LocalData", "check_labels"]


@dataclass(frozen=True)
class LocalData:
    """A device's training data, already prepared as model input.

    Attributes
    ----------
    images : torch.Tensor
        Float inputs ``(N, C, H, W)``, normalised as the front expects.
    labels : np.ndarray
        Integer labels ``(N,)``.
    num_classes : int
        Number of classes of the task.
    """

    images: torch.Tensor
    labels: np.ndarray
    num_classes: int

    def __post_init__(self) -> None:
        check_labels(self.labels, self.num_classes)
        if self.images.dim() != 4 or self.images.shape[0] != len(self.labels):
            raise ValueError(
                f"images must be (N, C, H, W) with N = {len(self.labels)} labels, got shape "
                f"{tuple(self.images.shape)}"
            )


def check_labels(labels: np.ndarray, num_classes: int) -> None:
    """Raise ValueError unless ``labels`` are integers in ``[0, num_classes)`` (before a cast)."""
    array = np.asarray(labels)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if array.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {array.shape}")
    if array.dtype.kind not in "iu":
        if (
            array.dtype.kind != "f"
            or not np.all(np.isfinite(array))
            or np.any(array != np.round(array))
        ):
            raise ValueError(f"labels must be integers, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got min {array.min()}, max {array.max()}"
        )
