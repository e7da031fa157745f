"""The EcoFed paper's int8: ``paper``.

Symmetric around zero: ``scale = max(|lo|, |hi|) / 127`` per group (of 10 samples by default,
as the paper quantizes each training batch of 10 samples as one tensor) and channel with
``-ch``; code ``round(x / scale)`` clipped to ``[-127, 127]``, int8; decoded value
``code * scale``. -128 is never produced, so zero stays exactly representable, and a payload
holding it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ecofed_flwr.codec.batch import PayloadValueError
from ecofed_flwr.codec.layout import Layout
from ecofed_flwr.codec.quantizer import Quantizer, per_sample, safe_scale

__all__ = ["PAPER_GROUP_SIZE", "PAPER_QMAX", "PaperCodec"]

PAPER_GROUP_SIZE = 10  # the paper quantizes each training batch of 10 samples as one tensor
PAPER_QMAX = 127  # symmetric: -128 is never produced, so zero stays exactly representable


@dataclass(frozen=True)
class PaperCodec(Quantizer):
    """``paper``: symmetric int8, one float32 ``scales`` entry per group (and channel)."""

    scheme: str = "paper"

    SCHEMES: ClassVar[tuple[str, ...]] = ("paper",)
    DEFAULT_GROUP_SIZE: ClassVar[int | None] = PAPER_GROUP_SIZE

    @property
    def bits(self) -> int:
        """8."""
        return 8

    @property
    def _code_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.int8)

    def _stat_shapes(self, lay: Layout) -> dict[str, tuple[int, ...]]:
        return {"scales": lay.stat_shape}

    def _fit(self, x3: np.ndarray, lay: Layout) -> dict[str, np.ndarray]:
        lo, hi = self._group_range(x3, lay)
        scale = safe_scale(np.maximum(np.abs(lo), np.abs(hi)) / PAPER_QMAX, self.name)
        return {"scales": scale.reshape(lay.stat_shape)}

    def _code(
        self, xw: np.ndarray, gidx: np.ndarray, lay: Layout, stats: dict[str, np.ndarray]
    ) -> np.ndarray:
        scale = stats["scales"].reshape(lay.num_groups, lay.channels)
        t = xw / per_sample(scale, gidx, xw.ndim)
        np.rint(t, out=t)
        np.clip(t, -PAPER_QMAX, PAPER_QMAX, out=t)
        return t.astype(np.int8).reshape(lay.n, lay.values)

    def _check_codes(self, codes: np.ndarray, max_abs_value: float) -> None:
        """No code is -128 (the statistics already bound every other)."""
        _refuse_minus_128(codes)

    def _decode_rows(
        self, rows: np.ndarray, sel: np.ndarray, lay: Layout, stats: dict[str, np.ndarray]
    ) -> np.ndarray:
        _refuse_minus_128(rows)
        shape = lay.work_shape(len(sel))
        scale = stats["scales"].reshape(lay.num_groups, lay.channels)
        y = rows.astype(np.float32).reshape(shape)
        y *= per_sample(scale, sel // lay.group, len(shape))
        return y

    def _decoded_ends(self, stats: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        with np.errstate(over="ignore"):
            top = stats["scales"] * np.float32(PAPER_QMAX)
        return (top,)  # symmetric: -top is the lowest decoded value

    def _group_range_and_step(
        self, lay: Layout, stats: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        step = stats["scales"].astype(np.float64).reshape(lay.num_groups, lay.channels)
        return -PAPER_QMAX * step, PAPER_QMAX * step, step


def _refuse_minus_128(codes: np.ndarray) -> None:
    if (codes == -128).any():
        raise PayloadValueError("arrays['codes'] (paper): expected codes in [-127, 127], got -128")
