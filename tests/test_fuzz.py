"""Fuzzing the single upload validation point (:func:`ecofed_flwr.protocol.decode_upload`).

Thousands of seeded replies (see ``fuzz_replies_test.py``), most of them malformed, go through
``decode_upload``: nothing but ``UploadRefused`` may escape, nothing that must be refused is
accepted, every accepted upload decodes to finite values within the stated bound, and no single
reply makes the server allocate more than a few megabytes; ``split_reply_bytes``, which the
strategy runs on every reply first, never raises. ``ECOFED_FUZZ_CASES`` and
``ECOFED_FUZZ_SEED`` run more or other cases.
"""

from __future__ import annotations

import collections
import os
import time
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
import zstandard
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects
from flwr.supercore.inflatable.inflatable_utils import inflate_object_from_contents
from fuzz_replies_test import (
    DEFAULT_CODECS,
    GENERATORS,
    UNPICKLED,
    FuzzCase,
    FuzzSetting,
    generate_cases,
    rle_frame,
    upload_request,
)

from ecofed_flwr.codec import make_codec
from ecofed_flwr.meter import split_reply_bytes, wire_nbytes
from ecofed_flwr.protocol import (
    ACTIVATIONS_KEY,
    LABELS_KEY,
    META_KEY,
    METRICS_KEY,
    REFUSAL_CATEGORIES,
    Upload,
    UploadRefused,
    UploadSpec,
    decode_upload,
    encoded_to_records,
)

CASES = int(os.environ.get("ECOFED_FUZZ_CASES", "2400"))
SEED = int(os.environ.get("ECOFED_FUZZ_SEED", "0"))
MAX_REPLY_BYTES = 64 << 20  # traced allocation peak allowed for one reply
VALID = ("valid", "valid-edge")


def _check_accepted(upload: Upload, spec: UploadSpec) -> str | None:
    """Why an accepted upload breaks the promises of decode_upload (None: it keeps them)."""
    decoded = spec.codec.decode(upload.batch)
    if decoded.shape != (upload.num_samples, *spec.activation_shape):
        return f"decoded shape {decoded.shape}"
    if not np.isfinite(decoded).all():
        return "non-finite decoded values"
    if float(np.abs(decoded).max()) > spec.max_abs_value:
        return f"|decoded| up to {float(np.abs(decoded).max()):g}"
    tail = spec.codec.decode(upload.batch, slice(-1, None))
    if not np.array_equal(tail, decoded[-1:]):
        return "a sliced decode differs from the full decode"
    labels = upload.labels
    if labels.dtype != np.int64 or labels.shape != (upload.num_samples,):
        return f"labels {labels.dtype} {labels.shape}"
    if labels.min() < 0 or labels.max() >= spec.num_classes:
        return f"labels in [{labels.min()}, {labels.max()}]"
    if not (np.isfinite(upload.device_seconds) and upload.device_seconds >= 0):
        return f"device seconds {upload.device_seconds}"
    return None


def _run(case: FuzzCase, spec: UploadSpec) -> tuple[Upload | UploadRefused | Exception, int]:
    """decode_upload on one reply; its outcome and traced allocation peak."""
    tracemalloc.start()
    try:
        outcome: Upload | UploadRefused | Exception = decode_upload(case.reply.content, spec)
    except UploadRefused as refused:
        outcome = refused
    except Exception as escaped:  # noqa: BLE001 - counted and reported as a failure
        outcome = escaped
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, peak


def test_fuzzed_replies_are_refused_or_decode_within_bounds() -> None:
    setting = FuzzSetting()
    specs = {name: setting.spec(name) for name in DEFAULT_CODECS}
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    failures: list[str] = []
    worst_peak, worst_case = 0, ""
    unsendable = 0
    codecs_seen: set[str] = set()
    start = time.perf_counter()
    for case in generate_cases(CASES, seed=SEED, setting=setting):
        spec = specs.get(case.codec) or specs.setdefault(case.codec, setting.spec(case.codec))
        codecs_seen.add(case.codec)
        unsendable += not case.sendable
        where = f"[{case.category}] {case.codec}: {case.note}"
        try:  # the strategy measures every reply before validating it
            if case.sendable:
                split_reply_bytes(case.reply)
        except Exception as escaped:  # noqa: BLE001 - reported as a failure
            failures.append(f"{where}: split_reply_bytes raised {escaped!r}"[:300])
        outcome, peak = _run(case, spec)
        if peak > worst_peak:
            worst_peak, worst_case = peak, f"{case.category}: {case.note}"
        if peak > MAX_REPLY_BYTES:
            failures.append(f"{where}: {peak / 2**20:.0f} MiB allocated")
        if isinstance(outcome, UploadRefused):
            counts[case.category][f"refused:{outcome.category}"] += 1
            if outcome.category not in REFUSAL_CATEGORIES:
                failures.append(f"{where}: unknown refusal category {outcome.category!r}")
            if case.must_accept:
                failures.append(f"{where}: wrongly refused ({outcome})")
            if case.expect is not None and outcome.category != case.expect:
                failures.append(f"{where}: refused as {outcome.category}, not {case.expect}")
        elif isinstance(outcome, Upload):
            counts[case.category]["accepted"] += 1
            if case.must_refuse:
                failures.append(f"{where}: wrongly accepted")
            broken = _check_accepted(outcome, spec)
            if broken:
                failures.append(f"{where}: accepted, but {broken}")
        else:
            counts[case.category][f"escaped:{type(outcome).__name__}"] += 1
            failures.append(f"{where}: {type(outcome).__name__} escaped: {outcome}")
    seconds = time.perf_counter() - start

    total = sum(sum(c.values()) for c in counts.values())
    malformed = sum(sum(c.values()) for name, c in counts.items() if name not in VALID)
    print(
        f"\n{total} replies ({malformed} malformed, {unsendable} not serializable by Flower) in "
        f"{seconds:.1f} s, seed {SEED}"
    )
    print(f"largest traced allocation of one reply: {worst_peak / 1024:.0f} KiB ({worst_case})")
    for name in sorted(counts):
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts[name].items()))
        print(f"  {name:20s} {sum(counts[name].values()):5d}  {detail}")

    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:50])
    assert not UNPICKLED, f"wire data was unpickled: {UNPICKLED}"
    assert total == CASES
    if CASES >= 2000:
        assert malformed >= 1000
        assert set(counts) == set(GENERATORS), "every generator ran"
        assert codecs_seen == set(DEFAULT_CODECS)


def _round_trip(reply: Message) -> Message:
    """``reply`` as the server gets it from the wire: every object deflated and inflated."""
    contents = {oid: obj.deflate() for oid, obj in get_all_nested_objects(reply).items()}
    back = inflate_object_from_contents(reply.object_id, contents)
    assert isinstance(back, Message)
    return back


def test_fuzzed_replies_after_a_flower_round_trip() -> None:
    # Flower rebuilds records from serialized objects (identical objects become one, arrays
    # are copied): the verdicts must hold for what actually arrives.
    setting = FuzzSetting()
    failures: list[str] = []
    sent = 0
    for case in generate_cases(CASES // 2, seed=SEED + 1, setting=setting):
        if not case.sendable:
            continue
        sent += 1
        outcome, _ = _run(replace(case, reply=_round_trip(case.reply)), setting.spec(case.codec))
        where = f"[{case.category}] {case.codec}: {case.note}"
        if isinstance(outcome, Upload):
            if case.must_refuse:
                failures.append(f"{where}: wrongly accepted after the wire")
        elif not isinstance(outcome, UploadRefused):
            failures.append(f"{where}: {type(outcome).__name__} escaped: {outcome}")
        elif case.must_accept:
            failures.append(f"{where}: wrongly refused after the wire ({outcome})")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:50])
    assert sent > CASES // 3


def test_generated_replies_answer_their_requests() -> None:
    cases = list(generate_cases(30, seed=3))
    assert [c.reply.metadata.src_node_id for c in cases] == list(range(1000, 1030))
    assert all(c.reply.metadata.reply_to_message_id for c in cases)
    assert [c.note for c in generate_cases(30, seed=3)] == [c.note for c in cases]  # seeded


def test_the_client_reply_is_accepted_and_matches_the_generator() -> None:
    torch = pytest.importorskip("torch")
    from ecofed_flwr.clients import upload_reply
    from ecofed_flwr.data import LocalData
    from ecofed_flwr.models import create_split

    split = create_split("tiny_cnn", "block1", "random", 10, 16, seed=0)
    data = LocalData(
        torch.randn(12, 3, 16, 16, generator=torch.Generator().manual_seed(0)),
        np.arange(12) % 10,
        10,
    )
    reply = upload_reply(upload_request(5, codec="u2-ch+zstd"), split.front, data)
    spec = UploadSpec(make_codec("u2-ch+zstd"), split.fingerprint, split.activation_shape, 10, 12)
    upload = decode_upload(reply.content, spec)
    assert upload.num_samples == 12 and upload.device_seconds >= 0
    np.testing.assert_array_equal(upload.labels, np.arange(12) % 10)
    setting = FuzzSetting(fingerprint=split.fingerprint, activation_shape=split.activation_shape)
    valid = next(generate_cases(1, setting=setting, codecs=["u2-ch+zstd"], categories=["valid"]))
    for key in (ACTIVATIONS_KEY, LABELS_KEY, META_KEY, METRICS_KEY):
        ours, theirs = valid.reply.content[key], reply.content[key]
        assert type(ours) is type(theirs) and sorted(ours) == sorted(theirs), key


# ------------------------------------------------------------------------ targeted checks


def _valid_content(codec: str = "u4", n: int = 6) -> tuple[RecordDict, UploadSpec]:
    setting = FuzzSetting()
    x = np.random.default_rng(0).random((n, *setting.activation_shape), dtype=np.float32)
    acts, meta = encoded_to_records(make_codec(codec).encode(x), setting.fingerprint)
    content = RecordDict(
        {
            ACTIVATIONS_KEY: acts,
            LABELS_KEY: ArrayRecord({"labels": Array(np.arange(n, dtype=np.uint8))}),
            META_KEY: meta,
            METRICS_KEY: MetricRecord({"num-examples": n, "front-seconds": 1.5}),
        }
    )
    return content, setting.spec(codec)


def test_decode_upload_returns_the_plain_batch() -> None:
    content, spec = _valid_content("u8-g16+zstd")
    upload = decode_upload(content, spec)
    assert upload.batch.meta["codec"] == "u8-g16" and "codes" in upload.batch.arrays
    assert upload.device_seconds == 1.5 and upload.labels.dtype == np.int64
    assert spec.codec.without_lossless(upload.batch).arrays["codes"] is not None


def test_a_huge_sample_count_is_refused_before_any_decompression() -> None:
    content, spec = _valid_content("u4+zstd")
    n = (8 << 30) // 64  # 8 GiB of u4 codes for 128 values a sample
    frame = rle_frame(n * 64, n * 64)
    assert len(frame) < 300_000
    content.config_records[META_KEY]["num_samples"] = n
    content.config_records[META_KEY]["zstd_raw_nbytes"] = n * 64
    content.metric_records[METRICS_KEY]["num-examples"] = n
    content.array_records[ACTIVATIONS_KEY]["codes_zstd"] = Array(np.frombuffer(frame, np.uint8))
    tracemalloc.start()
    with pytest.raises(UploadRefused, match="at most 64") as refused:
        decode_upload(content, spec)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert refused.value.category == "too-large" and peak < 1 << 20


def test_rle_frames_are_real_zstd_frames() -> None:
    assert (
        zstandard.ZstdDecompressor().decompress(rle_frame(300_000, 300_000, 7))
        == bytes([7]) * 300_000
    )


@pytest.mark.parametrize(
    ("spec_change", "message"),
    [
        ({"activation_shape": (0, 3)}, "activation_shape"),
        ({"max_samples": 0}, "max_samples"),
        ({"num_classes": True}, "num_classes"),
        ({"max_abs_value": float("nan")}, "max_abs_value"),
    ],
)
def test_upload_spec_refuses_bad_settings(spec_change: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {
        "codec": make_codec("u4"),
        "fingerprint": "f",
        "activation_shape": (2, 3),
        "num_classes": 10,
        "max_samples": 5,
        **spec_change,
    }
    with pytest.raises(ValueError, match=message):
        UploadSpec(**settings)  # type: ignore[arg-type]


def test_split_reply_bytes_counts_a_shared_record_once() -> None:
    content, _ = _valid_content()
    request = upload_request(3)
    reply = Message(content=content, reply_to=request)
    sizes = split_reply_bytes(reply)
    assert sizes.total == wire_nbytes(reply) and sizes.control > 0
    assert sizes.activations == wire_nbytes(content[ACTIVATIONS_KEY])
    assert sizes.labels == wire_nbytes(content[LABELS_KEY])
    shared = RecordDict(
        {
            ACTIVATIONS_KEY: content[ACTIVATIONS_KEY],
            LABELS_KEY: content[ACTIVATIONS_KEY],
            META_KEY: ConfigRecord(dict(content.config_records[META_KEY])),
            METRICS_KEY: MetricRecord(dict(content.metric_records[METRICS_KEY])),
        }
    )
    sizes = split_reply_bytes(Message(content=shared, reply_to=request))
    assert sizes.labels == 0 and sizes.control > 0
    assert sizes.activations + sizes.labels + sizes.control == sizes.total


def test_fuzzed_replies_through_the_strategy_never_end_the_run() -> None:
    """The same generator through ``EcoFedStrategy.aggregate_train``, round after round.

    Each round asks a batch of nodes (one codec per strategy), each answering with one fuzzed
    reply: nothing escapes, refused replies leave the buffer as it was, accepted ones are
    buffered once, and the back stays finite after training on what was accepted.
    """
    import torch
    from flwr.supercore.task_identity import TaskIdentity
    from torch import nn

    from ecofed_flwr.strategies import EcoFedStrategy
    from ecofed_flwr.trainer import TrainerConfig

    setting = FuzzSetting()
    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)  # noqa: SLF001
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    failures: list[str] = []
    tried = escaped = 0
    try:
        for codec in ("u4", "paper", "u2-ch+zstd"):
            back = nn.Sequential(nn.Flatten(), nn.Linear(128, setting.num_classes))
            strategy = EcoFedStrategy(
                back,
                setting.fingerprint,
                setting.activation_shape,
                setting.num_classes,
                codec=codec,
                max_samples_per_client=setting.max_samples,
                trainer=TrainerConfig(device="cpu", batch_size=32),
            )
            server = strategy.server
            cases = [
                c
                for c in generate_cases(1200, seed=SEED + 1, setting=setting, codecs=(codec,))
                if c.sendable and c.codec == codec  # verdicts hold for the codec asked for
            ][:400]
            for r, start in enumerate(range(0, len(cases), 40), start=1):
                chunk = cases[start : start + 40]
                nodes = [c.reply.metadata.src_node_id for c in chunk]
                strategy.nodes._client_of = {n: str(n) for n in nodes}  # noqa: SLF001
                strategy.nodes._node_of = {str(n): n for n in nodes}  # noqa: SLF001
                server.begin_round(r, [str(n) for n in nodes])
                before = {c: server.buffer.get(c) for c in server.buffer.clients()}
                try:
                    strategy.aggregate_train(r, [c.reply for c in chunk])
                    server.evaluate()
                    report = server.end_round()
                except Exception as err:  # noqa: BLE001 - counted and reported
                    escaped += 1
                    failures.append(f"{codec} round {r}: {type(err).__name__}: {err}"[:300])
                    break
                tried += len(chunk)
                for case in chunk:
                    client = str(case.reply.metadata.src_node_id)
                    if case.must_refuse and client in report.uploaded:
                        failures.append(f"{codec} [{case.category}] wrongly buffered: {case.note}")
                    if case.must_accept and client not in report.uploaded:
                        failures.append(f"{codec} [{case.category}] wrongly refused: {case.note}")
                    if client not in report.uploaded and client in server.buffer:
                        failures.append(f"{codec}: refused {client} is in the buffer")
                for client, entry in before.items():
                    if server.buffer.get(client) is not entry:
                        failures.append(f"{codec}: entry of {client} changed by a later round")
                for client in server.buffer.clients():
                    if not torch.isfinite(server.buffer.decode(client)).all():
                        failures.append(f"{codec}: buffered {client} decodes to non-finite values")
                if not all(torch.isfinite(p).all() for p in server.trainer.back.parameters()):
                    failures.append(f"{codec} round {r}: the back is no longer finite")
    finally:
        TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved  # noqa: SLF001
    print(f"{tried} fuzzed replies through aggregate_train, {escaped} escaped")
    assert tried >= 1000 and not failures, failures[:10]
