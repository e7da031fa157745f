"""The single exception type raised by :mod:`ecofed_flwr.data`, and its integer check."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DataError", "check_int"]


class DataError(ValueError):
    """A data set could not be loaded, converted or partitioned as asked.

    It subclasses :class:`ValueError` so that callers which already treat bad
    arguments as ``ValueError`` keep working; the message always says what was
    wrong and, where it can, how to fix it.
    """


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int, or a DataError naming ``name`` unless it is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise DataError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise DataError(f"{name} must be >= {minimum}, got {value}")
    return int(value)
