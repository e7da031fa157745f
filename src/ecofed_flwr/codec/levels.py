"""Levels fitted to the data (Lloyd-Max): ``lq4``, ``lq2``, ``lq1``.

Per group (the whole batch by default) and channel with ``-ch``, ``K = 2**B`` levels start at
the group's ``(j + 0.5) / K`` quantiles and 16 Lloyd-Max passes move each to the mean of the
values nearest to it. A value's code is the index of its nearest level, packed like ``u*``.
The levels travel as ``offsets`` (the lowest) and ``scales`` ``(..., K - 1)``: the steps, all
> 0, from each level to the next, so the levels ``offset + cumsum(steps)`` never decrease, by
construction. ``-clip`` does not apply: fitted levels already place themselves against the
tails.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ecofed_flwr.codec.batch import CodecError
from ecofed_flwr.codec.layout import Layout
from ecofed_flwr.codec.packing import pack, unpack
from ecofed_flwr.codec.quantizer import Quantizer, group_blocks, per_sample

__all__ = ["LevelCodec", "levels", "lloyd_levels"]

_BITS = {"lq4": 4, "lq2": 2, "lq1": 1}
# Lloyd-Max passes from quantile-placed levels: on EfficientNet-Lite0 activations 16 passes
# reach the fixed point's MSE within 0.2 % at 2 bits (and within 10 % at 4 bits).
_LLOYD_ITERATIONS = 16
# Replaces a fitted step that is not > 0 in float32 (a group with fewer distinct values than
# levels): any positive step keeps the payload valid, the smallest normal float keeps the range.
_MIN_STEP = float(np.finfo(np.float32).tiny)


class LevelCodec(Quantizer):
    """``lqB``: indices into ``2**B`` fitted levels, float32 ``offsets`` (lowest level) and
    ``scales`` (steps between levels) per group (and channel)."""

    SCHEMES: ClassVar[tuple[str, ...]] = tuple(_BITS)

    def _check_options(self) -> None:
        if self.clip is not None:
            raise CodecError(
                f"codec {self.scheme!r}: -clip applies only to paper and u*, the levels of "
                f"{self.scheme} are fitted to the data, tails included; got clip={self.clip}"
            )

    @property
    def bits(self) -> int:
        """4, 2 or 1."""
        return _BITS[self.scheme]

    @property
    def _code_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.uint8)

    def _stat_shapes(self, lay: Layout) -> dict[str, tuple[int, ...]]:
        # one step between each two consecutive levels
        return {"offsets": lay.stat_shape, "scales": (*lay.stat_shape, (1 << self.bits) - 1)}

    def _fit(self, x3: np.ndarray, lay: Layout) -> dict[str, np.ndarray]:
        k = 1 << self.bits
        parts = []
        for count, size, block in group_blocks(x3, lay):
            flat = block.transpose(0, 2, 1, 3).reshape(count * lay.channels, size * lay.spatial)
            parts.append(lloyd_levels(flat, k).reshape(count, lay.channels, k))
        fitted = np.concatenate(parts)
        with np.errstate(over="ignore"):  # a step beyond float32 is refused by _check_stats
            steps = np.diff(fitted, axis=2).astype(np.float32)
        steps[~(steps > 0)] = _MIN_STEP
        shapes = self._stat_shapes(lay)
        return {
            "offsets": fitted[:, :, 0].astype(np.float32).reshape(shapes["offsets"]),
            "scales": steps.reshape(shapes["scales"]),
        }

    def _code(
        self, xw: np.ndarray, gidx: np.ndarray, lay: Layout, stats: dict[str, np.ndarray]
    ) -> np.ndarray:
        g, c = lay.num_groups, lay.channels
        table = levels(stats["offsets"].reshape(g, c), stats["scales"].reshape(g, c, -1))
        table = table.astype(np.float64)
        mids = (table[:, :, 1:] + table[:, :, :-1]) / 2
        t = np.zeros(xw.shape, np.uint8)
        for j in range(mids.shape[2]):  # code = number of midpoints below: nearest level
            t += xw > per_sample(mids[:, :, j], gidx, xw.ndim)
        return pack(t.reshape(lay.n, lay.values), self.bits)

    def _decode_rows(
        self, rows: np.ndarray, sel: np.ndarray, lay: Layout, stats: dict[str, np.ndarray]
    ) -> np.ndarray:
        k = 1 << self.bits
        shape = lay.work_shape(len(sel))
        table = levels(stats["offsets"], stats["scales"]).reshape(-1)
        # Index of each sample's (group, channel) table in the flattened levels.
        first = ((sel // lay.group)[:, None] * lay.channels + np.arange(lay.channels)) * k
        index = unpack(rows, self.bits, lay.values, np.intp).reshape(shape)
        index += first[:, :, None] if len(shape) == 3 else first
        return table[index]

    def _decoded_ends(self, stats: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        return stats["offsets"], levels(stats["offsets"], stats["scales"])[..., -1]

    def _group_range_and_step(
        self, lay: Layout, stats: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        table = levels(stats["offsets"], stats["scales"]).astype(np.float64)
        table = table.reshape(lay.num_groups, lay.channels, -1)
        return table[:, :, 0], table[:, :, -1], np.diff(table, axis=2).max(axis=2)


def levels(offsets: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Levels ``(..., K)`` float32 of an ``lq*`` payload: ``offset + cumsum(steps)``.

    The one place levels are computed (encode, decode, validation), so every check sees exactly
    the values decode produces. Steps > 0 and float32 rounding is monotone, so the levels never
    decrease and the last is the largest.
    """
    with np.errstate(over="ignore"):  # beyond float32: the caller refuses a non-finite top
        stacked = np.concatenate([offsets[..., None], steps], axis=-1)
        return np.cumsum(stacked, axis=-1, dtype=np.float32)


def lloyd_levels(values: np.ndarray, k: int) -> np.ndarray:
    """Lloyd-Max levels ``(R, k)`` float64, non-decreasing, of each row of ``values (R, M)``.

    Levels start at the rows' ``(j + 0.5) / k`` quantiles, then each pass moves every level to
    the mean of the values nearest to it (a level whose cell is empty stays where it is).
    """
    rows = values.shape[0]
    fitted = np.quantile(values, (np.arange(k) + 0.5) / k, axis=1).T.astype(np.float64)
    base = (np.arange(rows) * k)[:, None]
    for _ in range(_LLOYD_ITERATIONS):
        cell = np.zeros(values.shape, np.intp)
        mids = (fitted[:, 1:] + fitted[:, :-1]) / 2
        for j in range(k - 1):
            cell += values > mids[:, j : j + 1]
        flat = (cell + base).ravel()
        count = np.bincount(flat, minlength=rows * k).reshape(rows, k)
        total = np.bincount(flat, weights=values.ravel(), minlength=rows * k).reshape(rows, k)
        fitted = np.where(count > 0, total / np.maximum(count, 1), fitted)
    return fitted
