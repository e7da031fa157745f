"""Unsigned uniform (affine) quantization: ``u8``, ``u4``, ``u2``, ``u1``.

Per group (the whole batch by default) and channel with ``-ch``: ``offset = lo``,
``scale = (hi - lo) / (2**B - 1)``; code ``round((x - offset) / scale)`` clipped to
``[0, 2**B - 1]``, packed (:mod:`ecofed_flwr.codec.packing`); decoded value
``code * scale + offset``. All ``2**B`` codes are used whatever the sign of the values.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ecofed_flwr.codec.layout import Layout
from ecofed_flwr.codec.packing import pack, unpack
from ecofed_flwr.codec.quantizer import Quantizer, per_sample, safe_scale

__all__ = ["UniformCodec"]

_BITS = {"u8": 8, "u4": 4, "u2": 2, "u1": 1}


class UniformCodec(Quantizer):
    """``uB``: B-bit unsigned affine codes, float32 ``offsets`` and ``scales`` per group (and
    channel)."""

    SCHEMES: ClassVar[tuple[str, ...]] = tuple(_BITS)

    @property
    def bits(self) -> int:
        """8, 4, 2 or 1."""
        return _BITS[self.scheme]

    @property
    def _qmax(self) -> int:
        return (1 << self.bits) - 1

    @property
    def _code_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.uint8)

    def _stat_shapes(self, lay: Layout) -> dict[str, tuple[int, ...]]:
        return {"offsets": lay.stat_shape, "scales": lay.stat_shape}

    def _fit(self, x3: np.ndarray, lay: Layout) -> dict[str, np.ndarray]:
        lo, hi = self._group_range(x3, lay)
        offset = lo.astype(np.float32)
        scale = safe_scale((hi - offset.astype(np.float64)) / self._qmax, self.name)
        return {"offsets": offset.reshape(lay.stat_shape), "scales": scale.reshape(lay.stat_shape)}

    def _code(
        self, xw: np.ndarray, gidx: np.ndarray, lay: Layout, stats: dict[str, np.ndarray]
    ) -> np.ndarray:
        offset = stats["offsets"].reshape(lay.num_groups, lay.channels)
        scale = stats["scales"].reshape(lay.num_groups, lay.channels)
        # x - offset may overflow float32 only for values near its limit; the inf is then
        # clipped to the top code, which is the right answer, so the warning is noise.
        with np.errstate(over="ignore"):
            t = xw - per_sample(offset, gidx, xw.ndim)
            t /= per_sample(scale, gidx, xw.ndim)
        np.rint(t, out=t)
        np.clip(t, 0, self._qmax, out=t)
        return pack(t.astype(np.uint8).reshape(lay.n, lay.values), self.bits)

    def _decode_rows(
        self, rows: np.ndarray, sel: np.ndarray, lay: Layout, stats: dict[str, np.ndarray]
    ) -> np.ndarray:
        shape = lay.work_shape(len(sel))
        gidx = sel // lay.group
        offset = stats["offsets"].reshape(lay.num_groups, lay.channels)
        scale = stats["scales"].reshape(lay.num_groups, lay.channels)
        y = unpack(rows, self.bits, lay.values, np.float32).reshape(shape)
        y *= per_sample(scale, gidx, len(shape))
        y += per_sample(offset, gidx, len(shape))
        return y

    def _decoded_ends(self, stats: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        offset = stats["offsets"]
        with np.errstate(over="ignore"):
            top = offset + stats["scales"] * np.float32(self._qmax)
        return offset, top

    def _group_range_and_step(
        self, lay: Layout, stats: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        step = stats["scales"].astype(np.float64).reshape(lay.num_groups, lay.channels)
        lo = stats["offsets"].astype(np.float64).reshape(lay.num_groups, lay.channels)
        return lo, lo + step * self._qmax, step
