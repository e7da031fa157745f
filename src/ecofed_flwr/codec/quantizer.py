"""What the quantizing families (``paper``, ``u*``, ``lq*``) share: groups and statistics.

A quantizer splits the batch into groups of consecutive samples (and, with ``-ch``, channels),
fits float32 statistics to each (:meth:`Quantizer._fit`), refuses statistics that would decode
beyond float32, then codes the values against them (:meth:`Quantizer._code`). Its error model
is half the largest step between two decodable values plus float32 rounding of the group's
range; a family states its range and step per group (:meth:`Quantizer._group_range_and_step`)
and the lowest and highest values decode computes (:meth:`Quantizer._decoded_ends`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator

import numpy as np

from ecofed_flwr.codec.base import Codec
from ecofed_flwr.codec.batch import CodecError, PayloadValueError
from ecofed_flwr.codec.layout import Layout
from ecofed_flwr.codec.packing import packed_row_nbytes

__all__ = ["F32_MAX", "Quantizer", "group_blocks", "per_sample", "safe_scale"]

F32_MAX = float(np.finfo(np.float32).max)
_EPS32 = float(np.finfo(np.float32).eps)


class Quantizer(Codec):
    """Base of the quantizing families: packed codes plus per-group (and channel) float32
    statistics, ``scales`` always and ``offsets`` for ``u*`` and ``lq*``."""

    @property
    def is_quantizer(self) -> bool:
        """True: codes plus statistics."""
        return True

    def _row_length(self, values: int) -> int:
        return packed_row_nbytes(values, self.bits)

    def _extra_meta_keys(self) -> frozenset[str]:
        return frozenset({"group_size"})

    def _extra_meta(self, lay: Layout) -> dict[str, int]:
        return {"group_size": lay.group}

    # ---------------------------------------------------------------- encode

    def _encode(self, arr: np.ndarray, lay: Layout) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        stats = self._fit(arr.reshape(lay.n, lay.channels, lay.spatial), lay)
        # Values near the float32 limit can give statistics that would decode to inf; refuse
        # here, before coding, rather than emit a payload the server must reject.
        self._check_stats(stats, lay)
        gidx = np.arange(lay.n) // lay.group
        return self._code(arr.reshape(lay.work_shape(lay.n)), gidx, lay, stats), stats

    def _group_range(self, x3: np.ndarray, lay: Layout) -> tuple[np.ndarray, np.ndarray]:
        """Per group (and channel) range ``(lo, hi)`` of ``x3 (N, C, spatial)`` after any
        clipping, as float64 ``(num_groups, C)`` arrays."""
        parts = []
        for count, size, block in group_blocks(x3, lay):
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

    def _check_stats(
        self, stats: dict[str, np.ndarray], lay: Layout, max_abs_value: float | None = None
    ) -> None:
        # Computed in float32 exactly as decode computes (code * scale, then + offset; lq*: the
        # levels): rounding is monotone, so the decoded values of a group lie between its lowest
        # and its highest code's values, and checking those two bounds every value decode can
        # produce.
        scale = stats["scales"]
        if not ((scale > 0) & (scale <= F32_MAX)).all():
            bad = scale[~((scale > 0) & (scale <= F32_MAX))].ravel()[0]
            raise PayloadValueError(f"arrays['scales']: expected finite values > 0, got {bad!r}")
        if "offsets" in stats and not np.isfinite(stats["offsets"]).all():
            raise PayloadValueError("arrays['offsets']: expected finite values, got NaN or inf")
        ends = self._decoded_ends(stats)
        if not np.isfinite(ends[-1]).all():
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

    # ---------------------------------------------------------------- error model

    def _range_and_step(
        self, lay: Layout, stats: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lowest and highest decodable value and the largest step between two consecutive
        ones, per value: float64 arrays that broadcast against ``decode(batch)``."""
        lo, hi, step = self._group_range_and_step(lay, stats)
        c = lay.channels
        ones = (1,) * max(len(lay.sample_shape) - 1, 0)
        shape = (lay.n, c, *ones) if self.per_channel else (lay.n, *ones, 1)
        if not lay.sample_shape:
            shape = (lay.n,)
        gidx = np.arange(lay.n) // lay.group
        return lo[gidx].reshape(shape), hi[gidx].reshape(shape), step[gidx].reshape(shape)

    def _value_range(
        self, lay: Layout, stats: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        lo, hi, _ = self._range_and_step(lay, stats)
        return lo, hi

    def _error_bound(
        self, lay: Layout, codes: np.ndarray, stats: dict[str, np.ndarray]
    ) -> np.ndarray:
        lo, hi, step = self._range_and_step(lay, stats)
        return 0.5 * step + 8 * _EPS32 * (np.abs(lo) + np.abs(hi) + (hi - lo))

    # ---------------------------------------------------------------- family hooks

    @abstractmethod
    def _fit(self, x3: np.ndarray, lay: Layout) -> dict[str, np.ndarray]:
        """float32 statistics (by key, shaped as stored) of ``x3 (N, C, spatial)``."""

    @abstractmethod
    def _code(
        self, xw: np.ndarray, gidx: np.ndarray, lay: Layout, stats: dict[str, np.ndarray]
    ) -> np.ndarray:
        """Codes ``lay.code_shape`` of ``xw`` (the batch in ``lay.work_shape``), whose sample
        ``i`` belongs to group ``gidx[i]``, against ``stats``."""

    @abstractmethod
    def _decoded_ends(self, stats: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """float32 decoded values that bound all others per group (and channel), computed as
        decode computes them: the lowest (omitted when it is minus the highest) and, last,
        the highest."""

    @abstractmethod
    def _group_range_and_step(
        self, lay: Layout, stats: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lowest and highest decodable value and the largest step between two consecutive
        ones, float64 ``(num_groups, C)`` each."""


# --------------------------------------------------------------------------------------------
# helpers of the families


def group_blocks(x3: np.ndarray, lay: Layout) -> Iterator[tuple[int, int, np.ndarray]]:
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


def per_sample(stat: np.ndarray, gidx: np.ndarray, ndim: int) -> np.ndarray:
    """Expand ``(num_groups, C)`` statistics to broadcast against an ``ndim``-D work array."""
    # Common case (u* default: the whole batch is one group): broadcast, don't gather.
    per = stat if stat.shape[0] == 1 else stat[gidx]
    return per[:, :, None] if ndim == 3 else per


def safe_scale(scale64: np.ndarray, name: str) -> np.ndarray:
    """float32 ``scale64``, a non-positive (constant group) scale replaced by 1;
    :class:`CodecError` if a scale overflows float32."""
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
