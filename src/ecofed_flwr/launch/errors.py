"""The launcher's exceptions."""

from __future__ import annotations

__all__ = ["LaunchError", "LaunchUsageError", "RunFailedError"]


class LaunchError(Exception):
    """The federation could not be run: a Flower process failed to start or the run failed."""


class RunFailedError(LaunchError):
    """``flwr run`` finished but the run did not complete (no completed ``results.json``)."""


class LaunchUsageError(ValueError):
    """What the user asked for cannot be run (bad run-config override, missing app)."""
