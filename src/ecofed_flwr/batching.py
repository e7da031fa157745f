"""How a pass over training rows is cut into SGD batches, the same way everywhere.

A training batch of one sample breaks BatchNorm in training mode whenever the layer sees a
single value per channel (e.g. a 1x1 feature map): PyTorch refuses it. So a pass whose last
batch would hold one sample merges that sample into the batch before it, and a pass over a
single sample is skipped (there is nothing to merge it with). The product's trainer (pooled
and per-client copies) and every baseline use these functions, so they agree on the number
of steps and on which samples each step sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T", np.ndarray, torch.Tensor)


def batch_bounds(num_samples: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each batch of a pass over ``num_samples`` rows.

    Batches hold ``batch_size`` rows except the last, which holds the rest; a last batch of
    one row is merged into the batch before it (which then holds ``batch_size + 1``), and a
    pass over one row has no batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    if num_samples <= 1:
        return []
    bounds = [(s, min(s + batch_size, num_samples)) for s in range(0, num_samples, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], num_samples)]
    return bounds


def num_batches(num_samples: int, batch_size: int) -> int:
    """How many batches :func:`batch_bounds` makes of ``num_samples`` rows."""
    return len(batch_bounds(num_samples, batch_size))


def split_batches(order: T, batch_size: int) -> Iterator[T]:
    """The batches of the index sequence ``order`` (see :func:`batch_bounds`)."""
    for start, stop in batch_bounds(len(order), batch_size):
        yield order[start:stop]
