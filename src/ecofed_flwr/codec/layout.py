"""What every codec computes on: the layout of a payload, the input array, a sample selection.

Every size and shape of a payload follows from ``(codec, N, sample_shape)``: :class:`Layout`
holds them. :func:`as_float32` turns encoder input into the one form every family quantizes,
and :func:`selection` turns a decode index into sample numbers.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ecofed_flwr.codec.batch import CodecError

if TYPE_CHECKING:
    import torch

__all__ = ["Layout", "as_float32", "selection"]


@dataclass(frozen=True)
class Layout:
    """Sizes and shapes of one payload.

    Parameters
    ----------
    n
        Samples in the batch.
    sample_shape
        Shape of one sample.
    values
        Values per sample.
    channels
        ``C`` of the statistics (1 when per tensor).
    spatial
        Values per (sample, channel).
    group
        Samples per group.
    num_groups
        Groups in the batch (the last may be shorter).
    stat_shape
        Shape of one statistic per group (and channel) as stored.
    code_shape
        Shape of the (packed) codes.
    code_dtype
        dtype of the codes.
    """

    n: int
    sample_shape: tuple[int, ...]
    values: int
    channels: int
    spatial: int
    group: int
    num_groups: int
    stat_shape: tuple[int, ...]
    code_shape: tuple[int, int]
    code_dtype: np.dtype[Any]

    def work_shape(self, n: int) -> tuple[int, ...]:
        """Shape to compute in: per-sample statistics broadcast along its last axis.

        Trailing axes of length 1 are dropped because numpy broadcasting with a length-1 inner
        axis runs several times slower than over a long contiguous one.
        """
        if self.channels == 1:
            return (n, self.values)
        if self.spatial == 1:
            return (n, self.channels)
        return (n, self.channels, self.spatial)

    @property
    def code_nbytes(self) -> int:
        """Bytes of the codes before any lossless stage."""
        return self.code_shape[0] * self.code_shape[1] * self.code_dtype.itemsize


def as_float32(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """``x`` as a C-contiguous float32 array ``(N, ...)``, ``N >= 1``, finite, non-empty."""
    # torch is only looked at when the caller has already imported it: a tensor cannot exist
    # otherwise, and this keeps the codec importable (and fast to import) without torch.
    if "torch" in sys.modules:
        import torch

        if isinstance(x, torch.Tensor):
            x = x.detach().to(device="cpu", dtype=torch.float32).numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise CodecError(f"encode: expected a real float array, got dtype {arr.dtype}")
    if arr.ndim < 1 or arr.shape[0] < 1:
        raise CodecError(f"encode: expected shape (N, ...) with N >= 1, got {arr.shape}")
    if any(d < 1 for d in arr.shape[1:]):
        raise CodecError(f"encode: expected non-empty samples, got shape {arr.shape}")
    with np.errstate(over="ignore"):  # overflow to inf is reported just below
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise CodecError("encode: expected finite values, got NaN or inf (after float32 cast)")
    return arr


def selection(index: slice | np.ndarray | None, n: int) -> np.ndarray:
    """Sample numbers (non-negative, in order of ``index``) that ``index`` selects of ``n``.

    Raises :class:`IndexError` (a caller error, not a payload error) for an index out of range
    or of the wrong kind.
    """
    if index is None:
        return np.arange(n)
    if isinstance(index, slice):
        return np.arange(n)[index]
    idx = np.asarray(index)
    if idx.dtype == np.bool_:
        if idx.shape != (n,):
            raise IndexError(f"decode: boolean index of shape {idx.shape} for {n} samples")
        return np.flatnonzero(idx)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise IndexError(f"decode: expected a 1-D integer index, got {idx.dtype} {idx.shape}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"decode: index out of range for {n} samples")
    return np.where(idx < 0, idx + n, idx)
