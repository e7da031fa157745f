"""EcoFedStrategy's single validation point and the client's reply, without a simulation."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from fixtures_test import tiny_split_fixture  # noqa: F401  (pytest fixtures)
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from ecofed_flwr.clients import upload_reply
from ecofed_flwr.data import LocalData
from ecofed_flwr.meter import split_reply_bytes, wire_nbytes
from ecofed_flwr.protocol import (
    ACTIVATIONS_KEY,
    CONFIG_KEY,
    LABELS_KEY,
    META_KEY,
    METRICS_KEY,
    UPLOAD_MESSAGE_TYPE,
)
from ecofed_flwr.strategies import EcoFedStrategy, ReplyError


@pytest.fixture(autouse=True)
def _task_identity() -> Iterator[None]:
    # Messages record their sender; outside a Flower run nobody has set it.
    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)  # noqa: SLF001
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    yield
    TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved  # noqa: SLF001


def _strategy(split, codec: str = "u4") -> EcoFedStrategy:  # type: ignore[no-untyped-def]
    return EcoFedStrategy(
        back=split.back,
        fingerprint=split.fingerprint,
        activation_shape=split.activation_shape,
        num_classes=10,
        codec=codec,
        max_samples_per_client=1000,
    )


def _request(codec: str = "u4") -> Message:
    config = ConfigRecord({"codec": codec, "server-round": 1})
    return Message(
        RecordDict({CONFIG_KEY: config}), dst_node_id=7, message_type=UPLOAD_MESSAGE_TYPE
    )


def _reply(split, n: int = 30, codec: str = "u4") -> Message:  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(0)
    data = LocalData(torch.randn(n, 3, 16, 16, generator=gen), np.arange(n) % 10, 10)
    return upload_reply(_request(codec), split.front, data)


def _with(reply: Message, **records: object) -> Message:
    """A copy of ``reply``'s content with some records replaced (None removes)."""
    content = RecordDict()
    for key, record in reply.content.items():
        content[key] = record
    for key, record in records.items():
        if record is None:
            del content[key]
        else:
            content[key] = record  # type: ignore[assignment]
    return Message(content, dst_node_id=0, message_type=UPLOAD_MESSAGE_TYPE)


def test_a_good_reply_is_accepted_and_decodes_to_the_front_output(split) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy(split)
    reply = _reply(split)
    batch, labels, seconds = strategy.validate_reply(reply)
    assert batch.num_samples == 30 and batch.sample_shape == split.activation_shape
    np.testing.assert_array_equal(labels, np.arange(30) % 10)
    assert seconds >= 0
    # u4 per tensor: the decoded activations are within half a step of the front's output.
    gen = torch.Generator().manual_seed(0)
    expected = split.front(torch.randn(30, 3, 16, 16, generator=gen)).numpy()
    decoded = strategy.server.codec.decode(batch)
    step = (expected.max() - expected.min()) / 15
    assert np.abs(decoded - expected).max() <= step / 2 + 1e-5


def test_reply_bytes_split_by_purpose(split) -> None:  # type: ignore[no-untyped-def]
    reply = _reply(split, n=40)
    sizes = split_reply_bytes(reply)
    codes = 40 * int(np.prod(split.activation_shape)) // 2  # 4 bits per value
    # Per array: a .npy header and Flower object headers, a few hundred bytes each.
    assert codes <= sizes.activations <= codes + 2048
    assert 40 <= sizes.labels <= 40 + 768  # uint8 labels
    assert sizes.control > 0
    assert sizes.total == wire_nbytes(reply)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda r, s: _with(r, **{ACTIVATIONS_KEY: None}), "missing-record: .*\\['activations'\\]"),
        (lambda r, s: _with(r, **{METRICS_KEY: None}), "missing-record: .*\\['metrics'\\]"),
        (
            lambda r, s: _with(r, **{LABELS_KEY: ArrayRecord({"labels": Array(np.full(30, 10))})}),
            r"expected values in \[0, 10\)",
        ),
        (
            lambda r, s: _with(
                r, **{LABELS_KEY: ArrayRecord({"labels": Array(np.zeros(29, np.uint8))})}
            ),
            "expected 30 integers",
        ),
        (
            lambda r, s: _with(
                r, **{LABELS_KEY: ArrayRecord({"labels": Array(np.zeros(30, np.float32))})}
            ),
            "integers",
        ),
        (
            lambda r, s: _with(
                r, **{METRICS_KEY: MetricRecord({"num-examples": 31, "front-seconds": 0.1})}
            ),
            "num-examples.*expected 30",
        ),
        (lambda r, s: _reply(s, codec="u8"), "codec.*expected 'u4', got 'u8'"),
        (
            lambda r, s: _with(
                r,
                **{
                    ACTIVATIONS_KEY: ArrayRecord(
                        {
                            k: Array(v.numpy()[:-1] if k == "codes" else v.numpy())
                            for k, v in r.content.array_records[ACTIVATIONS_KEY].items()
                        }
                    )
                },
            ),
            "bad-array|values",
        ),
        (
            lambda r, s: _with(
                r,
                **{
                    ACTIVATIONS_KEY: ArrayRecord(
                        {
                            k: Array(
                                np.full_like(v.numpy(), np.nan) if k == "scales" else v.numpy()
                            )
                            for k, v in r.content.array_records[ACTIVATIONS_KEY].items()
                        }
                    )
                },
            ),
            "bad-array|values",
        ),
        (
            lambda r, s: _with(
                r,
                **{
                    META_KEY: ConfigRecord(
                        {**dict(r.content.config_records[META_KEY]), "ecofed-fingerprint": "ab"}
                    )
                },
            ),
            "fingerprint",
        ),
        (
            lambda r, s: _with(
                r,
                **{
                    META_KEY: ConfigRecord(
                        {**dict(r.content.config_records[META_KEY]), "sample_shape": [8, 8, 16]}
                    )
                },
            ),
            "shape",
        ),
    ],
)
def test_bad_replies_are_refused_with_a_reason(split, mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy(split)
    with pytest.raises(ReplyError, match=reason):
        strategy.validate_reply(mutate(_reply(split), split))
    assert len(strategy.server.buffer) == 0


def test_oversized_uploads_are_refused(split) -> None:  # type: ignore[no-untyped-def]
    strategy = EcoFedStrategy(
        split.back, split.fingerprint, split.activation_shape, 10, max_samples_per_client=20
    )
    with pytest.raises(ReplyError, match="too-large.*at most 20, got 30"):
        strategy.validate_reply(_reply(split, n=30))


def test_aggregate_keeps_good_uploads_when_others_are_bad(split) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy(split)
    # Replies built here come from node 7 (upload_reply) or 0 (_with): both are client "0".
    strategy.nodes._client_of, strategy.nodes._node_of = {7: "0", 0: "0"}, {"0": 7}  # noqa: SLF001
    assert strategy.server.begin_round(1, ["0"]).uploaders == ["0"]
    good = _reply(split, n=30)
    bad = _with(_reply(split), **{LABELS_KEY: None})
    arrays, metrics = strategy.aggregate_train(1, [good, bad])
    assert arrays is not None and metrics is not None
    assert metrics["samples-uploaded"] == 30
    # One upload per node per round: the second reply is refused and changes nothing.
    assert strategy.server.buffer.num_uploaded() == 30
    assert strategy.server.current.uploaded == ["0"] and not strategy.server.current.refused
    assert strategy.ledger.total("up", "activations") > 0
    assert strategy.ledger.messages("up") == 2


def test_strategy_rejects_bad_settings(split) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="fraction_train"):
        EcoFedStrategy(split.back, split.fingerprint, split.activation_shape, 10, fraction_train=0)
    with pytest.raises(ValueError, match="replay"):
        EcoFedStrategy(split.back, split.fingerprint, split.activation_shape, 10, replay="x")
    with pytest.raises(ValueError):
        EcoFedStrategy(split.back, split.fingerprint, split.activation_shape, 10, codec="u3")
