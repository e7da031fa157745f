"""Settings of an EcoFed run: one kebab-case name per setting in run config, CLI and results."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from ecofed_flwr import defaults
from ecofed_flwr.buffer import REPLAY_SELECTIONS, make_refresh_policy
from ecofed_flwr.codec import make_codec
from ecofed_flwr.data import PARTITION_DRAWS, parse_partitioning
from ecofed_flwr.nodes import PARTITION_ASSIGNMENTS
from ecofed_flwr.schedule import make_lr_schedule
from ecofed_flwr.server import KEEP_CHOICES
from ecofed_flwr.trainer import TrainerConfig


class ConfigError(ValueError):
    """A setting is missing, unknown or out of range; the message names it."""


#: Environment variables that keep Hugging Face (hub weights, data sets) offline.
OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


@dataclass(frozen=True)
class EcoFedConfig:
    """Every setting of an EcoFed federation, with the defaults of ``make run``.

    Python names are the snake_case form of the run-config keys (``learning-rate`` is
    ``learning_rate``). See docs/settings.md for what each one does.
    """

    model: str = defaults.MODEL
    model_module: str = ""
    cut: str = defaults.CUT
    weights: str = defaults.WEIGHTS
    input_size: int = defaults.INPUT_SIZE
    dataset: str = defaults.DATASET
    data_dir: str = ""
    partitioning: str = defaults.PARTITIONING
    samples_per_client: int = defaults.SAMPLES_PER_CLIENT
    partition_draw: str = defaults.PARTITION_DRAW
    partition_assignment: str = defaults.PARTITION_ASSIGNMENT
    num_partitions: int = 0
    test_samples: int = 0
    num_server_rounds: int = defaults.NUM_SERVER_ROUNDS
    fraction_train: float = defaults.FRACTION_TRAIN
    min_train_nodes: int = defaults.MIN_TRAIN_NODES
    min_available_nodes: int = 0
    refresh: str = defaults.REFRESH
    replay: str = defaults.REPLAY
    codec: str = defaults.CODEC
    validation_fraction: float = defaults.VALIDATION_FRACTION
    keep: str = defaults.KEEP
    trainer: str = defaults.TRAINER
    learning_rate: float = defaults.LEARNING_RATE
    lr_schedule: str = defaults.LR_SCHEDULE
    momentum: float = defaults.MOMENTUM
    weight_decay: float = defaults.WEIGHT_DECAY
    batch_size: int = defaults.BATCH_SIZE
    local_epochs: int = defaults.LOCAL_EPOCHS
    front_batch_size: int = defaults.FRONT_BATCH_SIZE
    round_timeout: float = defaults.ROUND_TIMEOUT
    seed: int = defaults.SEED
    device: str = defaults.DEVICE
    buffer_memory_mb: float = defaults.BUFFER_MEMORY_MB
    output_dir: str = ""
    resume: bool = defaults.RESUME
    offline: bool = defaults.OFFLINE

    def __post_init__(self) -> None:
        for name, minimum in (
            ("input_size", 8),
            ("num_server_rounds", 1),
            ("min_train_nodes", 1),
            ("min_available_nodes", 0),
            ("batch_size", 1),
            ("local_epochs", 1),
            ("front_batch_size", 1),
            ("samples_per_client", 0),
            ("num_partitions", 0),
            ("test_samples", 0),
        ):
            if getattr(self, name) < minimum:
                raise ConfigError(f"{_key(name)} must be >= {minimum}, got {getattr(self, name)}")
        if not 0.0 < self.fraction_train <= 1.0:
            raise ConfigError(f"fraction-train must be in (0, 1], got {self.fraction_train}")
        if self.round_timeout <= 0:
            raise ConfigError(f"round-timeout must be > 0, got {self.round_timeout}")
        if not 0.0 <= self.buffer_memory_mb < math.inf:
            raise ConfigError(
                f"buffer-memory-mb must be >= 0 (0: no bound), got {self.buffer_memory_mb}"
            )
        if self.resume and not self.output_dir:
            raise ConfigError("resume = true needs output-dir: the run folder to resume")
        if self.partition_draw not in PARTITION_DRAWS:
            raise ConfigError(
                f"partition-draw must be one of {PARTITION_DRAWS}, got {self.partition_draw!r}"
            )
        if self.partition_draw == "with-replacement" and not self.samples_per_client:
            raise ConfigError(
                "partition-draw = 'with-replacement' needs samples-per-client >= 1 (the size "
                "of each drawn partition)"
            )
        if self.partition_assignment not in PARTITION_ASSIGNMENTS:
            raise ConfigError(
                f"partition-assignment must be one of {PARTITION_ASSIGNMENTS}, got "
                f"{self.partition_assignment!r}"
            )
        if self.num_partitions and self.partition_assignment != "server":
            raise ConfigError(
                "num-partitions needs partition-assignment = 'server' (with node-held "
                "partitions each node's config says how many there are)"
            )
        if self.replay not in REPLAY_SELECTIONS:
            raise ConfigError(f"replay must be one of {REPLAY_SELECTIONS}, got {self.replay!r}")
        if self.keep not in KEEP_CHOICES:
            raise ConfigError(f"keep must be one of {KEEP_CHOICES}, got {self.keep!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(
                f"validation-fraction must be in [0, 1), got {self.validation_fraction}"
            )
        checks = (
            ("codec", make_codec),
            ("refresh", make_refresh_policy),
            ("lr_schedule", make_lr_schedule),
            ("partitioning", parse_partitioning),
        )
        for name, parse in checks:
            try:
                parse(getattr(self, name))
            except ValueError as err:
                raise ConfigError(f"{_key(name)}: {err}") from err
        try:
            self.trainer_config()
        except ValueError as err:
            raise ConfigError(str(err)) from err

    def apply_offline(self) -> None:
        """With ``offline`` (the default), forbid Hugging Face downloads in this process.

        The ServerApp and every ClientApp call it first, so that devices on other Ray nodes,
        which do not get the environment of ``ecofed run``, stay offline too.
        """
        if self.offline:
            for key in OFFLINE_ENV:
                os.environ[key] = "1"

    def trainer_config(self) -> TrainerConfig:
        """The server trainer's settings."""
        return TrainerConfig(
            mode=self.trainer,
            learning_rate=self.learning_rate,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            local_epochs=self.local_epochs,
            seed=self.seed,
            device=self.device,
        )

    def server_settings(self) -> dict[str, Any]:
        """Keyword settings shared by :class:`~ecofed_flwr.server.EcoFedServer` and the Flower
        strategies (``EcoFedStrategy(back, ..., **cfg.server_settings())``)."""
        return {
            "codec": self.codec,
            "refresh": self.refresh,
            "replay": self.replay,
            "trainer": self.trainer_config(),
            "lr_schedule": self.lr_schedule,
            "validation_fraction": self.validation_fraction,
            "keep": self.keep,
            "fraction_train": self.fraction_train,
            "min_train_nodes": self.min_train_nodes,
            "seed": self.seed,
        }

    def nodes_to_wait_for(self, num_nodes_hint: int = 0) -> int:
        """Nodes the server waits for before round 1 (``min-available-nodes``; 0: the
        simulated device count when known, else ``min-train-nodes``)."""
        if self.min_available_nodes:
            return max(self.min_available_nodes, self.min_train_nodes)
        return max(self.min_train_nodes, num_nodes_hint)

    @property
    def buffer_memory_bytes(self) -> int:
        """``buffer-memory-mb`` in bytes (1 MB = 10^6 bytes); 0: no bound."""
        return int(self.buffer_memory_mb * 1_000_000)

    def test_indices(self, num_test: int) -> np.ndarray | None:
        """Test samples the server scores: all (None) or a seeded subset of ``test-samples``."""
        if not self.test_samples or self.test_samples >= num_test:
            return None
        return np.random.default_rng(self.seed).permutation(num_test)[: self.test_samples]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> EcoFedConfig:
        """Build from kebab-case keys (Flower's run config); unknown keys are an error."""
        known = {_key(f.name): f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown settings {unknown}; known: {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            f = known[key]
            kind = type(getattr(cls(), f.name))
            try:
                kwargs[f.name] = _coerce(value, kind)
            except (TypeError, ValueError) as err:
                raise ConfigError(f"{key} must be {kind.__name__}, got {value!r}") from err
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Kebab-case keys, as in the run config and the results JSON."""
        return {_key(k): v for k, v in asdict(self).items()}


#: Settings a resumed run may change: where things are, how long to wait, where the buffer
#: lives and the training device (a resume may move to another machine; results then agree
#: only up to that device's rounding).
RESUME_MAY_CHANGE = (
    "output-dir",
    "resume",
    "data-dir",
    "round-timeout",
    "min-available-nodes",
    "buffer-memory-mb",
    "device",
)


def resume_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What ``current`` (kebab-case settings) changes from the ``saved`` settings of the run
    it resumes, besides :data:`RESUME_MAY_CHANGE`: one ``key: saved -> current`` each."""
    keys = sorted((set(saved) | set(current)) - set(RESUME_MAY_CHANGE))
    return [
        f"{k}: {saved.get(k)!r} -> {current.get(k)!r}"
        for k in keys
        if saved.get(k) != current.get(k)
    ]


def _key(name: str) -> str:
    return name.replace("_", "-")


def _coerce(value: Any, kind: type) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise TypeError("expected true or false")
        return value
    if isinstance(value, bool):
        raise TypeError("a boolean where a number or text was expected")
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("not an integer")
        return int(value)
    if kind is float:
        return float(value)
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value
