"""Learning-rate schedules over a run's server steps (setting ``lr-schedule``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class LRSchedule:
    """A learning-rate factor as a function of the run's progress.

    Progress runs from 0 (the first server step of round 1) to just under 1 (the last step
    of the last round); within a round it advances step by step. SGD momentum is not part of
    the schedule: the optimiser, and with it the momentum, is new every round.

    Parameters
    ----------
    kind : str
        ``"constant"`` (factor 1) or ``"cosine"`` (from 1 down to 0 along half a cosine).
    warmup : float (default: 0.0)
        Fraction of the run, in ``[0, 1)``, over which the factor first rises linearly.
    """

    kind: str
    warmup: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in LR_SCHEDULES:
            raise ValueError(f"lr-schedule must be one of {LR_SCHEDULES}, got {self.kind!r}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"lr-schedule warm-up must be in [0, 1), got {self.warmup}")

    @property
    def name(self) -> str:
        """The setting's text form, e.g. ``cosine`` or ``cosine:0.05``."""
        return f"{self.kind}:{self.warmup:g}" if self.warmup else self.kind

    def factor(self, progress: float) -> float:
        """Multiplier of the base learning rate at ``progress`` in ``[0, 1)``."""
        p = min(max(progress, 0.0), 1.0)
        value = 1.0 if self.kind == "constant" else 0.5 * (1.0 + math.cos(math.pi * p))
        if self.warmup and p < self.warmup:
            value *= p / self.warmup
        return value

    def round_learning_rate(
        self, base: float, server_round: int, num_rounds: int, fraction: float
    ) -> float:
        """Learning rate at ``fraction`` of round ``server_round`` (1-based) of ``num_rounds``.

        A step is placed at the middle of its share of the run, so the first step of a
        warm-up is not wasted at rate 0 and the last step of a cosine run is not at 0.
        """
        rounds = max(num_rounds, server_round, 1)
        progress = (server_round - 1 + min(max(fraction, 0.0), 1.0)) / rounds
        return base * self.factor(progress)


def make_lr_schedule(spec: str) -> LRSchedule:
    """Parse ``constant``, ``cosine`` or ``KIND:WARMUP`` (e.g. ``cosine:0.05``)."""
    kind, _, warmup = spec.partition(":")
    try:
        return LRSchedule(kind, float(warmup) if warmup else 0.0)
    except ValueError as err:
        raise ValueError(
            f"bad lr-schedule {spec!r}: {err}; use 'constant', 'cosine' or 'cosine:0.05'"
        ) from err
