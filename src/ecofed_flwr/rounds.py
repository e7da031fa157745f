"""A round's records and draws, without Flower: plans, reports, the server's saved state.

:class:`RoundPlan` (who takes part), :class:`RoundReport` (what happened: one entry of the
results' ``rounds``), :class:`ServerState` (everything between two rounds, for a
checkpoint), the seeded draws every server and baseline shares (:func:`sample_clients`,
:func:`holdout_rows`) and the errors of the round driver.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ecofed_flwr.buffer import client_sort_key

KEEP_CHOICES = ("best", "last")

#: Seed streams of a round's draws: sampling, replay selection, the validation hold-out.
SAMPLE_STREAM, REPLAY_STREAM, HOLDOUT_STREAM = 1, 2, 3


class UploadNotExpected(ValueError):
    """An upload from a client that was not asked this round, or a second one."""


class NoUploadError(RuntimeError):
    """A run ended without a single accepted upload: nothing was trained."""


def clients_per_round(num_clients: int, fraction_train: float, min_train_nodes: int) -> int:
    """How many clients a round samples: the rule of Flower's ``FedAvg`` and of EcoFed."""
    if num_clients < 1:
        return 0
    return min(num_clients, max(int(num_clients * fraction_train), min_train_nodes))


def sample_clients(clients: Iterable[str], k: int, seed: int, server_round: int) -> list[str]:
    """The ``k`` clients sampled in ``server_round``: a seeded draw over the sorted names.

    Numeric names (partition ids) sort numerically, so the draw depends only on the seed, the
    round and the set of names, never on the order they were listed. The baselines of the
    comparison harness sample with this same rule.
    """
    pool = sorted(set(clients), key=client_sort_key)
    if not 0 <= k <= len(pool):
        raise ValueError(f"cannot sample {k} of {len(pool)} clients")
    rng = np.random.default_rng([seed, server_round, SAMPLE_STREAM])
    picked: list[int] = [int(i) for i in rng.choice(len(pool), size=k, replace=False)] if k else []
    return sorted((pool[i] for i in picked), key=client_sort_key)


def holdout_rows(num_samples: int, fraction: float, seed: int, client: str) -> np.ndarray:
    """Sorted rows of ``client``'s ``num_samples`` uploaded samples held out for validation.

    The same client, sample count and seed always hold out the same rows, so a refresh never
    moves a held-out sample into training.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    k = math.floor(fraction * num_samples + 0.5) if num_samples > 1 else 0
    if k == 0:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng([seed, HOLDOUT_STREAM, zlib.crc32(client.encode())])
    return np.sort(rng.permutation(num_samples)[:k]).astype(np.int64)


@dataclass(frozen=True)
class RoundPlan:
    """Who takes part in a round.

    Attributes
    ----------
    round : int
        The round (Flower's numbering: the first is 1).
    sampled : list[str]
        The sampled clients, sorted.
    uploaders : list[str]
        The sampled clients the refresh policy asks for activations.
    """

    round: int
    sampled: list[str]
    uploaders: list[str]


@dataclass
class RoundReport:
    """What happened in one round (one entry of the results' ``rounds`` list).

    Round 0 is the untrained back, before any upload. ``accuracy`` and ``loss`` (in
    ``metrics``) are test figures, reported only; ``val_accuracy`` and ``val_loss`` come from
    the hold-out of the uploads and drive model selection.
    """

    round: int
    refresh: bool = False
    sampled: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    slots: list[str] = field(default_factory=list)
    samples_uploaded: int = 0
    holdout_samples: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    bytes_up_activations: int = 0
    bytes_up_labels: int = 0
    buffer_bytes: int = 0
    train_loss: float = float("nan")
    train_samples: int = 0
    train_steps: int = 0
    skipped_steps: int = 0
    learning_rate: float = float("nan")
    server_train_seconds: float = 0.0
    server_train_cpu_seconds: float = 0.0
    exchange_seconds: float = 0.0
    evaluate_seconds: float = 0.0
    device_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    val_accuracy: float | None = None
    val_loss: float | None = None
    best_round: int = 0
    metrics: dict[str, float] = field(default_factory=dict)

    #: Wall-clock fields: they differ between two runs of the same config and seed.
    TIMINGS: ClassVar[tuple[str, ...]] = (
        "seconds",
        "server_train_seconds",
        "server_train_cpu_seconds",
        "exchange_seconds",
        "evaluate_seconds",
        "device_seconds",
    )

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form of the report (test metrics flattened in)."""
        out = dict(self.__dict__)
        out.update(self.metrics)
        del out["metrics"]
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RoundReport:
        """Inverse of :meth:`to_json`."""
        names = set(cls.__dataclass_fields__) - {"metrics"}
        known = {k: v for k, v in doc.items() if k in names}
        for key in ("train_loss", "learning_rate"):
            if known.get(key) is None:
                known.pop(key, None)
        metrics = {k: float(v) for k, v in doc.items() if k not in names and v is not None}
        return cls(**known, metrics=metrics)
