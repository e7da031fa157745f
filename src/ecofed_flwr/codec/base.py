"""The base class of every codec family: naming, layout, and the encode/validate/decode skeleton.

:class:`Codec` does what is the same for every family: it checks the options, builds the
canonical name, lays out the payload, checks a received payload's codec name, metadata, array
keys, dtypes and shapes, slices samples for a decode, and applies or undoes the lossless stage
(:class:`~ecofed_flwr.codec.zstd.ZstdStage`). A family overrides the hooks (the methods whose
names start with one underscore below ``bits``) that say what its codes and statistics are and
how values become codes and codes values.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ecofed_flwr.codec.batch import (
    ArraySpec,
    CodecError,
    EncodedBatch,
    MetaValue,
    check_array,
    is_int,
    meta_int,
    meta_shape,
)
from ecofed_flwr.codec.layout import Layout, as_float32, selection
from ecofed_flwr.codec.zstd import CODES_KEY, RAW_NBYTES_KEY, ZstdStage

if TYPE_CHECKING:
    import torch

__all__ = ["Codec"]

_META_KEYS = frozenset({"codec", "num_samples", "sample_shape"})


@dataclass(frozen=True)
class Codec(ABC):
    """One codec: a scheme plus its options. Build it with :func:`make_codec`.

    ``Codec`` is the base of the families (:class:`FloatCodec`, :class:`PaperCodec`,
    :class:`UniformCodec`, :class:`LevelCodec`); a family class can also be built directly,
    with the same parameters.

    Parameters
    ----------
    scheme
        ``"fp32"``, ``"fp16"``, ``"paper"``, ``"u8"``, ``"u4"``, ``"u2"``, ``"u1"``, ``"lq4"``,
        ``"lq2"`` or ``"lq1"`` (one of the family's :attr:`SCHEMES`).
    per_channel
        Statistics per channel (axis 1 of the input) instead of per group.
    clip
        Percentile ``P`` (``50 < P < 100``): values are clipped to the group's
        ``[100-P, P]`` percentiles before the range is measured. ``None``: no clipping.
        ``paper`` and ``u*`` only.
    group_size
        Samples per group sharing one scale; ``None`` means the family default
        (:attr:`DEFAULT_GROUP_SIZE`: the whole batch, 10 for ``paper``). Must be ``None`` for
        ``fp32``/``fp16``.
    zstd_level
        Level of the lossless zstd stage over the packed codes; ``None`` disables it. The stage
        itself is :attr:`lossless`.

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
    #: The lossless stage applied after encoding (``None``: none), built from ``zstd_level``.
    lossless: ZstdStage | None = field(init=False, repr=False, compare=False)

    #: Base names this family encodes, in :func:`list_codecs` order.
    SCHEMES: ClassVar[tuple[str, ...]] = ()
    #: Samples per group when ``group_size`` is ``None``; ``None``: the whole batch.
    DEFAULT_GROUP_SIZE: ClassVar[int | None] = None

    def __post_init__(self) -> None:
        if self.scheme not in self.SCHEMES:
            raise CodecError(
                f"codec scheme: expected one of {', '.join(self.SCHEMES)} for "
                f"{type(self).__name__}, got {self.scheme!r}"
            )
        self._check_options()
        if self.clip is not None and not (50.0 < float(self.clip) < 100.0):
            raise CodecError(f"codec clip: expected 50 < P < 100, got {self.clip!r}")
        if self.group_size is not None and (not is_int(self.group_size) or self.group_size < 1):
            raise CodecError(f"codec group_size: expected an int >= 1, got {self.group_size!r}")
        stage = None if self.zstd_level is None else ZstdStage(self.zstd_level)
        object.__setattr__(self, "lossless", stage)

    # ---------------------------------------------------------------- naming and sizes

    @property
    @abstractmethod
    def bits(self) -> int:
        """Nominal code width in bits (32 fp32, 16 fp16, 8 paper/u8, 4, 2, 1 for u*/lq*)."""

    @property
    def is_quantizer(self) -> bool:
        """True for ``paper``, ``u*`` and ``lq*`` (codes plus statistics), False for floats."""
        return False

    @property
    def _effective_group_size(self) -> int | None:
        return self.DEFAULT_GROUP_SIZE if self.group_size is None else self.group_size

    @property
    def _plain_name(self) -> str:
        parts = [self.scheme]
        if self.per_channel:
            parts.append("ch")
        if self.clip is not None:
            text = repr(float(self.clip))
            parts.append("clip" + (text[:-2] if text.endswith(".0") else text))
        g = self._effective_group_size
        if g is not None and g != self.DEFAULT_GROUP_SIZE:
            parts.append(f"g{g}")
        return "-".join(parts)

    @property
    def name(self) -> str:
        """Canonical name; ``make_codec(c.name) == c``."""
        return self._plain_name + ("" if self.lossless is None else self.lossless.suffix)

    def _layout(self, n: int, sample_shape: tuple[int, ...]) -> Layout:
        values = math.prod(sample_shape)
        if self.per_channel and not sample_shape:
            raise CodecError(
                f"codec {self.name}: per-channel statistics need samples with at least one "
                f"axis, got sample shape {sample_shape}"
            )
        channels = sample_shape[0] if self.per_channel else 1
        g = self._effective_group_size or n
        num_groups = -(-n // g)
        return Layout(
            n=n,
            sample_shape=sample_shape,
            values=values,
            channels=channels,
            spatial=values // channels,
            group=g,
            num_groups=num_groups,
            stat_shape=(num_groups, channels) if self.per_channel else (num_groups,),
            code_shape=(n, self._row_length(values)),
            code_dtype=self._code_dtype,
        )

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
        if not is_int(num_samples) or num_samples < 1:
            raise CodecError(f"encoded_nbytes: expected num_samples >= 1, got {num_samples!r}")
        lay = self._layout(int(num_samples), meta_shape({"sample_shape": list(sample_shape)}))
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
        if not is_int(num_samples) or num_samples < 1:
            raise CodecError(f"array_specs: expected num_samples >= 1, got {num_samples!r}")
        lay = self._layout(int(num_samples), meta_shape({"sample_shape": list(sample_shape)}))
        specs: dict[str, ArraySpec] = {}
        if self.lossless is None:
            specs["codes"] = ArraySpec(lay.code_dtype, lay.code_shape, lay.code_nbytes)
        else:
            specs[CODES_KEY] = self.lossless.spec(lay.code_nbytes)
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
        arr = as_float32(x)
        n, shape = arr.shape[0], tuple(int(d) for d in arr.shape[1:])
        lay = self._layout(n, shape)
        codes, arrays = self._encode(arr, lay)
        meta: dict[str, MetaValue] = {
            "codec": self.name,
            "num_samples": n,
            "sample_shape": list(shape),
            **self._extra_meta(lay),
        }
        if self.lossless is None:
            arrays["codes"] = codes
        else:
            arrays[CODES_KEY], meta[RAW_NBYTES_KEY] = self.lossless.compress(codes)
        # Stable key order keeps serialised payloads byte-identical for identical inputs.
        return EncodedBatch(arrays=dict(sorted(arrays.items())), meta=meta)

    # ---------------------------------------------------------------- validation

    def _accepted_names(self) -> dict[str, bool]:
        """Codec names this codec decodes, mapped to whether the zstd stage is present."""
        names = {self.name: self.lossless is not None}
        if self.lossless is not None:
            names[self._plain_name] = False  # a batch passed through without_lossless
        return names

    def _check(
        self, batch: EncodedBatch, max_abs_value: float | None = None
    ) -> tuple[Layout, np.ndarray, dict[str, np.ndarray]]:
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
        stage = self.lossless if accepted[name] else None
        keys = _META_KEYS | self._extra_meta_keys() | ({RAW_NBYTES_KEY} if stage else set())
        if set(meta) != keys:
            raise CodecError(f"meta ({name}): expected keys {sorted(keys)}, got {sorted(meta)}")
        n = meta_int(meta, "num_samples", minimum=1)
        lay = self._layout(n, meta_shape(meta))
        for key, value in self._extra_meta(lay).items():
            got = meta_int(meta, key, minimum=1)
            if got != value:
                raise CodecError(
                    f"meta[{key!r}] ({name}, {n} samples): expected {value}, got {got}"
                )

        stat_shapes = self._stat_shapes(lay)
        want = {CODES_KEY if stage else "codes", *stat_shapes}
        if set(arrays) != want:
            raise CodecError(f"arrays ({name}): expected {sorted(want)}, got {sorted(arrays)}")
        for key, a in arrays.items():
            if not isinstance(a, np.ndarray):
                raise CodecError(f"arrays[{key!r}]: expected a numpy array, got {type(a)}")

        stats: dict[str, np.ndarray] = {}
        for key, shape in stat_shapes.items():
            stats[key] = check_array(arrays[key], key, np.dtype(np.float32), shape)
        if stats:
            self._check_stats(stats, lay, max_abs_value)

        if stage is not None:
            codes = stage.decompress(arrays[CODES_KEY], meta, lay.code_dtype, lay.code_shape)
        else:
            codes = check_array(arrays["codes"], "codes", lay.code_dtype, lay.code_shape)
        return lay, codes, stats

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
        sel = selection(index, lay.n)
        out = self._decode_rows(codes[sel], sel, lay, stats)  # codes[sel] is a fresh copy
        return out.reshape((len(sel), *lay.sample_shape))

    def without_lossless(self, batch: EncodedBatch) -> EncodedBatch:
        """Return ``batch`` with the zstd stage undone (codes decompressed).

        Repeated sliced decodes of a zstd payload would decompress everything each time; the
        returned batch (codec name without ``+zstd``) decodes slices directly. Identity for
        codecs without a zstd stage.
        """
        if self.lossless is None:
            return batch
        _, codes, stats = self._check(batch)
        return self._plain(batch, codes, stats)

    def _plain(
        self, batch: EncodedBatch, codes: np.ndarray, stats: dict[str, np.ndarray]
    ) -> EncodedBatch:
        """``batch`` (already checked) with its codes as decompressed, under the plain name."""
        if RAW_NBYTES_KEY not in batch.meta:
            return batch
        meta = {k: v for k, v in batch.meta.items() if k != RAW_NBYTES_KEY}
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
        return self._value_range(lay, stats)

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
        lay, codes, stats = self._check(batch)
        return self._error_bound(lay, codes, stats)

    # ---------------------------------------------------------------- family hooks

    def _check_options(self) -> None:
        """Refuse options (``per_channel``, ``clip``, ``group_size``) the family has not."""
        return None  # default: the family takes every option

    @property
    @abstractmethod
    def _code_dtype(self) -> np.dtype[Any]:
        """dtype of the codes as stored."""

    def _row_length(self, values: int) -> int:
        """Codes per sample's row for ``values`` values: one each unless packed."""
        return values

    def _stat_shapes(self, lay: Layout) -> dict[str, tuple[int, ...]]:
        """Shape of each float32 statistics array of a payload with layout ``lay`` (none)."""
        return {}

    def _extra_meta_keys(self) -> frozenset[str]:
        """Meta keys the family adds to ``codec``, ``num_samples``, ``sample_shape``."""
        return frozenset()

    def _extra_meta(self, lay: Layout) -> dict[str, int]:
        """The values of :meth:`_extra_meta_keys` for layout ``lay`` (each an int >= 1)."""
        return {}

    @abstractmethod
    def _encode(self, arr: np.ndarray, lay: Layout) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Codes ``lay.code_dtype lay.code_shape`` and statistics (by key, as stored) of
        float32 ``arr``."""

    def _check_stats(
        self, stats: dict[str, np.ndarray], lay: Layout, max_abs_value: float | None = None
    ) -> None:
        """Refuse statistics (already of the right dtype and shape) out of range; with
        ``max_abs_value`` also those that decode beyond it."""
        return None  # default: no statistics

    def _check_codes(self, codes: np.ndarray, max_abs_value: float) -> None:
        """Refuse any code the encoder never produces or that decodes beyond the bound."""
        return None  # default: every code is valid and within the statistics' bound

    @abstractmethod
    def _decode_rows(
        self, rows: np.ndarray, sel: np.ndarray, lay: Layout, stats: dict[str, np.ndarray]
    ) -> np.ndarray:
        """float32 values (any shape of ``len(sel) * lay.values`` elements) of the code rows
        ``rows`` of samples ``sel``; ``rows`` may be modified."""

    @abstractmethod
    def _value_range(
        self, lay: Layout, stats: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`value_range`."""

    @abstractmethod
    def _error_bound(
        self, lay: Layout, codes: np.ndarray, stats: dict[str, np.ndarray]
    ) -> np.ndarray:
        """See :meth:`error_bound`."""
