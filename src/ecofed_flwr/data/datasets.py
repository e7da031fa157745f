"""The in-memory image data set every source loads into: uint8 images plus int64 labels.

Each source (:mod:`.fashion_mnist`, :mod:`.synthetic`, :mod:`.huggingface`, :mod:`.local_files`,
:mod:`.torchvision_sets`) returns one :class:`ArrayDataset`, so that partitioning, local
splits and model input preparation work the same on every source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DataError

__all__ = ["ArrayDataset"]


@dataclass(frozen=True, eq=False)
class ArrayDataset:
    """A labelled image data set held in memory.

    Parameters
    ----------
    images : numpy.ndarray
        ``uint8`` array of shape ``(N, H, W)`` (grey) or ``(N, H, W, C)``.
    labels : numpy.ndarray
        Integer class labels of shape ``(N,)``, in ``[0, num_classes)``; stored as ``int64``.
    num_classes : int
        Number of classes of the task (not only those present in this subset).
    name : str
        Human-readable source name, e.g. ``"fashion_mnist:train"``.

    Raises
    ------
    DataError
        If shapes, dtypes or label values are inconsistent.

    Notes
    -----
    Images returned by :func:`load_fashion_mnist` are read-only because they are shared by a
    cache; labels are always writable (read-only ones are copied); :meth:`subset` returns
    writable copies of both.
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    name: str

    def __post_init__(self) -> None:
        images = self.images
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
            kind = getattr(images, "dtype", type(images).__name__)
            raise DataError(f"{self.name}: images must be a uint8 numpy array, got {kind}")
        if images.ndim not in (3, 4):
            raise DataError(
                f"{self.name}: images must have shape (N, H, W) or (N, H, W, C), got {images.shape}"
            )
        labels = np.asarray(self.labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(
                f"{self.name}: labels must be a 1-D integer array, got dtype {labels.dtype} "
                f"and shape {labels.shape}"
            )
        if labels.dtype != np.int64 or not labels.flags.writeable:
            # A cached, read-only label array would make torch.from_numpy warn downstream;
            # labels are small, so every data set gets its own writable int64 copy.
            labels = labels.astype(np.int64)
            object.__setattr__(self, "labels", labels)
        if len(labels) != len(images):
            raise DataError(f"{self.name}: {len(images)} images but {len(labels)} labels")
        num_classes = self.num_classes
        if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
            raise DataError(f"{self.name}: num_classes must be an int, got {num_classes!r}")
        if num_classes < 1:
            raise DataError(f"{self.name}: num_classes must be >= 1, got {num_classes}")
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise DataError(
                f"{self.name}: labels must lie in [0, {num_classes}), "
                f"found [{labels.min()}, {labels.max()}]"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def channels(self) -> int:
        """Number of colour channels (1 for ``(N, H, W)`` grey images)."""
        return 1 if self.images.ndim == 3 else int(self.images.shape[-1])

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        """Return the samples at ``indices`` (integer positions or a boolean mask).

        Parameters
        ----------
        indices : numpy.ndarray
            1-D integer positions (any order, repeats allowed) or a boolean mask of length N.

        Returns
        -------
        ArrayDataset
            A new data set with copied arrays and the same ``num_classes`` and ``name``.

        Raises
        ------
        DataError
            If ``indices`` is not 1-D, not integer/boolean, or out of range.
        """
        idx = np.asarray(indices)
        if idx.dtype == np.bool_:
            if idx.shape != (len(self),):
                raise DataError(
                    f"{self.name}: boolean mask of shape {idx.shape} does not match "
                    f"{len(self)} samples"
                )
            idx = np.flatnonzero(idx)
        if idx.size == 0:
            idx = idx.astype(np.int64)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise DataError(
                f"{self.name}: subset indices must be a 1-D integer array, got dtype "
                f"{idx.dtype} and shape {idx.shape}"
            )
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise DataError(
                f"{self.name}: subset indices must lie in [0, {len(self)}), "
                f"found [{idx.min()}, {idx.max()}]"
            )
        return ArrayDataset(
            images=self.images[idx],
            labels=self.labels[idx],
            num_classes=self.num_classes,
            name=self.name,
        )
