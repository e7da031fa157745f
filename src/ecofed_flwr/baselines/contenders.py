"""The protocols the harness runs, by name, and the EcoFed presets (in one place)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecofed_flwr import defaults
from ecofed_flwr.baselines.dpfl import VanillaDPFL
from ecofed_flwr.baselines.lgl import LocalLossDPFL
from ecofed_flwr.baselines.split_learning import SplitLearning
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.server import clients_per_round

#: Every protocol name :func:`ecofed_flwr.baselines.run_protocol` accepts.
#:
#: - ``fl``: FedAvg on the whole model; ``fl-back``: FedAvg on the back only, the front
#:   frozen and pre-trained on every device (which runs it forward at every step).
#: - ``dpfl``, ``lgl``: vanilla and local-loss DNN-partitioning FL.
#: - ``ecofed-paper``, ``ecofed-best``: EcoFed with the paper's settings and with ours;
#:   ``ecofed`` runs it with the setting's own codec, refresh, replay and trainer (sweeps).
#: - ``central``, ``central-frozen``: references without federation: the whole model, or the
#:   back on fp32 front activations, trained on the clients' pooled training data.
PROTOCOLS = (
    "fl",
    "fl-back",
    "dpfl",
    "lgl",
    "ecofed-paper",
    "ecofed-best",
    "ecofed",
    "central",
    "central-frozen",
)

#: The protocols simulated in one process, by name.
SPLIT_PROTOCOLS: dict[str, type[SplitLearning]] = {"dpfl": VanillaDPFL, "lgl": LocalLossDPFL}

#: FedAvg protocols and what their devices train: the whole model or the back only.
FL_PROTOCOLS: dict[str, str] = {"fl": "all", "fl-back": "back"}

#: Central references: whether their front is frozen, and whose SGD updates per round they
#: get (``"sampled"``: the round's sampled clients' rows times local epochs, like ``fl``;
#: ``"seen"``: every client sampled so far, like ``ecofed-best``, which replays them all).
CENTRAL_PROTOCOLS: dict[str, tuple[bool, str]] = {
    "central": (False, "sampled"),
    "central-frozen": (True, "seen"),
}

#: The paper's settings (SPEC section 2): :data:`ecofed_flwr.defaults.PAPER`.
ECOFED_PAPER: dict[str, Any] = dict(defaults.PAPER)

#: Our best configuration: the defaults of ``make run``.
ECOFED_BEST: dict[str, Any] = {
    "codec": defaults.CODEC,
    "refresh": defaults.REFRESH,
    "replay": defaults.REPLAY,
    "trainer": defaults.TRAINER,
    "learning-rate": defaults.LEARNING_RATE,
    "lr-schedule": defaults.LR_SCHEDULE,
    "momentum": defaults.MOMENTUM,
    "batch-size": defaults.BATCH_SIZE,
    "validation-fraction": defaults.VALIDATION_FRACTION,
    "keep": defaults.KEEP,
}

PRESETS: dict[str, dict[str, Any]] = {"ecofed-paper": ECOFED_PAPER, "ecofed-best": ECOFED_BEST}

__all__ = [
    "CENTRAL_PROTOCOLS",
    "ECOFED_BEST",
    "ECOFED_PAPER",
    "FL_PROTOCOLS",
    "PRESETS",
    "PROTOCOLS",
    "SPLIT_PROTOCOLS",
    "clients_per_round",
    "is_ecofed",
    "protocol_config",
]


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
