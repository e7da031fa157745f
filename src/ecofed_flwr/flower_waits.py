"""Shorter retry waits for Flower's object pulls, set once per process.

Flower 1.42 asks again for a message part that is not there yet after 1 s, doubling up to
10 s (500 tries). A part is usually missing only because its sender is still pushing it, so
on a LAN that first second is most of an exchange. :func:`shorten_backoff` makes a Flower
function that takes ``initial_backoff``/``backoff_cap`` keywords default to shorter waits,
by wrapping the name its module calls it by; calls that pass their own waits keep them.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

__all__ = ["shorten_backoff"]


def shorten_backoff(module: ModuleType, name: str, first: float, cap: float) -> None:
    """Make ``module.<name>`` default to waits of ``first`` seconds doubling up to ``cap``
    (once: a second call leaves the first wrapper in place)."""
    current = getattr(module, name)
    if getattr(current, "ecofed_short_waits", False):
        return

    @functools.wraps(current)
    def pull(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("initial_backoff", first)
        kwargs.setdefault("backoff_cap", cap)
        return current(*args, **kwargs)

    pull.ecofed_short_waits = True  # type: ignore[attr-defined]
    setattr(module, name, pull)
