"""Plain floats: ``fp32`` and ``fp16``.

The codes are the values themselves, cast to the scheme's dtype, ``(N, values per sample)``;
no statistics, no groups. Decode casts back to float32 and refuses non-finite codes.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ecofed_flwr.codec.base import Codec
from ecofed_flwr.codec.batch import CodecError, PayloadValueError
from ecofed_flwr.codec.layout import Layout

__all__ = ["FloatCodec"]

_DTYPES: dict[str, np.dtype[Any]] = {"fp32": np.dtype(np.float32), "fp16": np.dtype(np.float16)}
# Round to nearest: relative error 2**-(mantissa bits + 1), doubled as a safety factor for the
# float32 cast of float64 inputs, plus the smallest subnormal for values that underflow.
_RELATIVE_ERROR = {"fp32": 2.0**-23, "fp16": 2.0**-10}
_ABSOLUTE_ERROR = {"fp32": 2.0**-149, "fp16": 2.0**-24}


class FloatCodec(Codec):
    """``fp32`` or ``fp16``: the values as floats of that width.

    ``per_channel``, ``clip`` and ``group_size`` do not apply (a :class:`CodecError` if set).
    """

    SCHEMES: ClassVar[tuple[str, ...]] = ("fp32", "fp16")

    def _check_options(self) -> None:
        if self.per_channel or self.clip is not None or self.group_size is not None:
            raise CodecError(
                f"codec {self.scheme!r}: -ch, -clip and group_size apply only to quantizing "
                f"schemes; got per_channel={self.per_channel}, clip={self.clip}, "
                f"group_size={self.group_size}"
            )

    @property
    def bits(self) -> int:
        """32 or 16."""
        return 8 * self._code_dtype.itemsize

    @property
    def _code_dtype(self) -> np.dtype[Any]:
        return _DTYPES[self.scheme]

    def _encode(self, arr: np.ndarray, lay: Layout) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        with np.errstate(over="ignore"):  # overflow to inf is reported just below
            codes = arr.reshape(lay.code_shape).astype(lay.code_dtype)
        if codes.dtype != arr.dtype and not np.isfinite(codes).all():  # a narrowing cast
            big = float(np.finfo(codes.dtype).max)
            raise CodecError(
                f"encode {self.scheme}: expected |x| <= {big:g} ({codes.dtype} range), got "
                f"max |x| = {float(np.abs(arr).max()):g}"
            )
        return codes, {}

    def _check_codes(self, codes: np.ndarray, max_abs_value: float) -> None:
        """Every code finite and within ``max_abs_value``."""
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

    def _decode_rows(
        self, rows: np.ndarray, sel: np.ndarray, lay: Layout, stats: dict[str, np.ndarray]
    ) -> np.ndarray:
        out = rows.astype(np.float32, copy=False)
        if not np.isfinite(out).all():
            raise PayloadValueError(f"arrays['codes'] ({self.scheme}): expected finite values")
        return out

    def _value_range(
        self, lay: Layout, stats: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        big = float(np.finfo(self._code_dtype).max)
        full = (1,) * (1 + len(lay.sample_shape))
        return np.full(full, -big), np.full(full, big)

    def _error_bound(
        self, lay: Layout, codes: np.ndarray, stats: dict[str, np.ndarray]
    ) -> np.ndarray:
        decoded = self._decode_rows(codes, np.arange(lay.n), lay, stats)
        y = np.abs(decoded.reshape((lay.n, *lay.sample_shape)).astype(np.float64))
        return y * _RELATIVE_ERROR[self.scheme] + _ABSOLUTE_ERROR[self.scheme]
