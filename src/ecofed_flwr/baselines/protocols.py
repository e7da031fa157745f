"""The protocols the harness runs, by name, and the EcoFed presets (in one place)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecofed_flwr.baselines.dpfl import VanillaDPFL
from ecofed_flwr.baselines.lgl import LocalLossDPFL
from ecofed_flwr.baselines.split_learning import SplitLearning
from ecofed_flwr.config import EcoFedConfig

#: Every protocol name :func:`ecofed_flwr.baselines.run_protocol` accepts.
#: ``ecofed`` runs EcoFed with the setting's own codec, refresh, replay and trainer (for
#: sweeps); the two presets fix them.
PROTOCOLS = ("fl", "dpfl", "lgl", "ecofed-paper", "ecofed-best", "ecofed")

#: The protocols simulated in one process, by name.
SPLIT_PROTOCOLS: dict[str, type[SplitLearning]] = {"dpfl": VanillaDPFL, "lgl": LocalLossDPFL}

#: SPEC section 2: int8 per tensor, P = 2, per-client copies, random buffered client per slot,
#: SGD lr 0.01, momentum 0.9, batch 10.
ECOFED_PAPER: dict[str, Any] = {
    "codec": "paper",
    "refresh": "every:2",
    "replay": "paper",
    "trainer": "copies",
    "learning-rate": 0.01,
    "momentum": 0.9,
    "batch-size": 10,
}

#: Our best configuration. Provisional: to be replaced by the winner of the codec sweep.
ECOFED_BEST: dict[str, Any] = {
    "codec": "u4",
    "refresh": "once",
    "replay": "sampled",
    "trainer": "pooled",
    "learning-rate": 0.05,
    "batch-size": 64,
}

PRESETS: dict[str, dict[str, Any]] = {"ecofed-paper": ECOFED_PAPER, "ecofed-best": ECOFED_BEST}


def is_ecofed(name: str) -> bool:
    """Whether ``name`` is one of the EcoFed protocols (run by the EcoFed Flower App)."""
    return name.startswith("ecofed")


def protocol_config(
    name: str, config: EcoFedConfig, overrides: Mapping[str, Any] | None = None
) -> EcoFedConfig:
    """The settings protocol ``name`` runs with: ``config``, its preset, then ``overrides``.

    ``overrides`` uses the run-config (kebab-case) names, e.g. ``{"codec": "u2"}``.
    """
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; protocols: {', '.join(PROTOCOLS)}")
    values = {**config.to_dict(), **PRESETS.get(name, {}), **(overrides or {})}
    return EcoFedConfig.from_mapping(values)


def clients_per_round(num_clients: int, fraction_train: float, min_train_nodes: int) -> int:
    """How many clients a round samples: the rule of Flower's ``FedAvg`` and of EcoFed."""
    if num_clients < 1:
        raise ValueError(f"need at least one client, got {num_clients}")
    return min(num_clients, max(int(num_clients * fraction_train), min_train_nodes))
