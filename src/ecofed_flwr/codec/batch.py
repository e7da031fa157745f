"""The encoded batch that travels, the errors of every codec, and metadata readers.

Nothing here knows a codec family: :class:`EncodedBatch` is plain arrays plus scalar metadata,
:class:`ArraySpec` what one of those arrays must look like, and the ``meta_*`` readers turn
untrusted metadata values into checked ints and shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ArraySpec",
    "CodecError",
    "EncodedBatch",
    "MetaValue",
    "PayloadValueError",
    "check_array",
    "is_int",
    "meta_int",
    "meta_shape",
]

MetaValue = int | float | str | list[int]


class CodecError(ValueError):
    """Raised when a payload is malformed or a codec name is invalid.

    The message says what was expected and what arrived.
    """


class PayloadValueError(CodecError):
    """Raised when a well-formed payload holds values outside the codec's range.

    Codes the encoder never produces (``paper`` -128, non-finite ``fp*`` codes), scales that
    are not finite and positive, non-finite offsets, or decoded values beyond a stated bound.
    """


@dataclass(frozen=True)
class ArraySpec:
    """What one payload array must look like, known before any of its bytes are read.

    Parameters
    ----------
    dtype
        Its exact dtype.
    shape
        Its exact shape; ``None`` for a 1-D array of any length up to ``max_nbytes`` (the zstd
        frame, whose compressed length is not known in advance).
    max_nbytes
        Upper bound on its ``nbytes``.
    """

    dtype: np.dtype[Any]
    shape: tuple[int, ...] | None
    max_nbytes: int


@dataclass(frozen=True)
class EncodedBatch:
    """An encoded batch of activations: the payload that travels plus its metadata.

    Parameters
    ----------
    arrays
        Payload arrays (codes, scales, offsets, ...), plain numpy arrays.
    meta
        Small scalar metadata. Always holds ``"codec"`` (the codec name), ``"num_samples"`` and
        ``"sample_shape"``; quantizing codecs add ``"group_size"``, zstd codecs
        ``"zstd_raw_nbytes"``.
    """

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, MetaValue] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Payload bytes: the sum of the arrays' ``nbytes`` (metadata not counted)."""
        return int(sum(int(a.nbytes) for a in self.arrays.values()))

    @property
    def num_samples(self) -> int:
        """Number of samples (rows along axis 0 of the original input)."""
        return meta_int(self.meta, "num_samples", minimum=1)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. ``(C, H, W)``."""
        return meta_shape(self.meta)

    @property
    def num_values(self) -> int:
        """``num_samples * prod(sample_shape)``."""
        return self.num_samples * math.prod(self.sample_shape)

    @property
    def bits_per_value(self) -> float:
        """Payload bits per encoded value, overheads (scales, offsets) included."""
        return self.nbytes * 8 / self.num_values


# --------------------------------------------------------------------------------------------
# untrusted values


def is_int(v: object) -> bool:
    """True for a Python or numpy integer that is not a bool."""
    # bool is an int subclass, but a flag where a count belongs is a malformed payload.
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def meta_int(meta: dict[str, MetaValue], key: str, minimum: int) -> int:
    """``meta[key]`` as an int ``>= minimum``; :class:`CodecError` otherwise."""
    if key not in meta:
        raise CodecError(f"meta: expected key {key!r}, got keys {sorted(meta)}")
    v = meta[key]
    if not is_int(v):
        raise CodecError(f"meta[{key!r}]: expected an int, got {type(v).__name__} {v!r}")
    iv = int(v)  # type: ignore[arg-type]
    if iv < minimum:
        raise CodecError(f"meta[{key!r}]: expected an int >= {minimum}, got {iv}")
    return iv


def meta_shape(meta: dict[str, MetaValue]) -> tuple[int, ...]:
    """``meta["sample_shape"]`` as a tuple of ints ``>= 1``; :class:`CodecError` otherwise."""
    if "sample_shape" not in meta:
        raise CodecError(f"meta: expected key 'sample_shape', got keys {sorted(meta)}")
    v = meta["sample_shape"]
    if not isinstance(v, list | tuple) or not all(is_int(d) for d in v):
        raise CodecError(f"meta['sample_shape']: expected a list of ints, got {v!r}")
    shape = tuple(int(d) for d in v)
    if any(d < 1 for d in shape):
        raise CodecError(f"meta['sample_shape']: expected dimensions >= 1, got {list(shape)}")
    return shape


def check_array(
    a: np.ndarray, key: str, dtype: np.dtype[Any], shape: tuple[int, ...] | None
) -> np.ndarray:
    """``a`` itself if it has exactly ``dtype`` (and ``shape``); :class:`CodecError` otherwise."""
    if a.dtype != dtype:
        raise CodecError(f"arrays[{key!r}]: expected dtype {dtype}, got {a.dtype}")
    if shape is not None and a.shape != shape:
        raise CodecError(f"arrays[{key!r}]: expected shape {shape}, got {a.shape}")
    return a
