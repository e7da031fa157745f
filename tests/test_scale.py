"""Federations larger than one round's sample, and than the data set.

- partitions drawn on their own (with replacement across partitions), so a federation may
  hold more devices than the data set has samples;
- server-assigned partitions: the server samples partition ids and names one in each upload
  request to any free node, so a round asks only the nodes it samples (no handshake with
  every connected node).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures_test import flower_task_identity  # noqa: F401  (pytest fixtures)
from flwr.app import ConfigRecord, Context, Message, RecordDict

from ecofed_flwr.app.server_app import make_server_app
from ecofed_flwr.app.task import client_data
from ecofed_flwr.baselines.loopback import run_loopback
from ecofed_flwr.clients.ecofed import assigned_context
from ecofed_flwr.config import ConfigError, EcoFedConfig
from ecofed_flwr.data import DataError, draw_partition
from ecofed_flwr.federation import make_client_app
from ecofed_flwr.handshake import NUM_PARTITIONS_KEY, PARTITION_KEY
from ecofed_flwr.models import create_split
from ecofed_flwr.protocol import CONFIG_KEY, UPLOAD_MESSAGE_TYPE
from ecofed_flwr.strategies import EcoFedStrategy

pytestmark = pytest.mark.usefixtures("flower_task_identity")


# ------------------------------------------------------------------ partitions drawn on their own


def test_a_drawn_partition_depends_only_on_seed_and_id() -> None:
    labels = np.arange(1000) % 10
    a = draw_partition(labels, 123_456, 50, seed=3)
    assert len(a) == len(set(a.tolist())) == 50 and np.all(np.diff(a) > 0)
    assert np.array_equal(a, draw_partition(labels, 123_456, 50, seed=3))
    assert not np.array_equal(a, draw_partition(labels, 123_457, 50, seed=3))
    assert not np.array_equal(a, draw_partition(labels, 123_456, 50, seed=4))
    dirichlet = draw_partition(labels, 7, 60, "dirichlet", seed=0, alpha=0.1)
    assert len(set(dirichlet.tolist())) == 60
    assert np.bincount(labels[dirichlet], minlength=10).max() >= 20  # skewed by alpha 0.1
    shards = draw_partition(labels, 7, 60, "shards", seed=0, classes_per_partition=2)
    assert len(set(labels[shards].tolist())) == 2
    # a class asked for more than it holds passes its excess on
    few = np.array([0] * 5 + [1] * 95)
    assert len(set(draw_partition(few, 1, 90, "shards", classes_per_partition=1).tolist())) == 90
    with pytest.raises(DataError, match="larger than"):
        draw_partition(labels, 0, 1001)


def test_a_federation_larger_than_the_data_set_gets_drawn_partitions() -> None:
    cfg = EcoFedConfig.from_mapping(
        {
            "model": "tiny_cnn",
            "cut": "block1",
            "weights": "random",
            "input-size": 16,
            "dataset": "synthetic",
            "samples-per-client": 30,
        }
    )
    # 2,000 synthetic training samples: 5,000 disjoint partitions are impossible.
    data = client_data(cfg, 4_321, 5_000)
    assert len(data.labels) == 30
    again = client_data(cfg, 4_321, 100_000)  # the same partition whatever the federation
    assert np.array_equal(np.asarray(data.labels), np.asarray(again.labels))
    disjoint = EcoFedConfig.from_mapping({**cfg.to_dict(), "partition-draw": "disjoint"})
    with pytest.raises(Exception, match="exceeds the 2000 samples"):
        client_data(disjoint, 4_321, 5_000)
    with pytest.raises(ConfigError, match="samples-per-client"):
        EcoFedConfig.from_mapping({"partition-draw": "with-replacement", "samples-per-client": 0})
    with pytest.raises(ConfigError, match="partition-assignment"):
        EcoFedConfig.from_mapping({"partition-assignment": "anyone"})


# ------------------------------------------------------------------ server-assigned partitions


class _CountingGrid:
    """A Grid of many nodes that records what is sent (the test answers nothing)."""

    def __init__(self, num_nodes: int) -> None:
        self.nodes = list(range(10**6, 10**6 + num_nodes))
        self.sent: list[Message] = []

    def get_node_ids(self) -> Iterable[int]:
        return list(self.nodes)

    def push_messages(self, messages: Iterable[Message]) -> list[str]:
        self.sent.extend(messages)
        return [str(i) for i, _ in enumerate(self.sent)]

    def pull_messages(self, message_ids: Iterable[str]) -> list[Message]:
        return []  # nobody answers


def test_server_assignment_asks_only_the_sampled_nodes() -> None:
    split = create_split("tiny_cnn", "block1", "random", 10, 16, seed=0)
    strategy = EcoFedStrategy.from_split(
        split, partition_assignment="server", fraction_train=0.002, min_available_nodes=1
    )
    grid = _CountingGrid(20_000)
    messages = list(strategy.configure_train(1, None, ConfigRecord(), grid))  # type: ignore[arg-type]
    assert not grid.sent  # no handshake at all
    assert len(messages) == 40 == len(set(m.metadata.dst_node_id for m in messages))
    named = [m.content.config_records[CONFIG_KEY] for m in messages]
    assert all(m.metadata.message_type == UPLOAD_MESSAGE_TYPE for m in messages)
    assert all(c[NUM_PARTITIONS_KEY] == 20_000 for c in named)
    assert sorted(str(c[PARTITION_KEY]) for c in named) == sorted(strategy.server.plan.uploaders)
    # The sample is the seeded draw over partition ids, as with node-held partitions.
    other = EcoFedStrategy.from_split(split, fraction_train=0.002, min_available_nodes=1)
    assert (
        strategy.server.plan.sampled
        == other.server.begin_round(1, [str(i) for i in range(20_000)]).sampled
    )
    # A node whose upload failed is not used again.
    first = messages[0]
    reply = Message(RecordDict(), reply_to=first)
    reply.metadata.__dict__["_src_node_id"] = first.metadata.dst_node_id
    strategy.aggregate_train(1, [reply])
    assert first.metadata.dst_node_id in strategy.excluded_nodes


def test_a_device_loads_the_partition_the_server_names() -> None:
    context = Context(1, 5, {PARTITION_KEY: 0, NUM_PARTITIONS_KEY: 2}, RecordDict(), {})

    def request(**config: Any) -> Message:
        return Message(
            RecordDict({CONFIG_KEY: ConfigRecord(config)}),
            dst_node_id=5,
            message_type=UPLOAD_MESSAGE_TYPE,
        )

    assert assigned_context(request(codec="u4"), context) is context
    named = assigned_context(request(**{PARTITION_KEY: 77, NUM_PARTITIONS_KEY: 100}), context)
    assert named.node_config[PARTITION_KEY] == 77 and named.node_config[NUM_PARTITIONS_KEY] == 100
    for bad in ({PARTITION_KEY: 100, NUM_PARTITIONS_KEY: 100}, {PARTITION_KEY: True}):
        with pytest.raises(ValueError, match="partition"):
            assigned_context(request(**bad), context)


def test_a_simulated_federation_larger_than_the_data_set_runs(tmp_path: Path) -> None:
    cfg = EcoFedConfig.from_mapping(
        {
            "model": "tiny_cnn",
            "cut": "block1",
            "weights": "random",
            "input-size": 16,
            "dataset": "synthetic",
            "samples-per-client": 40,
            "test-samples": 100,
            "num-server-rounds": 2,
            "fraction-train": 0.002,
            "min-available-nodes": 1,
            "partition-assignment": "server",
            "batch-size": 32,
            "output-dir": str(tmp_path),
        }
    )
    run_loopback(make_server_app(cfg), make_client_app(cfg), 2_500)
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["data_partitions"] == {
        "draw": "with-replacement",
        "num_partitions": 2_500,
        "train_samples": 2_000,
        "assignment": "server",
    }
    rounds = doc["rounds"][1:]
    assert [len(r["sampled"]) for r in rounds] == [5, 5]
    assert all(len(r["uploaded"]) == 5 and not r["refused"] for r in rounds)
    # No handshake: the only messages down are the 5 upload requests of each round.
    down = [e for e in doc["ledger"] if e["direction"] == "down"]
    assert sum(e["messages"] for e in down) == 10 and len({e["round"] for e in down}) == 2
    assert doc["rounds"][2]["train_samples"] == 10 * 36  # 10 clients' 40 samples less 4 held out
