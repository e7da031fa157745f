"""The handshake is answered from the settings: no front is built and no data read for it.

A device answers ``query.ecofed_info`` with the description its settings give and an empty
fingerprint; the server admits it when the described fields agree, and the fingerprint is
checked at the first upload (a front with other weights is refused there, with the reason).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from flwr.app import Context

from ecofed_flwr.app.task import build_split, describe_config
from ecofed_flwr.baselines.wire import task_identity
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.data import LocalData
from ecofed_flwr.handshake import FINGERPRINT_KEY, describe_split
from ecofed_flwr.models import create_split, get_model_spec, split_identity

TINY = {"model": "tiny_cnn", "cut": "block1", "weights": "random", "input-size": 16}


@pytest.fixture(autouse=True)
def _task_identity() -> Iterator[None]:
    with task_identity():  # messages record their sender; outside a Flower run none is set
        yield


@pytest.fixture(scope="module")
def split():  # type: ignore[no-untyped-def]
    return create_split("tiny_cnn", "block1", "random", 10, 16, seed=0)


def _cfg(**overrides: Any) -> EcoFedConfig:
    return EcoFedConfig.from_mapping({**TINY, "dataset": "synthetic", **overrides})


def _data(context: Context) -> LocalData:
    gen = torch.Generator().manual_seed(int(context.node_config["partition-id"]))  # type: ignore[call-overload]
    return LocalData(torch.randn(20, 3, 16, 16, generator=gen), np.arange(20) % 10, 10)


def _refusing(what: str, calls: list[str]) -> Any:
    def factory(context: Context) -> Any:
        calls.append(what)
        raise AssertionError(f"the handshake called the {what}")

    return factory


# ------------------------------------------------------------------ the description


def test_the_config_describes_the_split_it_builds_without_building_it() -> None:
    cfg = _cfg()
    expected = {**describe_split(build_split(cfg)), FINGERPRINT_KEY: ""}
    assert describe_config(cfg) == expected
    # The model's defaults fill in what create_split fills in.
    built = create_split("tiny_cnn", num_classes=10)
    identity = (built.model_name, built.cut, built.weights, built.input_size)
    assert split_identity("tiny_cnn") == identity
    # The default run's front (built in about 2 s, so only its fields): the registry's names.
    spec = get_model_spec(EcoFedConfig().model)
    assert describe_config(EcoFedConfig()) == {
        FINGERPRINT_KEY: "",
        "model": spec.name,
        "cut": EcoFedConfig().cut,
        "weights": EcoFedConfig().weights,
        "input-size": EcoFedConfig().input_size,
    }
    assert spec.default_cut == EcoFedConfig().cut and spec.default_weights == "imagenet"
