"""The handshake is answered from the settings: no front is built and no data read for it.

A device answers ``query.ecofed_info`` with the description its settings give and an empty
fingerprint; the server admits it when the described fields agree, and the fingerprint is
checked at the first upload (a front with other weights is refused there, with the reason).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from fixtures_test import flower_task_identity, tiny_split_fixture  # noqa: F401  (pytest fixtures)
from flwr.app import ArrayRecord, Context
from flwr.clientapp import ClientApp

from ecofed_flwr import federation
from ecofed_flwr.app import task
from ecofed_flwr.app.task import build_split, describe_config
from ecofed_flwr.baselines.loopback import LoopbackGrid
from ecofed_flwr.clients import EcoFedNumPyClient, add_ecofed_handlers
from ecofed_flwr.clients.ecofed import FrontMismatchError
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.data import LocalData
from ecofed_flwr.handshake import FINGERPRINT_KEY, describe_split
from ecofed_flwr.models import create_split, get_model_spec, split_identity
from ecofed_flwr.strategies import EcoFedStrategy

TINY = {"model": "tiny_cnn", "cut": "block1", "weights": "random", "input-size": 16}


pytestmark = pytest.mark.usefixtures("flower_task_identity")


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


# ------------------------------------------------------------------ the device's answer


def test_a_described_device_answers_without_its_front_or_its_data(split: Any) -> None:
    calls: list[str] = []
    app = add_ecofed_handlers(
        ClientApp(),
        _refusing("front factory", calls),
        _refusing("data loader", calls),
        describe=lambda context: describe_config(_cfg()),
    )
    strategy = EcoFedStrategy.from_split(split, min_available_nodes=2)
    grid = LoopbackGrid(app, 2)
    strategy._discover(grid, 1)  # noqa: SLF001
    assert calls == []
    # A failed handshake would leave the nodes as node-<id>: these answered, with their ids.
    assert set(strategy.nodes.clients()) == {"0", "1"} and not strategy.excluded_nodes


def test_without_describe_the_device_builds_its_front_to_answer(split: Any) -> None:
    built: list[int] = []

    def front(context: Context) -> Any:
        built.append(1)
        return split

    app = add_ecofed_handlers(ClientApp(), front, _refusing("data loader", []))
    strategy = EcoFedStrategy.from_split(split, min_available_nodes=1)
    strategy._discover(LoopbackGrid(app, 1), 1)  # noqa: SLF001
    assert built == [1] and set(strategy.nodes.clients()) == {"0"}


def test_the_built_in_client_app_builds_nothing_and_reads_nothing_for_the_handshake(
    split: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(task, "_split", _refusing("split", calls))
    monkeypatch.setattr(task, "_dataset", _refusing("data set", calls))
    monkeypatch.setattr(federation, "_cached_data", _refusing("partition", calls))
    strategy = EcoFedStrategy.from_split(split, min_available_nodes=3)
    strategy._discover(LoopbackGrid(federation.make_client_app(_cfg()), 3), 1)  # noqa: SLF001
    assert calls == []
    assert set(strategy.nodes.clients()) == {"0", "1", "2"} and not strategy.excluded_nodes


def test_a_described_device_of_another_cut_is_excluded_at_the_handshake(split: Any) -> None:
    app = add_ecofed_handlers(
        ClientApp(), lambda c: split, _data, describe=lambda c: describe_config(_cfg(cut="block2"))
    )
    strategy = EcoFedStrategy.from_split(split, min_available_nodes=1)
    strategy._discover(LoopbackGrid(app, 1), 1)  # noqa: SLF001
    (reason,) = strategy.excluded_nodes.values()
    assert "cut: server 'block1', device 'block2'" in reason
    assert not strategy.nodes.clients()


# ------------------------------------------------------------------ checked at upload


def test_a_front_with_other_weights_passes_the_handshake_and_is_refused_at_upload(
    split: Any,
) -> None:
    other = create_split("tiny_cnn", "block1", "random", 10, 16, seed=99)  # same description
    assert describe_split(other) == {**describe_split(split), FINGERPRINT_KEY: other.fingerprint}
    loaded: list[int] = []

    def front(context: Context) -> Any:
        return other if context.node_config["partition-id"] == 1 else split

    def data(context: Context) -> LocalData:
        loaded.append(int(context.node_config["partition-id"]))  # type: ignore[call-overload]
        return _data(context)

    app = add_ecofed_handlers(ClientApp(), front, data, describe=lambda c: describe_config(_cfg()))
    strategy = EcoFedStrategy.from_split(
        split, min_available_nodes=2, min_train_nodes=2, refresh="every:1", batch_size=10
    )
    strategy.start(LoopbackGrid(app, 2), ArrayRecord(), num_rounds=2, timeout=5)
    assert not strategy.excluded_nodes  # the handshake let both in
    for report in strategy.reports[1:]:
        assert report.uploaded == ["0"]
        reason = report.refused["1"]
        assert "another front" in reason and "the front's weights differ" in reason, reason
    # Refused before its data is read; asked again at the next refresh, like any refusal.
    assert 1 not in loaded and len(strategy.reports) == 3


def test_a_legacy_device_refuses_another_front_before_reading_its_data(split: Any) -> None:
    read: list[int] = []

    class Client(EcoFedNumPyClient):
        def local_data(self) -> LocalData:
            read.append(1)
            return super().local_data()

    data = LocalData(torch.zeros(4, 3, 16, 16), np.zeros(4, np.int64), 10)
    request = {**describe_split(split), FINGERPRINT_KEY: "0" * 64, "codec": "u4"}
    with pytest.raises(FrontMismatchError, match="the front's weights differ"):
        Client(split, data, partition_id=0).fit([], request)
    with pytest.raises(FrontMismatchError, match=r"fingerprint: server \(none\)"):
        Client(split, data, partition_id=0).fit([], {**request, FINGERPRINT_KEY: ""})
    assert read == []
    assert Client(split, data, partition_id=0).fit([], {**request, **describe_split(split)})[1] == 4
    assert read == [1]
