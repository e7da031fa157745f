"""Tails of the logs of the processes we start, for error messages."""

from __future__ import annotations

import collections
from collections.abc import Sequence
from pathlib import Path

__all__ = ["format_tails", "log_tail"]

TAIL_LINES = 40


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of the text file ``path`` ('' if it does not exist)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return "".join(collections.deque(f, maxlen=lines))
    except FileNotFoundError:
        return ""


def format_tails(logs: Sequence[Path]) -> str:
    """The tails of ``logs`` (those not empty), each under a heading, for an error message."""
    parts = []
    for path in logs:
        tail = log_tail(path).rstrip()
        if tail:
            parts.append(f"\n--- last lines of {path} ---\n{tail}")
    return "".join(parts)
