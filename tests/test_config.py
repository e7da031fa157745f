"""Run settings: one name and one default across pyproject, EcoFedConfig and results."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ecofed_flwr.config import ConfigError, EcoFedConfig

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_pyproject_run_config_matches_the_defaults() -> None:
    run_config = tomllib.loads(PYPROJECT.read_text())["tool"]["flwr"]["app"]["config"]
    assert run_config == EcoFedConfig().to_dict()
    assert EcoFedConfig.from_mapping(run_config) == EcoFedConfig()


def test_readme_documents_every_setting() -> None:
    readme = (PYPROJECT.parent / "docs" / "settings.md").read_text()
    missing = [key for key in EcoFedConfig().to_dict() if f"`{key}`" not in readme]
    assert not missing


def test_round_trip_and_coercion() -> None:
    cfg = EcoFedConfig.from_mapping({"num-server-rounds": 5.0, "learning-rate": 1, "codec": "u2"})
    assert cfg.num_server_rounds == 5 and cfg.learning_rate == 1.0 and cfg.codec == "u2"
    assert EcoFedConfig.from_mapping(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"num-server-round": 3}, "unknown settings"),
        ({"num-server-rounds": 0}, "num-server-rounds must be >= 1"),
        ({"num-server-rounds": 2.5}, "num-server-rounds must be int"),
        ({"fraction-train": 1.5}, "fraction-train"),
        ({"codec": "u3"}, "codec"),
        ({"refresh": "every:0"}, "refresh"),
        ({"partitioning": "zipf"}, "partitioning"),
        ({"trainer": "fast"}, "trainer mode"),
        ({"replay": "every"}, "replay"),
        ({"keep": "first"}, "keep"),
        ({"validation-fraction": 1.0}, "validation-fraction"),
        ({"lr-schedule": "step"}, "lr-schedule"),
        ({"batch-size": True}, "batch-size must be int"),
        ({"model": 3}, "model must be str"),
    ],
)
def test_bad_settings_name_what_is_wrong(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EcoFedConfig.from_mapping(values)
