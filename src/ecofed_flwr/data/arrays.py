"""Bring image and label arrays from any source to the form :class:`ArrayDataset` holds.

Every loader (npz files, image folders, torchvision, Hugging Face) hands its raw arrays to
:func:`to_uint8_images` and :func:`to_class_labels`, so layouts, dtypes and value ranges are
checked, and reported, the same way whatever the source.
"""

from __future__ import annotations

import numpy as np

from .errors import DataError

__all__ = ["to_class_labels", "to_uint8_images"]

_CHANNEL_COUNTS = (1, 3, 4)


def _channels_last(images: np.ndarray, what: str) -> np.ndarray:
    """``(N, H, W, C)`` view of a 4-D batch stored either channels-last or channels-first."""
    last = images.shape[-1] in _CHANNEL_COUNTS
    first = images.shape[1] in _CHANNEL_COUNTS
    if last and not first:
        return images
    if first and not last:
        return images.transpose(0, 2, 3, 1)
    if last and first:
        reason = f"both axis 1 and axis 3 could be the channel axis (sizes {_CHANNEL_COUNTS})"
    else:
        reason = f"neither axis 1 nor axis 3 has a channel count in {_CHANNEL_COUNTS}"
    raise DataError(
        f"{what}: cannot tell the layout of images of shape {images.shape}: {reason}; "
        "expected (N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3 or 4"
    )


def to_uint8_images(images: np.ndarray, what: str) -> np.ndarray:
    """Check a batch of images and convert it to uint8 ``(N, H, W)`` or ``(N, H, W, 3)``.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, H, W)`` grey images, or ``(N, H, W, C)`` / ``(N, C, H, W)`` with ``C`` in
        {1, 3, 4}; the layout of a 4-D array is read from which axis has a channel count.
        uint8 arrays are used as they are; other integer arrays must lie in 0..255; float
        arrays must lie in [0, 1] and are scaled by 255 and rounded.
    what : str
        Names the array in error messages (e.g. ``"data.npz: x_train"``).

    Returns
    -------
    numpy.ndarray
        uint8 images; one channel becomes ``(N, H, W)`` and a fourth (alpha) channel is
        dropped. A uint8 input in the target layout is returned without a copy.

    Raises
    ------
    DataError
        On an empty batch, an unknown or ambiguous layout, a non-numeric dtype or values
        outside the ranges above. The message names ``what``.
    """
    array = np.asarray(images)
    if array.ndim not in (3, 4):
        raise DataError(
            f"{what}: images must have shape (N, H, W), (N, H, W, C) or (N, C, H, W), "
            f"got {array.shape}"
        )
    if array.shape[0] == 0:
        raise DataError(f"{what}: holds no images (shape {array.shape})")
    if array.ndim == 4:
        array = _channels_last(array, what)
        if array.shape[-1] == 1:
            array = array[..., 0]
        elif array.shape[-1] == 4:
            array = array[..., :3]  # the alpha channel carries no class information
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise DataError(
                f"{what}: {array.dtype} images must lie in 0..255, found [{low}, {high}]"
            )
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise DataError(f"{what}: float images contain NaN or infinite values")
        low_f, high_f = float(array.min()), float(array.max())
        if low_f < 0.0 or high_f > 1.0:
            raise DataError(
                f"{what}: float images must lie in [0, 1], found [{low_f:g}, {high_f:g}]; "
                "divide 0..255 values by 255 or store them as uint8"
            )
        return np.rint(array * 255.0).astype(np.uint8)
    raise DataError(f"{what}: images must be uint8, integer or float, got dtype {array.dtype}")


def to_class_labels(labels: np.ndarray, what: str, count: int | None = None) -> np.ndarray:
    """Check class labels and return them as a writable int64 array of shape ``(N,)``.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer class indices of shape ``(N,)`` or ``(N, 1)``, all >= 0.
    what : str
        Names the array in error messages.
    count : int, optional
        The number of images the labels belong to; checked when given.

    Returns
    -------
    numpy.ndarray
        int64 labels of shape ``(N,)``.

    Raises
    ------
    DataError
        On a non-integer dtype (floats and booleans included), a bad shape, a negative
        label or a length different from ``count``.
    """
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(f"{what}: labels must have shape (N,) or (N, 1), got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise DataError(
            f"{what}: labels must be integer class indices, got dtype {array.dtype}"
            + ("; cast them with astype(int)" if np.issubdtype(array.dtype, np.floating) else "")
        )
    if count is not None and len(array) != count:
        raise DataError(f"{what}: {len(array)} labels for {count} images")
    if array.size and int(array.min()) < 0:
        raise DataError(f"{what}: labels must be >= 0, found {int(array.min())}")
    return np.array(array, dtype=np.int64)  # always a copy: writable and not shared
