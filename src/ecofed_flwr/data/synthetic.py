"""A learnable synthetic image classification set: one blocky pattern per class plus noise.

Needs only numpy, so tests and offline runs always have data.
"""

from __future__ import annotations

import numpy as np

from .datasets import ArrayDataset
from .errors import DataError, check_int

__all__ = ["SYNTHETIC_DEFAULT_SIZES", "make_synthetic"]

_SYNTHETIC_SPLITS = {"train": 0, "test": 1, "validation": 2}
#: Samples per split when a request names no count (see :func:`~ecofed_flwr.data.load_dataset`).
SYNTHETIC_DEFAULT_SIZES = {"train": 2000, "test": 500, "validation": 500}


def make_synthetic(
    num_samples: int,
    num_classes: int = 10,
    image_size: int = 28,
    channels: int = 1,
    seed: int = 0,
    split: str = "train",
) -> ArrayDataset:
    """Generate a learnable synthetic image classification data set.

    Each class has one fixed, blocky random pattern (drawn from ``seed`` alone, so train
    and test share them); every sample is its class pattern plus Gaussian pixel noise drawn
    from ``(seed, split)``. Classes are balanced (counts differ by at most one) and the
    label order is shuffled. Coarse patterns survive resizing, so the data also suits
    models that upsample their input.

    Parameters
    ----------
    num_samples : int
        Number of images (>= 1).
    num_classes : int, default 10
        Number of classes (>= 1).
    image_size : int, default 28
        Height and width in pixels (>= 2).
    channels : int, default 1
        1 gives ``(N, H, W)`` images, more gives ``(N, H, W, C)``.
    seed : int, default 0
        Non-negative seed; the same seed and split always give the same data.
    split : {"train", "test", "validation"}
        Selects the noise and label stream.

    Returns
    -------
    ArrayDataset
        uint8 images and int64 labels, named ``"synthetic:<split>"``.

    Raises
    ------
    DataError
        On invalid arguments.
    """
    n = check_int("num_samples", num_samples, 1)
    k = check_int("num_classes", num_classes, 1)
    size = check_int("image_size", image_size, 2)
    c = check_int("channels", channels, 1)
    s = check_int("seed", seed, 0)
    if split not in _SYNTHETIC_SPLITS:
        raise DataError(
            f"unknown synthetic split {split!r}; valid splits: {sorted(_SYNTHETIC_SPLITS)}"
        )

    pattern_rng = np.random.default_rng(np.random.SeedSequence([s, 0]))
    grid = min(size, 7)
    coarse = pattern_rng.uniform(0.0, 1.0, size=(k, grid, grid, c)).astype(np.float32)
    up = (np.arange(size) * grid) // size  # nearest-neighbour upsampling indices
    patterns = 30.0 + 195.0 * coarse[:, up][:, :, up]  # (k, size, size, c), in [30, 225]

    sample_rng = np.random.default_rng(np.random.SeedSequence([s, 1, _SYNTHETIC_SPLITS[split]]))
    labels = (np.arange(n) % k).astype(np.int64)
    sample_rng.shuffle(labels)
    images = np.empty((n, size, size, c), dtype=np.uint8)
    chunk = 4096  # bounds the float32 temporary for large requests
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        noise = sample_rng.standard_normal((stop - start, size, size, c), dtype=np.float32)
        block = patterns[labels[start:stop]] + 50.0 * noise
        np.clip(block, 0.0, 255.0, out=block)
        images[start:stop] = np.rint(block).astype(np.uint8)
    if c == 1:
        images = images[..., 0]
    return ArrayDataset(images=images, labels=labels, num_classes=k, name=f"synthetic:{split}")
