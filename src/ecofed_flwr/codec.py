"""Codecs for frozen-front-end activations (SPEC sections 2.2 and 5).

A device runs the frozen front-end ``F`` and uploads ``Q(F(x))``; the server keeps the encoded
batches in a replay buffer and decodes (slices of) them for training. This module defines the
wire format of those uploads and the quantizers that produce it.

Name grammar (see :func:`make_codec`)::

    BASE[-ch][-clipP][-gN][+zstd[L]]

* ``BASE``: ``fp32``, ``fp16`` (plain floats), ``paper`` (symmetric int8, one scale per group
  of 10 samples, as in the EcoFed paper), ``u8``/``u4``/``u2``/``u1`` (unsigned affine at that
  many bits, one group = the whole batch by default) or ``lq4``/``lq2``/``lq1`` (``2**B``
  levels fitted to each group by Lloyd-Max and sent with it; codes are nearest-level indices).
* ``-ch``: statistics per channel (axis 1 of the input) instead of per group.
* ``-clipP``: clip every group (channel) to its ``[100-P, P]`` percentiles before quantizing
  (``paper`` and ``u*`` only: fitted levels already place themselves against the tails).
* ``-gN``: ``N`` consecutive samples share one scale (omitted when it is the scheme default).
* ``+zstd[L]``: a lossless zstandard stage (level ``L``, default 3) over the packed codes.

Payload layout (all plain numpy arrays, no pickle; every meta value is an int, float, str or
list of ints so it fits a Flower ``ConfigRecord``):

* ``codes``: ``(N, values_per_sample)`` float32/float16/int8/uint8, or for ``b < 8`` bits
  ``(N, ceil(values_per_sample * b / 8))`` uint8 with each sample packed into its own
  byte-aligned row (first code in the most significant bits), so any slice of samples
  decodes without touching the others;
* ``scales`` (and ``offsets`` for ``u*``): float32 ``(num_groups,)`` or ``(num_groups, C)``;
* ``lq*``: ``offsets`` as above (the lowest level) and ``scales`` of shape
  ``(num_groups, [C,] 2**B - 1)``: the steps, all > 0, from each level to the next, so the levels
  ``offset + cumsum(steps)`` never decrease, by construction;
* ``codes_zstd`` replaces ``codes`` when the zstd stage is on: a 1-D uint8 zstd frame
  (with content size and checksum) whose decompressed length is ``meta["zstd_raw_nbytes"]``.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import zstandard

if TYPE_CHECKING:
    import torch

__all__ = [
    "MAX_DECOMPRESSED_BYTES",
    "ArraySpec",
    "Codec",
    "CodecError",
    "EncodedBatch",
    "PayloadValueError",
    "decode_any",
    "list_codecs",
    "make_codec",
]

MetaValue = int | float | str | list[int]

#: Upper bound on the decompressed size of one zstd payload. The claimed size comes from the
#: (untrusted) sender; without a cap a tiny frame could make the server allocate terabytes.
MAX_DECOMPRESSED_BYTES = 1 << 33

_BASES: tuple[str, ...] = ("fp32", "fp16", "paper", "u8", "u4", "u2", "u1", "lq4", "lq2", "lq1")
_FLOAT_BASES: dict[str, np.dtype[Any]] = {
    "fp32": np.dtype(np.float32),
    "fp16": np.dtype(np.float16),
}
_UNSIGNED_BITS = {"u8": 8, "u4": 4, "u2": 2, "u1": 1}
_LEVEL_BITS = {"lq4": 4, "lq2": 2, "lq1": 1}
_PACKED_BITS = {**_UNSIGNED_BITS, **_LEVEL_BITS}
# Lloyd-Max passes from quantile-placed levels: on EfficientNet-Lite0 activations 16 passes
# reach the fixed point's MSE within 0.2 % at 2 bits (and within 10 % at 4 bits).
_LLOYD_ITERATIONS = 16
# Replaces a fitted step that is not > 0 in float32 (a group with fewer distinct values than
# levels): any positive step keeps the payload valid, the smallest normal float keeps the range.
_MIN_STEP = float(np.finfo(np.float32).tiny)
_PAPER_GROUP_SIZE = 10  # the paper quantizes each training batch of 10 samples as one tensor
_PAPER_QMAX = 127  # symmetric: -128 is never produced, so zero stays exactly representable
_DEFAULT_ZSTD_LEVEL = 3
_EPS32 = float(np.finfo(np.float32).eps)
_F32_MAX = float(np.finfo(np.float32).max)
_F16_MAX = float(np.finfo(np.float16).max)

_GRAMMAR = (
    "expected BASE[-ch][-clipP][-gN][+zstd[L]] with BASE one of "
    + ", ".join(_BASES)
    + " (-ch and -g only for quantizing schemes, -clip only for paper and u*), 50 < P < 100,"
    " N >= 1, 1 <= L <= 22; e.g. 'paper', 'u4', 'u4-ch', 'lq2-ch+zstd', 'u2-ch-clip99.9+zstd',"
    " 'u4-g100', 'fp16'"
)


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
        return _meta_int(self.meta, "num_samples", minimum=1)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. ``(C, H, W)``."""
        return _meta_shape(self.meta)

    @property
    def num_values(self) -> int:
        """``num_samples * prod(sample_shape)``."""
        return self.num_samples * math.prod(self.sample_shape)

    @property
    def bits_per_value(self) -> float:
        """Payload bits per encoded value, overheads (scales, offsets) included."""
        return self.nbytes * 8 / self.num_values


# --------------------------------------------------------------------------------------------
# meta helpers


def _is_int(v: object) -> bool:
    # bool is an int subclass, but a flag where a count belongs is a malformed payload.
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _meta_int(meta: dict[str, MetaValue], key: str, minimum: int) -> int:
    if key not in meta:
        raise CodecError(f"meta: expected key {key!r}, got keys {sorted(meta)}")
    v = meta[key]
    if not _is_int(v):
        raise CodecError(f"meta[{key!r}]: expected an int, got {type(v).__name__} {v!r}")
    iv = int(v)  # type: ignore[arg-type]
    if iv < minimum:
        raise CodecError(f"meta[{key!r}]: expected an int >= {minimum}, got {iv}")
    return iv


def _meta_shape(meta: dict[str, MetaValue]) -> tuple[int, ...]:
    if "sample_shape" not in meta:
        raise CodecError(f"meta: expected key 'sample_shape', got keys {sorted(meta)}")
    v = meta["sample_shape"]
    if not isinstance(v, list | tuple) or not all(_is_int(d) for d in v):
        raise CodecError(f"meta['sample_shape']: expected a list of ints, got {v!r}")
    shape = tuple(int(d) for d in v)
    if any(d < 1 for d in shape):
        raise CodecError(f"meta['sample_shape']: expected dimensions >= 1, got {list(shape)}")
    return shape


# --------------------------------------------------------------------------------------------
# layout: every size and shape of a payload follows from (codec, N, sample_shape)


@dataclass(frozen=True)
class _Layout:
    n: int
    sample_shape: tuple[int, ...]
    values: int  # values per sample
    channels: int  # C of the statistics (1 when per tensor)
    spatial: int  # values per (sample, channel)
    group: int  # samples per group
    num_groups: int
    stat_shape: tuple[int, ...]  # shape of one statistic per group (and channel) as stored
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
        return self.code_shape[0] * self.code_shape[1] * self.code_dtype.itemsize


def _zstd_frame_bound(raw_nbytes: int) -> int:
    """Largest zstd frame (header and checksum included) a compressor emits for ``raw_nbytes``.

    libzstd's ``ZSTD_COMPRESSBOUND`` plus a margin for the frame header and checksum.
    """
    small = ((128 << 10) - raw_nbytes) >> 11 if raw_nbytes < (128 << 10) else 0
    return raw_nbytes + (raw_nbytes >> 8) + small + 32


# --------------------------------------------------------------------------------------------
# bit packing


def _pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack ``(N, V)`` uint8 codes < 2**bits into byte-aligned rows ``(N, ceil(V*bits/8))``."""
    if bits == 8:
        return codes
    n, v = codes.shape
    if bits == 1:
        return np.packbits(codes, axis=1)
    per_byte = 8 // bits
    nbytes = -(-v // per_byte)
    if v != nbytes * per_byte:
        padded = np.zeros((n, nbytes * per_byte), dtype=np.uint8)
        padded[:, :v] = codes
        codes = padded
    c = codes.reshape(n, nbytes, per_byte)
    # A loop over the (at most 4) code slots of a byte, each step vectorised over all samples.
    out = c[:, :, 0] << np.uint8(bits * (per_byte - 1))
    for j in range(1, per_byte):
        out |= c[:, :, j] << np.uint8(bits * (per_byte - 1 - j))
    return out


def _unpack_lut(bits: int, dtype: type[np.generic]) -> np.ndarray:
    """Table ``(256, 8 // bits)``: the codes held in each possible byte, MSB first."""
    per_byte = 8 // bits
    shifts = np.arange(per_byte - 1, -1, -1) * bits
    return ((np.arange(256)[:, None] >> shifts) & ((1 << bits) - 1)).astype(dtype)


# One table lookup turns a packed byte straight into float32 codes (u*: scaled next) or level
# indices (lq*): a single pass instead of shift, mask and cast passes over a broadcast with a
# tiny inner axis (3-6x slower).
_UNPACK_LUT = {
    (b, np.dtype(t)): _unpack_lut(b, t) for b in (1, 2, 4) for t in (np.float32, np.intp)
}


def _unpack(packed: np.ndarray, bits: int, values: int, dtype: type[np.generic]) -> np.ndarray:
    """Inverse of :func:`_pack` for rows of ``values`` codes, as ``dtype (n, values)``."""
    if bits == 8:
        return packed.astype(dtype)
    lut = _UNPACK_LUT[bits, np.dtype(dtype)]
    out = np.take(lut, packed, axis=0).reshape(packed.shape[0], packed.shape[1] * lut.shape[1])
    return out if out.shape[1] == values else out[:, :values]


def _levels(offsets: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Levels ``(..., K)`` float32 of an ``lq*`` payload: ``offset + cumsum(steps)``.

    The one place levels are computed (encode, decode, validation), so every check sees exactly
    the values decode produces. Steps > 0 and float32 rounding is monotone, so the levels never
    decrease and the last is the largest.
    """
    with np.errstate(over="ignore"):  # beyond float32: the caller refuses a non-finite top
        stacked = np.concatenate([offsets[..., None], steps], axis=-1)
        return np.cumsum(stacked, axis=-1, dtype=np.float32)


def _lloyd_levels(values: np.ndarray, k: int) -> np.ndarray:
    """Lloyd-Max levels ``(R, k)`` float64, non-decreasing, of each row of ``values (R, M)``.

    Levels start at the rows' ``(j + 0.5) / k`` quantiles, then each pass moves every level to
    the mean of the values nearest to it (a level whose cell is empty stays where it is).
    """
    rows = values.shape[0]
    levels = np.quantile(values, (np.arange(k) + 0.5) / k, axis=1).T.astype(np.float64)
    base = (np.arange(rows) * k)[:, None]
    for _ in range(_LLOYD_ITERATIONS):
        cell = np.zeros(values.shape, np.intp)
        mids = (levels[:, 1:] + levels[:, :-1]) / 2
        for j in range(k - 1):
            cell += values > mids[:, j : j + 1]
        flat = (cell + base).ravel()
        count = np.bincount(flat, minlength=rows * k).reshape(rows, k)
        total = np.bincount(flat, weights=values.ravel(), minlength=rows * k).reshape(rows, k)
        levels = np.where(count > 0, total / np.maximum(count, 1), levels)
    return levels


def _per_sample(stat: np.ndarray, gidx: np.ndarray, ndim: int) -> np.ndarray:
    """Expand ``(num_groups, C)`` statistics to broadcast against an ``ndim``-D work array."""
    # Common case (u* default: the whole batch is one group): broadcast, don't gather.
    per = stat if stat.shape[0] == 1 else stat[gidx]
    return per[:, :, None] if ndim == 3 else per


# --------------------------------------------------------------------------------------------
# input conversion


def _as_float32(x: np.ndarray | torch.Tensor) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------
# the codec


@dataclass(frozen=True)
class Codec:
    """One codec: a scheme plus its options. Build it with :func:`make_codec`.

    Parameters
    ----------
    scheme
        ``"fp32"``, ``"fp16"``, ``"paper"``, ``"u8"``, ``"u4"``, ``"u2"``, ``"u1"``, ``"lq4"``,
        ``"lq2"`` or ``"lq1"``.
    per_channel
        Statistics per channel (axis 1 of the input) instead of per group.
    clip
        Percentile ``P`` (``50 < P < 100``): values are clipped to the group's
        ``[100-P, P]`` percentiles before the range is measured. ``None``: no clipping.
        ``paper`` and ``u*`` only.
    group_size
        Samples per group sharing one scale; ``None`` means the whole batch (``u*`` default).
        ``paper`` defaults to 10. Must be ``None`` for ``fp32``/``fp16``.
    zstd_level
        Level of the lossless zstd stage over the packed codes; ``None`` disables it.

    Notes
    -----
    The guaranteed reconstruction error is reported by :meth:`error_bound`; for quantizers it is
    half a quantization step (``lq*``: the largest step between two of the group's levels) plus
    a few float32 ulps of the group's range, and holds for values inside :meth:`value_range`
    (values beyond it, clipped ones and for ``lq*`` the tails beyond the outer levels, decode
    to the nearest end of that range).
    """

    scheme: str
    per_channel: bool = False
    clip: float | None = None
    group_size: int | None = None
    zstd_level: int | None = None

    def __post_init__(self) -> None:
        if self.scheme not in _BASES:
            raise CodecError(f"codec scheme: {_GRAMMAR}; got {self.scheme!r}")
        if self.scheme in _FLOAT_BASES and (
            self.per_channel or self.clip is not None or self.group_size is not None
        ):
            raise CodecError(
                f"codec {self.scheme!r}: -ch, -clip and group_size apply only to quantizing "
                f"schemes; got per_channel={self.per_channel}, clip={self.clip}, "
                f"group_size={self.group_size}"
            )
        if self.scheme in _LEVEL_BITS and self.clip is not None:
            raise CodecError(
                f"codec {self.scheme!r}: -clip applies only to paper and u*, the levels of "
                f"{self.scheme} are fitted to the data, tails included; got clip={self.clip}"
            )
        if self.clip is not None and not (50.0 < float(self.clip) < 100.0):
            raise CodecError(f"codec clip: expected 50 < P < 100, got {self.clip!r}")
        if self.group_size is not None and (not _is_int(self.group_size) or self.group_size < 1):
            raise CodecError(f"codec group_size: expected an int >= 1, got {self.group_size!r}")
        if self.zstd_level is not None and (
            not _is_int(self.zstd_level) or not 1 <= self.zstd_level <= 22
        ):
            raise CodecError(f"codec zstd level: expected 1..22, got {self.zstd_level!r}")

    # ---------------------------------------------------------------- naming and sizes

    @property
    def bits(self) -> int:
        """Nominal code width in bits (32 fp32, 16 fp16, 8 paper/u8, 4, 2, 1 for u*/lq*)."""
        if self.scheme == "fp32":
            return 32
        if self.scheme == "fp16":
            return 16
        if self.scheme == "paper":
            return 8
        return _PACKED_BITS[self.scheme]

    @property
    def is_quantizer(self) -> bool:
        """True for ``paper``, ``u*`` and ``lq*`` (codes plus statistics), False for floats."""
        return self.scheme not in _FLOAT_BASES

    @property
    def _effective_group_size(self) -> int | None:
        if self.scheme == "paper" and self.group_size is None:
            return _PAPER_GROUP_SIZE
        return self.group_size

    @property
    def _plain_name(self) -> str:
        parts = [self.scheme]
        if self.per_channel:
            parts.append("ch")
        if self.clip is not None:
            text = repr(float(self.clip))
            parts.append("clip" + (text[:-2] if text.endswith(".0") else text))
        g = self._effective_group_size
        if g is not None and not (self.scheme == "paper" and g == _PAPER_GROUP_SIZE):
            parts.append(f"g{g}")
        return "-".join(parts)

    @property
    def name(self) -> str:
        """Canonical name; ``make_codec(c.name) == c``."""
        if self.zstd_level is None:
            return self._plain_name
        level = "" if self.zstd_level == _DEFAULT_ZSTD_LEVEL else str(self.zstd_level)
        return f"{self._plain_name}+zstd{level}"

    def _layout(self, n: int, sample_shape: tuple[int, ...]) -> _Layout:
        values = math.prod(sample_shape)
        if self.per_channel:
            if not sample_shape:
                raise CodecError(
                    f"codec {self.name}: per-channel statistics need samples with at least one "
                    f"axis, got sample shape {sample_shape}"
                )
            channels = sample_shape[0]
        else:
            channels = 1
        g = self._effective_group_size or n
        num_groups = -(-n // g)
        if self.per_channel:
            stat_shape: tuple[int, ...] = (num_groups, channels)
        else:
            stat_shape = (num_groups,)
        dtype: np.dtype[Any]
        if self.scheme in _FLOAT_BASES:
            dtype = _FLOAT_BASES[self.scheme]
            row = values
        elif self.scheme == "paper":
            dtype = np.dtype(np.int8)
            row = values
        else:
            dtype = np.dtype(np.uint8)
            row = -(-values * self.bits // 8)
        return _Layout(
            n=n,
            sample_shape=sample_shape,
            values=values,
            channels=channels,
            spatial=values // channels,
            group=g,
            num_groups=num_groups,
            stat_shape=stat_shape,
            code_shape=(n, row),
            code_dtype=dtype,
        )

    def _stat_shapes(self, lay: _Layout) -> dict[str, tuple[int, ...]]:
        """Shape of each statistics array of a payload with layout ``lay``."""
        if self.scheme in _FLOAT_BASES:
            return {}
        if self.scheme == "paper":
            return {"scales": lay.stat_shape}
        if self.scheme in _LEVEL_BITS:  # one step between each two consecutive levels
            return {"offsets": lay.stat_shape, "scales": (*lay.stat_shape, (1 << self.bits) - 1)}
        return {"offsets": lay.stat_shape, "scales": lay.stat_shape}

    def encoded_nbytes(self, num_samples: int, sample_shape: tuple[int, ...]) -> int:
        """Exact payload bytes before any zstd stage (packed codes plus scales/offsets).

        Parameters
        ----------
        num_samples
            Number of samples ``N`` in the batch.
        sample_shape
            Shape of one sample.

        Returns
        -------
        int
            Equals ``encode(x).nbytes`` for codecs without a zstd stage.
        """
        if not _is_int(num_samples) or num_samples < 1:
            raise CodecError(f"encoded_nbytes: expected num_samples >= 1, got {num_samples!r}")
        shape = _meta_shape({"sample_shape": list(sample_shape)})
        lay = self._layout(int(num_samples), shape)
        return lay.code_nbytes + sum(4 * math.prod(s) for s in self._stat_shapes(lay).values())

    def array_specs(self, num_samples: int, sample_shape: tuple[int, ...]) -> dict[str, ArraySpec]:
        """The arrays a payload of this codec (its :attr:`name` form) holds, by key.

        A receiver checks declared dtypes and shapes against these before reading any bytes.

        Parameters
        ----------
        num_samples
            Number of samples ``N`` in the batch.
        sample_shape
            Shape of one sample.

        Returns
        -------
        dict[str, ArraySpec]
            ``codes`` (or ``codes_zstd`` for zstd codecs, bounded by the worst-case frame size
            of the packed codes) and, for quantizers, ``scales`` (and ``offsets``; for ``lq*``
            ``scales`` has one more axis, the ``2**B - 1`` steps between levels).
        """
        if not _is_int(num_samples) or num_samples < 1:
            raise CodecError(f"array_specs: expected num_samples >= 1, got {num_samples!r}")
        lay = self._layout(int(num_samples), _meta_shape({"sample_shape": list(sample_shape)}))
        specs: dict[str, ArraySpec] = {}
        if self.zstd_level is None:
            specs["codes"] = ArraySpec(lay.code_dtype, lay.code_shape, lay.code_nbytes)
        else:
            bound = _zstd_frame_bound(lay.code_nbytes)
            specs["codes_zstd"] = ArraySpec(np.dtype(np.uint8), None, bound)
        for key, shape in self._stat_shapes(lay).items():
            specs[key] = ArraySpec(np.dtype(np.float32), shape, 4 * math.prod(shape))
        return dict(sorted(specs.items()))

    # ---------------------------------------------------------------- encode

    def encode(self, x: np.ndarray | torch.Tensor) -> EncodedBatch:
        """Encode a batch of activations.

        Parameters
        ----------
        x
            Real array or tensor ``(N, *sample_shape)`` with ``N >= 1`` and finite values. It is
            cast to float32 first.

        Returns
        -------
        EncodedBatch
            The payload; ``meta["codec"] == self.name``.

        Raises
        ------
        CodecError
            On non-finite or non-numeric input, an empty batch, values beyond float16 range for
            ``fp16``, or a value range too wide for a float32 scale.
        """
        arr = _as_float32(x)
        n, shape = arr.shape[0], tuple(int(d) for d in arr.shape[1:])
        lay = self._layout(n, shape)
        arrays: dict[str, np.ndarray] = {}
        if self.scheme in _FLOAT_BASES:
            with np.errstate(over="ignore"):  # overflow to inf is reported just below
                codes = arr.reshape(lay.code_shape).astype(lay.code_dtype)
            if self.scheme == "fp16" and not np.isfinite(codes).all():
                raise CodecError(
                    f"encode fp16: expected |x| <= {_F16_MAX:g} (float16 range), got "
                    f"max |x| = {float(np.abs(arr).max()):g}"
                )
        else:
            codes = self._quantize(arr, lay, arrays)
        meta: dict[str, MetaValue] = {
            "codec": self.name,
            "num_samples": n,
            "sample_shape": list(shape),
        }
        if self.is_quantizer:
            meta["group_size"] = lay.group
        if self.zstd_level is None:
            arrays["codes"] = codes
        else:
            raw = np.ascontiguousarray(codes).tobytes()
            comp = zstandard.ZstdCompressor(
                level=self.zstd_level, write_checksum=True, write_content_size=True
            ).compress(raw)
            arrays["codes_zstd"] = np.frombuffer(comp, dtype=np.uint8).copy()
            meta["zstd_raw_nbytes"] = len(raw)
        # Stable key order keeps serialised payloads byte-identical for identical inputs.
        return EncodedBatch(arrays=dict(sorted(arrays.items())), meta=meta)

    def _quantize(self, arr: np.ndarray, lay: _Layout, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Quantize float32 ``arr``; store statistics in ``arrays``, return the packed codes."""
        n = lay.n
        xw = arr.reshape(lay.work_shape(n))
        gidx = np.arange(n) // lay.group
        if self.scheme in _LEVEL_BITS:
            offset, steps = self._fit_levels(arr.reshape(n, lay.channels, lay.spatial), lay)
            arrays["offsets"] = offset.reshape(lay.stat_shape)
            arrays["scales"] = steps.reshape(self._stat_shapes(lay)["scales"])
            self._check_stats(arrays, lay)  # a range beyond float32 is refused before coding
            levels = _levels(offset, steps).astype(np.float64)
            mids = (levels[:, :, 1:] + levels[:, :, :-1]) / 2
            t = np.zeros(xw.shape, np.uint8)
            for j in range(mids.shape[2]):  # code = number of midpoints below: nearest level
                t += xw > _per_sample(mids[:, :, j], gidx, xw.ndim)
            return _pack(t.reshape(n, lay.values), self.bits)
        lo, hi = self._group_range(arr.reshape(n, lay.channels, lay.spatial), lay)
        if self.scheme == "paper":
            scale = _safe_scale(np.maximum(np.abs(lo), np.abs(hi)) / _PAPER_QMAX, self.name)
            t = xw / _per_sample(scale, gidx, xw.ndim)
            np.rint(t, out=t)
            np.clip(t, -_PAPER_QMAX, _PAPER_QMAX, out=t)
            codes = t.astype(np.int8).reshape(n, lay.values)
            arrays["scales"] = scale.reshape(lay.stat_shape)
        else:
            qmax = (1 << self.bits) - 1
            offset = lo.astype(np.float32)
            scale = _safe_scale((hi - offset.astype(np.float64)) / qmax, self.name)
            # x - offset may overflow float32 only for values near its limit; the inf is then
            # clipped to the top code, which is the right answer, so the warning is noise.
            with np.errstate(over="ignore"):
                t = xw - _per_sample(offset, gidx, xw.ndim)
                t /= _per_sample(scale, gidx, xw.ndim)
            np.rint(t, out=t)
            np.clip(t, 0, qmax, out=t)
            codes = _pack(t.astype(np.uint8).reshape(n, lay.values), self.bits)
            arrays["scales"] = scale.reshape(lay.stat_shape)
            arrays["offsets"] = offset.reshape(lay.stat_shape)
        # Values near the float32 limit can give statistics that would decode to inf;
        # refuse here rather than emit a payload the server must reject.
        self._check_stats(arrays, lay)
        return codes

    def _fit_levels(self, x3: np.ndarray, lay: _Layout) -> tuple[np.ndarray, np.ndarray]:
        """Lloyd-Max levels per group (and channel) as float32 ``offsets (G, C)``, ``steps
        (G, C, K-1)``."""
        k = 1 << self.bits
        parts = []
        for count, size, block in _group_blocks(x3, lay):
            flat = block.transpose(0, 2, 1, 3).reshape(count * lay.channels, size * lay.spatial)
            parts.append(_lloyd_levels(flat, k).reshape(count, lay.channels, k))
        levels = np.concatenate(parts)
        with np.errstate(over="ignore"):  # a step beyond float32 is refused by _check_stats
            steps = np.diff(levels, axis=2).astype(np.float32)
        steps[~(steps > 0)] = _MIN_STEP
        return levels[:, :, 0].astype(np.float32), steps

    def _group_range(self, x3: np.ndarray, lay: _Layout) -> tuple[np.ndarray, np.ndarray]:
        """Per group (and channel) range ``(lo, hi)`` as float64 ``(num_groups, C)`` arrays."""
        parts = []
        for count, size, block in _group_blocks(x3, lay):
            if self.clip is None:
                if lay.spatial == 1:  # reducing a trailing length-1 axis is slow; drop it
                    b3 = block[:, :, :, 0]
                    parts.append(np.stack([b3.min(axis=1), b3.max(axis=1)]))
                else:
                    parts.append(np.stack([block.min(axis=(1, 3)), block.max(axis=(1, 3))]))
            else:
                q = [100.0 - float(self.clip), float(self.clip)]
                flat = block.transpose(0, 2, 1, 3).reshape(count, lay.channels, size * lay.spatial)
                parts.append(np.percentile(flat, q, axis=-1))
        rng = np.concatenate(parts, axis=1).astype(np.float64)
        return rng[0], rng[1]

    # ---------------------------------------------------------------- validation

    def _accepted_names(self) -> dict[str, bool]:
        """Codec names this codec decodes, mapped to whether the zstd stage is present."""
        names = {self.name: self.zstd_level is not None}
        if self.zstd_level is not None:
            names[self._plain_name] = False  # a batch passed through without_lossless
        return names

    def _check(
        self, batch: EncodedBatch, max_abs_value: float | None = None
    ) -> tuple[_Layout, np.ndarray, dict[str, np.ndarray]]:
        """Validate ``batch``; return its layout, (decompressed) codes and statistics.

        With ``max_abs_value`` the statistics are also checked against that bound (before any
        decompression); code values are checked by the caller.
        """
        if not isinstance(batch, EncodedBatch):
            raise CodecError(f"expected an EncodedBatch, got {type(batch).__name__}")
        meta, arrays = batch.meta, batch.arrays
        if not isinstance(meta, dict) or not isinstance(arrays, dict):
            raise CodecError("expected EncodedBatch.meta and .arrays to be dicts")
        name = meta.get("codec")
        accepted = self._accepted_names()
        if not isinstance(name, str) or name not in accepted:
            raise CodecError(f"codec: expected {' or '.join(map(repr, accepted))}, got {name!r}")
        zstd = accepted[name]
        keys = {"codec", "num_samples", "sample_shape"}
        if self.is_quantizer:
            keys.add("group_size")
        if zstd:
            keys.add("zstd_raw_nbytes")
        if set(meta) != keys:
            raise CodecError(f"meta ({name}): expected keys {sorted(keys)}, got {sorted(meta)}")
        n = _meta_int(meta, "num_samples", minimum=1)
        lay = self._layout(n, _meta_shape(meta))
        if self.is_quantizer:
            g = _meta_int(meta, "group_size", minimum=1)
            if g != lay.group:
                raise CodecError(
                    f"meta['group_size'] ({name}, {n} samples): expected {lay.group}, got {g}"
                )

        code_key = "codes_zstd" if zstd else "codes"
        stat_shapes = self._stat_shapes(lay)
        want = {code_key, *stat_shapes}
        if set(arrays) != want:
            raise CodecError(f"arrays ({name}): expected {sorted(want)}, got {sorted(arrays)}")
        for key, a in arrays.items():
            if not isinstance(a, np.ndarray):
                raise CodecError(f"arrays[{key!r}]: expected a numpy array, got {type(a)}")

        stats: dict[str, np.ndarray] = {}
        for key, shape in stat_shapes.items():
            stats[key] = _check_array(arrays[key], key, np.dtype(np.float32), shape)
        if stats:
            self._check_stats(stats, lay, max_abs_value)

        if zstd:
            codes = self._decompress(arrays["codes_zstd"], meta, lay)
        else:
            codes = _check_array(arrays["codes"], "codes", lay.code_dtype, lay.code_shape)
        return lay, codes, stats

    def _check_stats(
        self, stats: dict[str, np.ndarray], lay: _Layout, max_abs_value: float | None = None
    ) -> None:
        # Computed in float32 exactly as decode computes (code * scale, then + offset; lq*: the
        # levels): rounding is monotone, so the decoded values of a group lie between its lowest
        # and its highest code's values, and checking those two bounds every value decode can
        # produce.
        scale = stats["scales"]
        if not ((scale > 0) & (scale <= _F32_MAX)).all():
            bad = scale[~((scale > 0) & (scale <= _F32_MAX))].ravel()[0]
            raise PayloadValueError(f"arrays['scales']: expected finite values > 0, got {bad!r}")
        ends: tuple[np.ndarray, ...]
        if "offsets" in stats:
            offset = stats["offsets"]
            if not np.isfinite(offset).all():
                raise PayloadValueError("arrays['offsets']: expected finite values, got NaN or inf")
            if self.scheme in _LEVEL_BITS:
                top = _levels(offset, scale)[..., -1]
            else:
                with np.errstate(over="ignore"):
                    top = offset + scale * np.float32((1 << self.bits) - 1)
            ends = (offset, top)
        else:
            with np.errstate(over="ignore"):
                top = scale * np.float32(_PAPER_QMAX)
            ends = (top,)  # paper is symmetric: -top is the lowest decoded value
        if not np.isfinite(top).all():
            raise PayloadValueError(
                "arrays['scales']: expected decoded values within float32 range, got "
                "offset + max code * scale beyond it"
            )
        if max_abs_value is not None:
            worst = max(float(np.abs(end).max()) for end in ends)
            if worst > max_abs_value:
                raise PayloadValueError(
                    f"arrays['scales'/'offsets']: expected decoded values with |value| <= "
                    f"{max_abs_value:g}, got statistics that decode to |value| up to {worst:g}"
                )

    def _check_codes(self, codes: np.ndarray, max_abs_value: float) -> None:
        """Check every code: ``fp*`` finite and within ``max_abs_value``, ``paper`` != -128."""
        if self.scheme in _FLOAT_BASES:
            if not np.isfinite(codes).all():
                raise PayloadValueError(
                    f"arrays['codes'] ({self.scheme}): expected finite values, got NaN or inf"
                )
            worst = float(np.abs(codes).max())
            if worst > max_abs_value:
                raise PayloadValueError(
                    f"arrays['codes'] ({self.scheme}): expected |value| <= {max_abs_value:g}, "
                    f"got {worst:g}"
                )
        elif self.scheme == "paper" and (codes == -128).any():
            raise PayloadValueError(
                "arrays['codes'] (paper): expected codes in [-127, 127], got -128"
            )

    def _decompress(self, data: np.ndarray, meta: dict[str, MetaValue], lay: _Layout) -> np.ndarray:
        data = _check_array(data, "codes_zstd", np.dtype(np.uint8), None)
        if data.ndim != 1:
            raise CodecError(f"arrays['codes_zstd']: expected a 1-D array, got shape {data.shape}")
        raw_n = _meta_int(meta, "zstd_raw_nbytes", minimum=1)
        if raw_n != lay.code_nbytes:
            raise CodecError(
                f"meta['zstd_raw_nbytes']: expected {lay.code_nbytes} (codes {lay.code_shape} "
                f"{lay.code_dtype}), got {raw_n}"
            )
        if raw_n > MAX_DECOMPRESSED_BYTES:
            raise CodecError(
                f"meta['zstd_raw_nbytes']: expected at most {MAX_DECOMPRESSED_BYTES}, got {raw_n}"
            )
        bound = _zstd_frame_bound(raw_n)
        if data.size > bound:
            raise CodecError(
                f"arrays['codes_zstd']: expected a frame of at most {bound} bytes for {raw_n} "
                f"raw bytes, got {data.size}"
            )
        blob = np.ascontiguousarray(data).tobytes()
        try:
            params = zstandard.get_frame_parameters(blob)
        except zstandard.ZstdError as exc:
            raise CodecError(f"arrays['codes_zstd']: expected a zstd frame, got {exc}") from exc
        if params.content_size != raw_n:
            raise CodecError(
                f"arrays['codes_zstd']: expected a frame of {raw_n} bytes, the frame header "
                f"says {params.content_size}"
            )
        try:
            # One shot into a buffer of exactly the header's content size (checked above to be
            # the layout's size): a frame whose blocks produce more fails instead of growing
            # memory, and allow_extra_data=False refuses bytes after the frame.
            raw = zstandard.ZstdDecompressor().decompress(blob, allow_extra_data=False)
        except zstandard.ZstdError as exc:
            raise CodecError(
                f"arrays['codes_zstd']: expected one intact zstd frame, got {exc}"
            ) from exc
        if len(raw) != raw_n:
            raise CodecError(
                f"arrays['codes_zstd']: expected {raw_n} decompressed bytes, got {len(raw)}"
            )
        return np.frombuffer(raw, dtype=lay.code_dtype).reshape(lay.code_shape)

    def validate(self, batch: EncodedBatch, max_abs_value: float | None = None) -> EncodedBatch:
        """Check that ``batch`` is a well-formed payload of this codec.

        Checks the codec name, the exact set of meta keys and arrays, every dtype and shape, the
        scales (finite, > 0, decoded range within float32) and offsets (finite), and for zstd
        payloads the frame header, size, checksum and exact decompressed size.

        Parameters
        ----------
        batch
            The payload (this codec's :attr:`name` form or its :meth:`without_lossless` form).
        max_abs_value
            ``None`` (default): value checks that need a pass over all codes (``fp*`` codes
            finite, ``paper`` codes != -128) are left to :meth:`decode`, on the selected
            samples only, so sliced decodes stay cheap. A number (``math.inf`` allowed): those
            checks are done here on every code, and every value the payload can decode to must
            have ``|value| <= max_abs_value`` (for quantizers: every value of
            :meth:`value_range`, as float32 decode computes it). A payload that passes then
            decodes, whole or sliced, to finite values within the bound.

        Returns
        -------
        EncodedBatch
            ``batch`` in its :meth:`without_lossless` form (``batch`` itself when it has no zstd
            stage), so a caller that keeps or decodes it need not decompress it again.

        Raises
        ------
        PayloadValueError
            (a :class:`CodecError`) When codes or statistics are out of range.
        CodecError
            On any other mismatch, with a message saying what was expected and what arrived.
        """
        if max_abs_value is not None and not max_abs_value > 0:
            raise ValueError(f"max_abs_value: expected a number > 0, got {max_abs_value!r}")
        _, codes, stats = self._check(batch, max_abs_value)
        if max_abs_value is not None:
            self._check_codes(codes, max_abs_value)
        return self._plain(batch, codes, stats)

    # ---------------------------------------------------------------- decode

    def decode(self, batch: EncodedBatch, index: slice | np.ndarray | None = None) -> np.ndarray:
        """Decode (a selection of) the samples of ``batch``.

        Parameters
        ----------
        batch
            A payload produced by this codec's :meth:`encode` (or its :meth:`without_lossless`
            form).
        index
            Samples to decode along axis 0: a slice, an integer array (negative indices count
            from the end) or a boolean mask of length ``N``; ``None`` decodes all.

        Returns
        -------
        numpy.ndarray
            float32 ``(len(selection), *sample_shape)``, a fresh array.

        Raises
        ------
        CodecError
            If the payload is malformed (checked before anything is decoded).
        IndexError
            If ``index`` is out of range or not an index (a caller error, not a payload error).
        """
        lay, codes, stats = self._check(batch)
        sel = _selection(index, lay.n)
        rows = codes[sel]
        if self.scheme in _FLOAT_BASES:
            out = rows.astype(np.float32, copy=False)  # rows is already a fresh copy
            if not np.isfinite(out).all():
                raise PayloadValueError(f"arrays['codes'] ({self.scheme}): expected finite values")
            return out.reshape((len(sel), *lay.sample_shape))
        gidx = sel // lay.group
        shape = lay.work_shape(len(sel))
        if self.scheme in _LEVEL_BITS:
            k = 1 << self.bits
            levels = _levels(stats["offsets"], stats["scales"]).reshape(-1)
            # Index of each sample's (group, channel) table in the flattened levels.
            first = (gidx[:, None] * lay.channels + np.arange(lay.channels)) * k
            index = _unpack(rows, self.bits, lay.values, np.intp).reshape(shape)
            index += first[:, :, None] if len(shape) == 3 else first
            return levels[index].reshape((len(sel), *lay.sample_shape))
        scale = _per_sample(stats["scales"].reshape(lay.num_groups, lay.channels), gidx, len(shape))
        if self.scheme == "paper":
            if (rows == -128).any():
                raise PayloadValueError(
                    "arrays['codes'] (paper): expected codes in [-127, 127], got -128"
                )
            y = rows.astype(np.float32).reshape(shape)
            y *= scale
        else:
            y = _unpack(rows, self.bits, lay.values, np.float32)
            y = y.reshape(shape)
            y *= scale
            offset = stats["offsets"].reshape(lay.num_groups, lay.channels)
            y += _per_sample(offset, gidx, len(shape))
        return y.reshape((len(sel), *lay.sample_shape))

    def without_lossless(self, batch: EncodedBatch) -> EncodedBatch:
        """Return ``batch`` with the zstd stage undone (codes decompressed).

        Repeated sliced decodes of a zstd payload would decompress everything each time; the
        returned batch (codec name without ``+zstd``) decodes slices directly. Identity for
        codecs without a zstd stage.
        """
        if self.zstd_level is None:
            return batch
        _, codes, stats = self._check(batch)
        return self._plain(batch, codes, stats)

    def _plain(
        self, batch: EncodedBatch, codes: np.ndarray, stats: dict[str, np.ndarray]
    ) -> EncodedBatch:
        """``batch`` (already checked) with its codes as decompressed, under the plain name."""
        if "zstd_raw_nbytes" not in batch.meta:
            return batch
        meta = {k: v for k, v in batch.meta.items() if k != "zstd_raw_nbytes"}
        meta["codec"] = self._plain_name
        arrays = {"codes": codes, **stats}
        return EncodedBatch(arrays=dict(sorted(arrays.items())), meta=meta)

    # ---------------------------------------------------------------- error model

    def value_range(self, batch: EncodedBatch) -> tuple[np.ndarray, np.ndarray]:
        """Range ``(lo, hi)`` of values the payload can represent.

        Values outside it (clipped ones) decode to its nearest end. Arrays are float64 and
        broadcast against ``decode(batch)``.
        """
        lay, _, stats = self._check(batch)
        if self.scheme in _FLOAT_BASES:
            big = _F16_MAX if self.scheme == "fp16" else _F32_MAX
            full = (1,) * (1 + len(lay.sample_shape))
            return np.full(full, -big), np.full(full, big)
        lo, hi, _ = self._range_and_step(lay, stats)
        return lo, hi

    def _range_and_step(
        self, lay: _Layout, stats: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lowest and highest decodable value and the largest step between two consecutive
        ones, per value: float64 arrays that broadcast against ``decode(batch)``."""
        g, c = lay.num_groups, lay.channels
        if self.scheme in _LEVEL_BITS:
            levels = _levels(stats["offsets"], stats["scales"]).astype(np.float64)
            levels = levels.reshape(g, c, -1)
            lo, hi, step = levels[:, :, 0], levels[:, :, -1], np.diff(levels, axis=2).max(axis=2)
        else:
            step = stats["scales"].astype(np.float64).reshape(g, c)
            if self.scheme == "paper":
                lo, hi = -_PAPER_QMAX * step, _PAPER_QMAX * step
            else:
                lo = stats["offsets"].astype(np.float64).reshape(g, c)
                hi = lo + step * ((1 << self.bits) - 1)
        ones = (1,) * max(len(lay.sample_shape) - 1, 0)
        shape = (lay.n, c, *ones) if self.per_channel else (lay.n, *ones, 1)
        if not lay.sample_shape:
            shape = (lay.n,)
        gidx = np.arange(lay.n) // lay.group
        return lo[gidx].reshape(shape), hi[gidx].reshape(shape), step[gidx].reshape(shape)

    def error_bound(self, batch: EncodedBatch) -> np.ndarray:
        """Guaranteed max abs reconstruction error per value (broadcasts against decode).

        For quantizers: half a quantization step (``lq*``: half the group's largest step
        between consecutive levels) plus ``8 * eps32`` times the group's range magnitudes
        (float32 rounding while encoding and decoding), valid for values inside
        :meth:`value_range`. For ``fp16``/``fp32``: ``|decoded| * 2**-10 + 2**-24`` /
        ``|decoded| * 2**-23 + 2**-149`` per value (round to nearest, with a safety factor for
        the float32 cast of float64 inputs). Errors are relative to the input as passed to
        :meth:`encode`.
        """
        if self.scheme in _FLOAT_BASES:
            y = np.abs(self.decode(batch).astype(np.float64))
            if self.scheme == "fp16":
                return y * 2.0**-10 + 2.0**-24
            return y * 2.0**-23 + 2.0**-149
        lay, _, stats = self._check(batch)
        lo, hi, step = self._range_and_step(lay, stats)
        return 0.5 * step + 8 * _EPS32 * (np.abs(lo) + np.abs(hi) + (hi - lo))


# --------------------------------------------------------------------------------------------
# helpers used by Codec


def _group_blocks(x3: np.ndarray, lay: _Layout) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(count, size, block)``: ``count`` groups of ``size`` samples, ``block`` of shape
    ``(count, size, C, spatial)``, covering ``x3 (N, C, spatial)`` in order."""
    # Full groups share one shape, so one vectorised reduction covers them all and the
    # (possibly shorter) last group gets its own; ufunc.reduceat along axis 0 would be
    # simpler but runs 20x slower.
    full = lay.n // lay.group
    for start, count, size in ((0, full, lay.group), (full * lay.group, 1, lay.n % lay.group)):
        if count and size:
            block = x3[start : start + count * size]
            yield count, size, block.reshape(count, size, lay.channels, lay.spatial)


def _safe_scale(scale64: np.ndarray, name: str) -> np.ndarray:
    with np.errstate(over="ignore"):
        scale = scale64.astype(np.float32)
    # A constant group (or one whose step underflows float32) has no usable step; any positive
    # scale decodes it exactly to its offset (u*) or to 0 (paper), so use 1.
    scale[~(scale > 0)] = 1.0
    if not np.isfinite(scale).all():
        raise CodecError(
            f"encode {name}: expected a value range representable with a float32 scale, got "
            f"a range of {float(np.max(scale64)):g} per step"
        )
    return scale


def _check_array(
    a: np.ndarray, key: str, dtype: np.dtype[Any], shape: tuple[int, ...] | None
) -> np.ndarray:
    if a.dtype != dtype:
        raise CodecError(f"arrays[{key!r}]: expected dtype {dtype}, got {a.dtype}")
    if shape is not None and a.shape != shape:
        raise CodecError(f"arrays[{key!r}]: expected shape {shape}, got {a.shape}")
    return a


def _selection(index: slice | np.ndarray | None, n: int) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------
# names

_TOKEN_CLIP = re.compile(r"clip(\d+(?:\.\d+)?)")
_TOKEN_GROUP = re.compile(r"g(\d+)")
_TOKEN_ZSTD = re.compile(r"zstd(\d*)")


def make_codec(name: str, group_size: int | None = None) -> Codec:
    """Build a codec from its name.

    Parameters
    ----------
    name
        ``BASE[-ch][-clipP][-gN][+zstd[L]]`` (dash options in any order, each at most once);
        see the module docstring.
    group_size
        Samples per scale group; overrides the scheme default. If the name also has ``-gN`` the
        two must agree.

    Returns
    -------
    Codec
        Its ``name`` is canonical: ``make_codec(c.name) == c``.

    Raises
    ------
    CodecError
        On an invalid name, naming the valid forms.
    """
    if not isinstance(name, str):
        raise CodecError(f"codec name: {_GRAMMAR}; got {name!r}")
    main, plus, lossless = name.partition("+")
    zstd_level: int | None = None
    if plus:
        m = _TOKEN_ZSTD.fullmatch(lossless)
        if m is None:
            raise CodecError(f"codec name {name!r}: {_GRAMMAR}")
        zstd_level = int(m.group(1)) if m.group(1) else _DEFAULT_ZSTD_LEVEL
    base, *options = main.split("-")
    per_channel, clip, g = False, None, None
    seen: set[str] = set()
    for opt in options:
        kind = "ch" if opt == "ch" else opt[:4] if opt.startswith("clip") else opt[:1]
        if kind in seen:
            raise CodecError(f"codec name {name!r}: option repeated; {_GRAMMAR}")
        seen.add(kind)
        if opt == "ch":
            per_channel = True
        elif (mc := _TOKEN_CLIP.fullmatch(opt)) is not None:
            clip = float(mc.group(1))
        elif (mg := _TOKEN_GROUP.fullmatch(opt)) is not None:
            g = int(mg.group(1))
        else:
            raise CodecError(f"codec name {name!r}: unknown option {opt!r}; {_GRAMMAR}")
    if group_size is not None:
        if not _is_int(group_size) or group_size < 1:
            raise CodecError(f"group_size: expected an int >= 1, got {group_size!r}")
        if g is not None and g != group_size:
            raise CodecError(f"codec name {name!r} says -g{g} but group_size={group_size}")
        g = int(group_size)
    if base not in _BASES:
        raise CodecError(f"codec name {name!r}: unknown base {base!r}; {_GRAMMAR}")
    try:
        return Codec(base, per_channel, clip, g, zstd_level)
    except CodecError as exc:
        raise CodecError(f"codec name {name!r}: {exc}; {_GRAMMAR}") from exc


def list_codecs() -> list[str]:
    """Canonical base names: ``["fp32", "fp16", "paper", "u8", "u4", "u2", "u1"]``."""
    return list(_BASES)


def decode_any(batch: EncodedBatch, index: slice | np.ndarray | None = None) -> np.ndarray:
    """Decode ``batch`` with the codec named in its metadata (see :meth:`Codec.decode`)."""
    if not isinstance(batch, EncodedBatch) or not isinstance(batch.meta, dict):
        raise CodecError(f"expected an EncodedBatch, got {type(batch).__name__}")
    name = batch.meta.get("codec")
    if not isinstance(name, str):
        raise CodecError(f"meta['codec']: expected a codec name, got {name!r}")
    return make_codec(name).decode(batch, index)
