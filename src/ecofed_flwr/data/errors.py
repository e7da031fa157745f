"""The single exception type raised by :mod:`ecofed_flwr.data`."""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """A data set could not be loaded, converted or partitioned as asked.

    It subclasses :class:`ValueError` so that callers which already treat bad
    arguments as ``ValueError`` keep working; the message always says what was
    wrong and, where it can, how to fix it.
    """
