"""Both Flower APIs decide alike: one node registry, one validation of uploads.

The Message-API strategy and the legacy strategy share the node registry and
``decode_upload``; these tests feed the same handshake answers and the same uploads through
both and check the decisions are the same, and pin the drifts found before they shared them
(a boolean partition id, a ``metric.num-examples`` overriding ``FitRes.num_examples``, an
array of another serialization, a node that left being sampled).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pytest
import torch
from fixtures_test import flower_task_identity, tiny_split_fixture  # noqa: F401  (pytest fixtures)
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict
from flwr.common import Code, GetPropertiesRes, Status, ndarrays_to_parameters

from ecofed_flwr.clients import upload_reply
from ecofed_flwr.data import LocalData
from ecofed_flwr.handshake import FINGERPRINT_KEY, INFO_KEY, PARTITION_KEY, describe_split
from ecofed_flwr.nodes import HandshakeError, NodeRegistry
from ecofed_flwr.protocol import (
    CONFIG_KEY,
    METRICS_KEY,
    UPLOAD_MESSAGE_TYPE,
    UploadRefused,
    decode_upload,
)
from ecofed_flwr.protocol.legacy import content_from_fit_result, fit_result_from_content
from ecofed_flwr.strategies import EcoFedLegacyStrategy, EcoFedStrategy

pytestmark = pytest.mark.usefixtures("flower_task_identity")


# ------------------------------------------------------------------ the registry itself


def test_registry_decides_partition_ids_fronts_and_departures() -> None:
    front = {FINGERPRINT_KEY: "f" * 64, "model": "m"}
    registry = NodeRegistry(front)
    assert registry.connected([10, 11, 12, 13, 14, 15]) == [10, 11, 12, 13, 14, 15]
    ok = {FINGERPRINT_KEY: "f" * 64}
    assert registry.admit(10, {**ok, PARTITION_KEY: 3}).client == "3"
    assert registry.admit(11, {**ok, PARTITION_KEY: True}).client == "node-11"  # a bool
    assert registry.admit(12, {**ok, PARTITION_KEY: -1}).client == "node-12"
    assert registry.admit(13, {**ok, PARTITION_KEY: 3}).client == "node-13"  # taken
    other = registry.admit(14, {FINGERPRINT_KEY: "0" * 64, "model": "n", PARTITION_KEY: 4})
    assert other.excluded and "model: server 'm', device 'n'" in other.excluded
    assert registry.admit(15, None).client == "node-15"  # no answer: still asked to upload
    assert set(registry.clients()) == {"3", "node-11", "node-12", "node-13", "node-15"}
    assert set(registry.excluded) == {14}
    # Only what is connected now: node 10 left, and the known and excluded are not re-asked.
    assert registry.connected([11, 12, 13, 14, 15, 20]) == [20]
    assert "3" not in registry.clients() and 14 in registry.excluded
    state = registry.state_dict()
    restored = NodeRegistry(front)
    restored.load_state_dict(state)
    assert restored.clients() == registry.clients() and restored.excluded == registry.excluded
    with pytest.raises(ValueError, match="nodes"):
        restored.load_state_dict({"nodes": {"x": "1"}, "excluded": {}})


def test_an_answer_without_fingerprint_is_checked_by_its_described_fields() -> None:
    front = {FINGERPRINT_KEY: "f" * 64, "model": "m", "cut": "c", "weights": "w"}
    registry = NodeRegistry(front)
    registry.connected(range(1, 7))
    described = {"model": "m", "cut": "c", "weights": "w", "input-size": 16}
    # Not built yet: admitted on its description (the fingerprint is checked at upload).
    assert not registry.admit(1, {**described, FINGERPRINT_KEY: "", PARTITION_KEY: 0}).excluded
    assert not registry.admit(2, {**described, PARTITION_KEY: 1}).excluded  # no key at all
    other_cut = registry.admit(3, {**described, "cut": "d", FINGERPRINT_KEY: ""})
    assert other_cut.excluded and "cut: server 'c', device 'd'" in other_cut.excluded
    assert "fingerprint" not in other_cut.excluded
    # A fingerprint that is given decides: another one is excluded, the same one admitted.
    other_weights = registry.admit(4, {**described, FINGERPRINT_KEY: "0" * 64})
    assert other_weights.excluded and "the front's weights differ" in other_weights.excluded
    assert not registry.admit(5, {**described, "weights": "x", FINGERPRINT_KEY: "f" * 64}).excluded
    assert set(registry.clients()) == {"0", "1", "node-5"} and set(registry.excluded) == {3, 4}


def test_a_strict_registry_refuses_a_missing_or_taken_partition() -> None:
    registry = NodeRegistry(strict=True)
    registry.connected([1, 2, 3])
    assert registry.admit(1, {PARTITION_KEY: 0}).client == "0"
    for node, info in ((2, {PARTITION_KEY: 0}), (3, {PARTITION_KEY: False}), (3, {})):
        with pytest.raises(HandshakeError, match=f"node {node}"):
            registry.admit(node, info)


# ------------------------------------------------------------------ handshake on both APIs


class _Grid:
    """A Message-API Grid whose nodes answer the handshake with fixed info records."""

    def __init__(self, answers: Mapping[int, dict[str, Any] | None]) -> None:
        self.answers = dict(answers)
        self.asked: list[int] = []

    def get_node_ids(self) -> Iterable[int]:
        return list(self.answers)

    def push_messages(self, messages: Iterable[Message]) -> list[str]:
        sent = list(messages)
        for i, message in enumerate(sent):
            message.metadata.__dict__["_message_id"] = f"m{len(self.asked) + i}"
        self._replies = self.send_and_receive(sent, timeout=0)
        return [m.metadata.message_id for m in sent]

    def pull_messages(self, message_ids: Iterable[str]) -> list[Message]:
        replies, self._replies = self._replies, []
        return replies

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float) -> list[Message]:
        replies = []
        for message in messages:
            node = message.metadata.dst_node_id
            self.asked.append(node)
            info = self.answers[node]
            if info is None:
                continue  # no reply
            reply = Message(RecordDict({INFO_KEY: ConfigRecord(info)}), reply_to=message)
            reply.metadata.__dict__["_src_node_id"] = node
            replies.append(reply)
        return replies


class _Proxy:
    def __init__(self, node_id: int, info: dict[str, Any] | None) -> None:
        self.node_id, self.cid, self.info = node_id, str(node_id), info

    def get_properties(self, ins: Any, timeout: float, group_id: Any) -> GetPropertiesRes:
        if self.info is None:
            raise TimeoutError("no reply")
        return GetPropertiesRes(Status(Code.OK, ""), dict(self.info))


class _ClientManager:
    def __init__(self, answers: Mapping[int, dict[str, Any] | None]) -> None:
        self.proxies = {str(n): _Proxy(n, info) for n, info in answers.items()}

    def wait_for(self, num_clients: int, timeout: int) -> bool:
        return True

    def all(self) -> dict[str, _Proxy]:
        return dict(self.proxies)


def _answers(split: Any) -> dict[int, dict[str, Any] | None]:
    ok = describe_split(split)
    return {
        101: {**ok, PARTITION_KEY: 0},
        102: {**ok, PARTITION_KEY: True},
        103: {**ok, PARTITION_KEY: -1},
        104: {**ok, PARTITION_KEY: 0},
        105: {**ok, FINGERPRINT_KEY: "0" * 64, PARTITION_KEY: 5},
        106: None,
        107: {**ok, PARTITION_KEY: 1},
    }


def test_the_same_handshake_answers_get_the_same_decisions_on_both_apis(split: Any) -> None:
    answers = _answers(split)
    modern = EcoFedStrategy.from_split(split, min_available_nodes=1)
    modern.timeout = 0.2  # node 106 never answers: wait that long for it
    modern._discover(_Grid(answers), 1)  # noqa: SLF001
    legacy = EcoFedLegacyStrategy.from_split(split, min_available_nodes=1)
    legacy._discover(_ClientManager(answers), 1)  # noqa: SLF001
    assert modern.nodes.clients() == legacy.nodes.clients()
    assert modern.excluded_nodes == legacy.excluded_nodes
    # node 101 holds partition 0, so 104's claim of it is not honoured; 102's bool is no id
    assert modern.nodes.clients() == {
        "0": 101,
        "node-102": 102,
        "node-103": 103,
        "node-104": 104,
        "node-106": 106,
        "1": 107,
    }
    assert set(modern.excluded_nodes) == {105}


def test_answers_without_fingerprint_get_the_same_decisions_on_both_apis(split: Any) -> None:
    described = {**describe_split(split), FINGERPRINT_KEY: ""}  # a device that built nothing
    answers: dict[int, dict[str, Any] | None] = {
        201: {**described, PARTITION_KEY: 0},  # same description: in
        202: {**described, "cut": "block2", PARTITION_KEY: 1},  # other cut: out
        203: {**described, "weights": "imagenet", PARTITION_KEY: 2},  # other weights: out
    }
    modern = EcoFedStrategy.from_split(split, min_available_nodes=1)
    modern._discover(_Grid(answers), 1)  # noqa: SLF001
    legacy = EcoFedLegacyStrategy.from_split(split, min_available_nodes=1)
    legacy._discover(_ClientManager(answers), 1)  # noqa: SLF001
    assert modern.nodes.clients() == legacy.nodes.clients() == {"0": 201}
    assert modern.excluded_nodes == legacy.excluded_nodes
    assert "cut: server 'block1', device 'block2'" in modern.excluded_nodes[202]
    assert "weights: server 'random', device 'imagenet'" in modern.excluded_nodes[203]


def test_a_node_that_disconnected_is_not_sampled(split: Any) -> None:
    answers = _answers(split)
    grid = _Grid(answers)
    strategy = EcoFedStrategy.from_split(split, min_available_nodes=1, min_train_nodes=1)
    strategy.timeout = 0.2  # node 106 never answers the handshake: wait that long for it
    first = list(strategy.configure_train(1, None, ConfigRecord(), grid))  # type: ignore[arg-type]
    assert 107 in {m.metadata.dst_node_id for m in first}
    strategy.aggregate_train(1, [])  # nobody answered: every sampled client is asked again
    strategy.server.close_round()
    del grid.answers[107]  # partition 1's node leaves
    messages = list(strategy.configure_train(2, None, ConfigRecord(), grid))  # type: ignore[arg-type]
    assert 107 not in {m.metadata.dst_node_id for m in messages}
    assert "1" not in strategy.server.plan.sampled
    assert strategy.server.plan.sampled == sorted(
        {"0", "node-102", "node-103", "node-104", "node-106"},
        key=lambda c: (0, int(c)) if c.isdigit() else (1, c),
    )


# ------------------------------------------------------------------ uploads on both APIs


def _content(split: Any, n: int = 12) -> RecordDict:
    gen = torch.Generator().manual_seed(0)
    data = LocalData(torch.randn(n, 3, 16, 16, generator=gen), np.arange(n) % 10, 10)
    request = Message(
        RecordDict({CONFIG_KEY: ConfigRecord({"codec": "u4", "server-round": 1})}),
        dst_node_id=7,
        message_type=UPLOAD_MESSAGE_TYPE,
    )
    return upload_reply(request, split.front, data).content


def _decide(content: RecordDict, spec: Any) -> str:
    try:
        decode_upload(content, spec)
    except UploadRefused as err:
        return err.category
    return "accepted"


def _mutations(content: RecordDict) -> dict[str, RecordDict]:
    """Breaks a legacy fit result can carry as faithfully as a Message-API reply."""

    def copy(**metrics: float | int) -> RecordDict:
        out = RecordDict(dict(content.items()))
        record = MetricRecord(dict(content.metric_records[METRICS_KEY]))
        for key, value in metrics.items():
            record[key.replace("_", "-")] = value
        out[METRICS_KEY] = record
        return out

    def meta(**entries: Any) -> RecordDict:
        out = RecordDict(dict(content.items()))
        record = ConfigRecord(dict(content.config_records["meta"]))
        for key, value in entries.items():
            record[key.replace("_", "-")] = value
        out["meta"] = record
        return out

    return {
        "valid": content,
        "num-examples 0": copy(num_examples=0),
        "num-examples +1": copy(num_examples=13),
        "negative seconds": copy(front_seconds=-1.0),
        "extra metric": copy(accuracy=0.5),
        "other fingerprint": meta(ecofed_fingerprint="0" * 64),
        "other codec": meta(codec="u2"),
        "more samples declared": meta(num_samples=13),
    }


def test_the_same_uploads_get_the_same_decision_on_both_apis(split: Any) -> None:
    strategy = EcoFedStrategy.from_split(split, max_samples_per_client=1000)
    spec = strategy.upload_spec
    decisions = {}
    for name, content in _mutations(_content(split)).items():
        modern = _decide(content, spec)
        arrays, num_examples, metrics = fit_result_from_content(content)
        tensors = ndarrays_to_parameters(arrays).tensors
        try:
            rebuilt = content_from_fit_result(tensors, num_examples, metrics)
        except UploadRefused as err:
            legacy = err.category
        else:
            legacy = _decide(rebuilt, spec)
        decisions[name] = (modern, legacy)
    assert all(m == legacy for m, legacy in decisions.values()), decisions
    assert decisions["valid"] == ("accepted", "accepted")
    assert sum(m == "accepted" for m, _ in decisions.values()) == 1, decisions


def test_a_legacy_metric_cannot_override_num_examples(split: Any) -> None:
    spec = EcoFedStrategy.from_split(split, max_samples_per_client=1000).upload_spec
    arrays, num_examples, metrics = fit_result_from_content(_content(split))
    tensors = ndarrays_to_parameters(arrays).tensors
    assert _decide(content_from_fit_result(tensors, num_examples, metrics), spec) == "accepted"
    # FitRes.num_examples 0 with the true count smuggled in as a metric: refused.
    with pytest.raises(UploadRefused, match="num_examples") as refused:
        content_from_fit_result(tensors, 0, {**metrics, "metric.num-examples": num_examples})
    assert refused.value.category == "metrics"
    assert _decide(content_from_fit_result(tensors, 0, metrics), spec) == "metrics"


def test_a_legacy_array_of_another_serialization_is_refused_like_a_message_api_one(
    split: Any,
) -> None:
    spec = EcoFedStrategy.from_split(split, max_samples_per_client=1000).upload_spec
    arrays, num_examples, metrics = fit_result_from_content(_content(split))
    tensors = ndarrays_to_parameters(arrays).tensors
    content = content_from_fit_result(tensors, num_examples, metrics, "torch.Tensor")
    assert _decide(content, spec) == "bad-array"
