"""Settings of an EcoFed run: one kebab-case name per setting in run config, CLI and results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from ecofed_flwr.buffer import REPLAY_SELECTIONS, make_refresh_policy
from ecofed_flwr.codec import make_codec
from ecofed_flwr.data import parse_partitioning
from ecofed_flwr.trainer import TrainerConfig


class ConfigError(ValueError):
    """A setting is missing, unknown or out of range; the message names it."""


@dataclass(frozen=True)
class EcoFedConfig:
    """Every setting of an EcoFed federation, with the defaults of ``make run``.

    Python names are the snake_case form of the run-config keys (``learning-rate`` is
    ``learning_rate``). See the README's table for what each one does.
    """

    model: str = "tf_efficientnet_lite0"
    cut: str = "stage4"
    weights: str = "imagenet"
    input_size: int = 32
    dataset: str = "fashion_mnist"
    data_dir: str = ""
    partitioning: str = "iid"
    samples_per_client: int = 2000
    test_samples: int = 0
    num_server_rounds: int = 3
    fraction_train: float = 0.5
    min_train_nodes: int = 2
    refresh: str = "once"
    replay: str = "sampled"
    codec: str = "u4"
    trainer: str = "pooled"
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    local_epochs: int = 1
    front_batch_size: int = 256
    round_timeout: float = 900.0
    seed: int = 0
    device: str = "auto"
    output_dir: str = ""

    def __post_init__(self) -> None:
        for name, minimum in (
            ("input_size", 8),
            ("num_server_rounds", 1),
            ("min_train_nodes", 1),
            ("batch_size", 1),
            ("local_epochs", 1),
            ("front_batch_size", 1),
            ("samples_per_client", 0),
            ("test_samples", 0),
        ):
            if getattr(self, name) < minimum:
                raise ConfigError(f"{_key(name)} must be >= {minimum}, got {getattr(self, name)}")
        if not 0.0 < self.fraction_train <= 1.0:
            raise ConfigError(f"fraction-train must be in (0, 1], got {self.fraction_train}")
        if self.round_timeout <= 0:
            raise ConfigError(f"round-timeout must be > 0, got {self.round_timeout}")
        if self.replay not in REPLAY_SELECTIONS:
            raise ConfigError(f"replay must be one of {REPLAY_SELECTIONS}, got {self.replay!r}")
        checks = (
            ("codec", make_codec),
            ("refresh", make_refresh_policy),
            ("partitioning", parse_partitioning),
        )
        for name, parse in checks:
            try:
                parse(getattr(self, name))
            except ValueError as err:
                raise ConfigError(f"{name}: {err}") from err
        try:
            self.trainer_config()
        except ValueError as err:
            raise ConfigError(str(err)) from err

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


def _key(name: str) -> str:
    return name.replace("_", "-")


def _coerce(value: Any, kind: type) -> Any:
    if kind is bool or isinstance(value, bool):
        raise TypeError("booleans are not settings here")
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("not an integer")
        return int(value)
    if kind is float:
        return float(value)
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value
