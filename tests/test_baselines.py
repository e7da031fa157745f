"""Baselines and harness: every byte counted is a byte of the Flower messages a protocol sends."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from torch import nn

from ecofed_flwr.app.task import build_split
from ecofed_flwr.baselines import (
    GpuServerModel,
    Setting,
    TimeModel,
    client_round_ledger,
    communication_report,
    exchanges_per_client,
    holdout_rows,
    protocol_config,
    purpose_nbytes,
    run_protocol,
    sample_partitions,
    selected_round,
    validation_gain_last_fifth,
)
from ecofed_flwr.baselines.central import run_central
from ecofed_flwr.baselines.dpfl import VanillaDPFL
from ecofed_flwr.baselines.fl import ClientFailure, full_model, model_arrays, train_local
from ecofed_flwr.baselines.report import RoundLog
from ecofed_flwr.baselines.training import LocalTraining, initial_split, with_torch_threads
from ecofed_flwr.baselines.wire import Link, as_pushed, task_identity
from ecofed_flwr.codec import make_codec
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.data import LocalData
from ecofed_flwr.ledger import BandwidthModel, Ledger
from ecofed_flwr.meter import wire_nbytes
from ecofed_flwr.models import create_split, register_sequential, unregister_model
from ecofed_flwr.server import EcoFedServer

ARRAY_OVERHEAD = 600  # bytes Flower adds per array (headers, ids); measured about 460
CLIENTS, SAMPLES, BATCH = 3, 33, 10
TRAIN_SAMPLES = 30  # the default validation fraction (0.1) holds 3 of 33 out
STEPS = math.ceil(TRAIN_SAMPLES / BATCH)  # per client and round


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    # The CI machine is shared: several threads per op spin on busy cores.
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def _record(**arrays: np.ndarray) -> ArrayRecord:
    return ArrayRecord({k: Array(v) for k, v in arrays.items()})


# ---------------------------------------------------------------- serialized sizes


@pytest.mark.parametrize("n", [0, 1, 1000, 1_500_000])  # the last one spans two 5 MB chunks
def test_an_array_record_costs_its_array_bytes_plus_a_bounded_overhead(n: int) -> None:
    array = np.arange(n, dtype=np.float32)
    overhead = wire_nbytes(_record(x=array)) - array.nbytes
    assert 0 < overhead <= ARRAY_OVERHEAD


def test_record_sizes_add_up() -> None:
    a, b = np.arange(1000, dtype=np.float32), np.arange(7, dtype=np.int64)
    both = wire_nbytes(_record(a=a, b=b))
    apart = wire_nbytes(_record(a=a)) + wire_nbytes(_record(b=b)) - wire_nbytes(ArrayRecord())
    assert abs(both - apart) <= 16  # only varint lengths of the record's envelope differ


def test_a_message_splits_into_purposes_that_sum_to_its_wire_size() -> None:
    ledger = Ledger()
    link = Link(ledger, "client-0", "train.dpfl")
    link.down(1, {"config": ConfigRecord({"server-round": 1})})
    activations = _record(activations=np.ones((10, 16, 8, 8), np.float32))
    labels = _record(labels=np.arange(10, dtype=np.uint8))
    message = link.up(
        1, {"activations": activations, "labels": labels, "metrics": MetricRecord({"n": 1})}
    )
    sizes = purpose_nbytes(message)
    assert sum(sizes.values()) == wire_nbytes(message)
    assert sizes["activations"] == wire_nbytes(activations)
    assert sizes["labels"] == wire_nbytes(labels)
    assert ledger.total("up") == wire_nbytes(message)
    assert ledger.messages("up") == 1 and ledger.messages("down") == 1


# ---------------------------------------------------------------- protocols on a tiny model


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> Setting:
    config = EcoFedConfig.from_mapping(
        {
            "model": "tiny_cnn",
            "cut": "block1",
            "weights": "random",
            "input-size": 16,
            "dataset": "synthetic",
            "samples-per-client": SAMPLES,
            "test-samples": 100,
            "num-server-rounds": 2,
            "fraction-train": 1.0,
            "batch-size": BATCH,
            "learning-rate": 0.05,
            "output-dir": str(tmp_path_factory.mktemp("harness")),
        }
    )
    return Setting(config=config, num_clients=CLIENTS, engine="loopback")


@pytest.fixture(scope="module")
def tiny() -> dict[str, object]:
    split = create_split("tiny_cnn", "block1", "random", 10, 16)
    state = split.full().state_dict()
    zeros = np.zeros((BATCH, *split.activation_shape), np.float32)
    return {
        "shape": split.activation_shape,
        "activations": wire_nbytes(_record(activations=zeros)),
        "gradients": wire_nbytes(_record(gradients=zeros)),
        "labels": wire_nbytes(_record(labels=np.zeros(BATCH, np.uint8))),
        "model_bytes": sum(t.numel() * t.element_size() for t in state.values()),
        "model_arrays": len(state),
    }


RUN_NAMES = ("fl", "fl-back", "dpfl", "lgl", "ecofed-paper", "central", "central-frozen")


@pytest.fixture(scope="module")
def runs(setting: Setting) -> dict[str, dict]:
    # The same clients every round for every protocol (the paper preset samples 20 %).
    return {name: run_protocol(name, setting, {"fraction-train": 1.0}) for name in RUN_NAMES}


def test_every_protocol_completes_and_writes_its_results(runs: dict[str, dict]) -> None:
    for name, doc in runs.items():
        assert [r["round"] for r in doc["rounds"]] == [1, 2], name
        assert doc["selected_accuracy"] is not None
        assert doc["threads"] == 1 and doc["host_before"]["gemm_gflops"] > 0
        assert Path(doc["config"]["output-dir"], "protocol.json").is_file()
        if name != "ecofed-paper":  # the paper holds nothing out
            assert all(r["val_accuracy"] is not None for r in doc["rounds"]), name
            assert doc["selected_round"] in (1, 2)
            # The test set is scored once, at the round validation selects.
            assert doc["test_scored_once"], name
            assert all(r["accuracy"] is None for r in doc["rounds"]), name
        else:  # without a hold-out: the test set every round, the last round kept
            assert doc["selected_round"] == 2 and not doc["test_scored_once"]
            assert doc["selected_accuracy"] == doc["rounds"][-1]["accuracy"]
        # Every byte in the rounds is in the ledger, and the other way round.
        assert sum(r["bytes_up"] + r["bytes_down"] for r in doc["rounds"]) == doc["totals"]["bytes"]
        assert doc["totals"]["bytes"] == sum(r["nbytes"] for r in doc["ledger"])


def test_dpfl_sends_activations_up_and_gradients_down_every_step(
    runs: dict[str, dict], tiny: dict
) -> None:
    steps = CLIENTS * STEPS
    for r in runs["dpfl"]["rounds"]:
        assert r["bytes"]["up_activations"] == steps * tiny["activations"]
        assert r["bytes"]["up_labels"] == steps * tiny["labels"]
        assert r["bytes"]["down_gradients"] == steps * tiny["gradients"]
        # Per client: the weights down, then one reply per step, then the weights up.
        assert r["messages_up"] == r["messages_down"] == CLIENTS * (STEPS + 1)
        assert r["bytes"]["up_weights"] > 0 and r["bytes"]["down_weights"] > 0
        assert r["device_seconds_max"] > 0 and r["server_seconds"] > 0


def test_local_loss_dpfl_sends_no_gradient(runs: dict[str, dict], tiny: dict) -> None:
    for r in runs["lgl"]["rounds"]:
        assert r["bytes"]["down_gradients"] == 0
        assert r["bytes"]["up_activations"] == CLIENTS * STEPS * tiny["activations"]
        assert r["messages_down"] == CLIENTS  # the weights, once per client
        assert r["messages_up"] == CLIENTS * (STEPS + 1)


def test_fl_moves_the_whole_model_each_way_per_client(runs: dict[str, dict], tiny: dict) -> None:
    # Round 1 sends the initial model: exactly its ArrayRecord, once per client.
    initial = full_model(create_split("tiny_cnn", "block1", "random", 10, 16))
    first = runs["fl"]["rounds"][0]
    assert first["bytes"]["down_weights"] == CLIENTS * wire_nbytes(model_arrays(initial))
    # Afterwards the values change, the sizes hardly: the weights plus headers per array
    # (less a few hundred bytes where equal BatchNorm counters are sent once).
    low = CLIENTS * (tiny["model_bytes"] - 2 * ARRAY_OVERHEAD)
    high = CLIENTS * (tiny["model_bytes"] + ARRAY_OVERHEAD * tiny["model_arrays"])
    for r in runs["fl"]["rounds"]:
        for direction in ("up", "down"):
            assert low <= r["bytes"][f"{direction}_weights"] <= high, (direction, r)
            # Round 1 also carries the partition-id handshake, one query per client.
            assert r[f"messages_{direction}"] == CLIENTS * (2 if r["round"] == 1 else 1)
        assert r["bytes"]["up_activations"] == r["bytes"]["down_gradients"] == 0
        assert len(r["device_seconds"]) == CLIENTS


def test_ecofed_refreshes_then_replays_for_free(runs: dict[str, dict], tiny: dict) -> None:
    refresh, replay = runs["ecofed-paper"]["rounds"]
    codes = make_codec("paper").encoded_nbytes(SAMPLES, tiny["shape"])
    assert refresh["refresh"] and refresh["samples_uploaded"] == CLIENTS * SAMPLES
    assert 0 < refresh["bytes"]["up_activations"] - CLIENTS * codes <= CLIENTS * 2 * ARRAY_OVERHEAD
    assert not replay["refresh"] and replay["train_samples"] > 0
    assert replay["bytes_up"] == replay["bytes_down"] == replay["messages_up"] == 0
    for r in (refresh, replay):
        # The grid's count of what Flower carried equals the strategy's own ledger.
        assert (r["bytes_up"], r["bytes_down"]) == (
            r["strategy_bytes_up"],
            r["strategy_bytes_down"],
        )


# ---------------------------------------------------------------- one client round, scaled


def test_client_round_and_run_totals_follow_the_refresh_schedule() -> None:
    cfg = EcoFedConfig.from_mapping(
        {"model": "tiny_cnn", "cut": "block1", "weights": "random", "input-size": 16}
    )
    paper = protocol_config("ecofed-paper", cfg)
    ledger = client_round_ledger("ecofed-paper", paper, 40)
    assert ledger.total("up", "activations") >= make_codec("paper").encoded_nbytes(40, (16, 8, 8))
    assert ledger.messages("up") == ledger.messages("down") == 1
    assert exchanges_per_client("ecofed-paper", paper, 500, 20, 100) == 50  # 250 rounds x 20%
    assert (
        exchanges_per_client("ecofed-best", protocol_config("ecofed-best", cfg), 500, 20, 100) == 1
    )
    assert exchanges_per_client("fl", cfg, 500, 20, 100) == 100
    report = communication_report(
        cfg,
        ("fl", "ecofed-paper"),
        num_clients=4,
        samples_per_client=40,
        clients_per_round=2,
        rounds=3,
    )
    expected = ledger.total() * 4 * 1  # rounds 1 and 3 refresh, each client sampled half the time
    assert report["total_bytes"]["ecofed-paper"] == pytest.approx(expected)
    assert report["ratio_fl_to_ecofed_paper"] == pytest.approx(
        report["bytes_per_client_round"]["fl"] / report["bytes_per_client_round"]["ecofed-paper"]
    )


# ---------------------------------------------------------------- estimated time


def test_time_model_adds_slowed_device_compute_transfers_and_server_time() -> None:
    ledger = Ledger()
    ledger.add(1, "a", "up", "activations", 1_250_000)  # 1 s at 10 Mbit/s
    ledger.add(1, "a", "down", "control", 0)
    ledger.add(1, "b", "up", "activations", 125_000)
    model = TimeModel(BandwidthModel(10, 50, 0.05), device_slowdown=10)
    log = RoundLog(
        1,
        accuracy=0.5,
        loss=1.0,
        device_seconds={"a": 0.1, "b": 0.5},
        server_seconds=2.0,
        wall_seconds=0,
    )
    estimate = model.round_seconds(ledger, log)
    # a: 10 x 0.1 + 1 s + 2 x 0.05 s latency = 2.1; b: 5 + 0.1 + 0.05 = 5.15 (critical)
    assert estimate["estimated_seconds"] == pytest.approx(5.15 + 2.0)
    assert estimate["estimated_device_seconds"] == pytest.approx(5.0)
    blocking = RoundLog(
        1, {"a": 0.1}, 0.0, 0, accuracy=0.5, loss=1.0, blocking_server_seconds={"a": 9.0}
    )
    assert model.round_seconds(ledger, blocking)["estimated_seconds"] == pytest.approx(11.1)


# ---------------------------------------------------------------- through Flower's engine


def test_fl_through_flower_simulation_counts_what_flower_carries(
    setting: Setting, runs: dict[str, dict], tiny: dict
) -> None:
    simulated = replace(
        setting,
        config=protocol_config("fl", setting.config, {"num-server-rounds": 1}),
        engine="simulation",
        num_clients=2,
    )
    doc = run_protocol("fl", simulated)
    (r,) = doc["rounds"]
    initial = full_model(create_split("tiny_cnn", "block1", "random", 10, 16))
    assert r["bytes"]["down_weights"] == 2 * wire_nbytes(model_arrays(initial))
    assert r["messages_up"] == r["messages_down"] == 2 * 2  # the handshake, then training
    # Only the metadata differs from the in-process run (ids that Flower's engine assigns).
    loopback = runs["fl"]["rounds"][0]
    per_client = (r["bytes_down"] / 2, loopback["bytes_down"] / CLIENTS)
    assert abs(per_client[0] - per_client[1]) <= 200


def test_runs_in_one_process_all_start_from_the_same_weights(
    setting: Setting, runs: dict[str, dict]
) -> None:
    # The EcoFed server trains the process's cached back in place; the harness restores it.
    cached = build_split(setting.config).back.state_dict()
    initial = initial_split(setting.config).back.state_dict()
    assert all(torch.equal(cached[k].cpu(), initial[k]) for k in initial)


# ---------------------------------------------------------------- the rules every protocol shares


def test_fl_back_exchanges_the_back_only_and_central_runs_send_nothing(
    runs: dict[str, dict], tiny: dict
) -> None:
    split = create_split("tiny_cnn", "block1", "random", 10, 16)
    back_bytes = sum(t.numel() * t.element_size() for t in split.back.state_dict().values())
    front_bytes = tiny["model_bytes"] - back_bytes
    for r, full in zip(runs["fl-back"]["rounds"], runs["fl"]["rounds"], strict=True):
        for key in ("down_weights", "up_weights"):
            assert back_bytes <= r["bytes"][key] / CLIENTS
            assert r["bytes"][key] <= full["bytes"][key] - CLIENTS * front_bytes
    for name in ("central", "central-frozen"):
        assert runs[name]["totals"]["bytes"] == 0
        assert all(r["server_steps"] > 0 for r in runs[name]["rounds"])


def test_baselines_sample_and_hold_out_exactly_as_the_ecofed_server() -> None:
    n, k, seed = 10, 4, 3
    codec = make_codec("fp32")
    server = EcoFedServer(
        nn.Linear(1, 2),
        "f",
        (1,),
        2,
        codec="fp32",
        fraction_train=k / n,
        validation_fraction=0.2,
        seed=seed,
        refresh="every:1",
    )
    for r in (1, 2, 3):
        plan = server.begin_round(r, [str(i) for i in range(n)])
        assert plan.sampled == [str(i) for i in sample_partitions(n, k, seed, r)]
        for client in plan.uploaders:
            rows = torch.arange(25, dtype=torch.float32).view(25, 1) + 100 * int(client)
            server.accept(client, codec.encode(rows), np.zeros(25, np.int64))
        server.end_round()
    held, _ = server.buffer.holdout()
    expected = [
        100 * int(c) + holdout_rows(25, 0.2, seed, c) for c in sorted(server.buffer.clients())
    ]
    assert held.view(-1).tolist() == np.concatenate(expected).astype(float).tolist()


def test_client_apps_run_with_the_given_thread_count() -> None:
    app = ClientApp()

    @app.query("threads")
    def threads(message: Message, context: Context) -> Message:
        count = MetricRecord({"threads": torch.get_num_threads()})
        return Message(RecordDict({"metrics": count}), reply_to=message)

    with_torch_threads(app, 2)
    context = Context(1, 1, {}, RecordDict(), {})
    with task_identity():
        request = as_pushed(Message(RecordDict(), 7, "query.threads"))
    reply = app(request, context)
    assert reply.content.metric_records["metrics"]["threads"] == 2
    assert torch.get_num_threads() == 1  # restored after the call


def test_selection_by_validation_and_the_plateau_gain() -> None:
    rounds = [
        {"round": i + 1, "val_accuracy": v, "accuracy": v}
        for i, v in enumerate([0.5, 0.7, 0.8, 0.82, 0.81, 0.815, 0.83, 0.8, 0.82, 0.825])
    ]
    assert selected_round(rounds)["round"] == 7
    assert validation_gain_last_fifth(rounds) == pytest.approx(0.825 - 0.83)
    assert (
        selected_round([{"round": 1, "accuracy": 0.1}, {"round": 2, "accuracy": 0.2}])["round"] == 2
    )


def test_the_gpu_server_model_reproduces_its_reference_and_prices_each_step() -> None:
    vgg = create_split("vgg11_cifar", "block2", "random", 10, 32)
    same = GpuServerModel.h200_for(vgg.back, vgg.activation_shape, vgg.back, vgg.activation_shape)
    assert same.samples_per_second(200) == pytest.approx(42_000, rel=1e-6)
    assert same.samples_per_second(1024) == pytest.approx(145_000, rel=1e-6)
    model = TimeModel(BandwidthModel(10, 50, 0.0), device_slowdown=1, gpu_server=same)
    log = RoundLog(
        1,
        {"a": 1.0},
        accuracy=0.5,
        loss=1.0,
        server_seconds=3.0,
        wall_seconds=0,
        server_train_seconds=2.5,
        server_steps=10,
        server_batch_size=200,
    )
    estimate = model.round_seconds(Ledger(), log)
    assert estimate["estimated_seconds"] == pytest.approx(1.0 + 3.0)
    assert estimate["estimated_seconds_gpu"] == pytest.approx(1.0 + 0.5 + 10 * 200 / 42_000)


# ---------------------------------------------------------------- defects of the comparison


def test_dpfl_learns_exactly_what_fl_learns(runs: dict[str, dict]) -> None:
    # SplitFed v1 with the gradient sent down is FedAvg of the whole model, step for step:
    # same batches, learning rate, momentum and averaging. Only bytes and time differ.
    fl, dpfl = runs["fl"], runs["dpfl"]
    for a, b in zip(fl["rounds"], dpfl["rounds"], strict=True):
        assert a["val_accuracy"] == b["val_accuracy"]
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
    assert fl["selected_round"] == dpfl["selected_round"]
    assert fl["selected_accuracy"] == dpfl["selected_accuracy"]
    assert fl["selected_test_loss"] == pytest.approx(dpfl["selected_test_loss"], rel=1e-4)
    assert dpfl["totals"]["bytes"] != fl["totals"]["bytes"]


def test_central_frozen_gets_ecofed_bests_updates_per_round(setting: Setting) -> None:
    # ecofed-best replays every buffered client each round: with half the clients sampled
    # per round, the rows trained on grow as clients upload; central-frozen follows them.
    cfg = protocol_config(
        "central-frozen", setting.config, {"num-server-rounds": 3, "fraction-train": 0.5}
    )
    logs, _ = run_central(cfg, 4, True, "seen")
    seen: set[int] = set()
    for log in logs:
        seen.update(sample_partitions(4, 2, cfg.seed, log.round))
        assert log.extra["train_samples"] == TRAIN_SAMPLES * len(seen)
        assert log.server_steps == math.ceil(TRAIN_SAMPLES * len(seen) / BATCH)


def _failing(app: ClientApp, partition: int, train: str | None, query: str) -> ClientApp:
    """``app``, except that partition ``partition`` raises in every training call."""
    wrapper = ClientApp()

    def trains(message: Message, context: Context) -> Message:
        if context.node_config["partition-id"] == partition:
            raise RuntimeError("simulated device failure")
        return app(message, context)

    (wrapper.train() if train is None else wrapper.train(train))(trains)

    @wrapper.query(query)
    def queries(message: Message, context: Context) -> Message:
        return app(message, context)

    return wrapper


@pytest.mark.parametrize("name", ["fl", "ecofed-best"])
def test_a_round_in_which_a_sampled_client_failed_voids_the_run(
    setting: Setting, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecofed_flwr.baselines import harness

    if name == "fl":
        make = harness.make_fl_client_app
        monkeypatch.setattr(
            harness,
            "make_fl_client_app",
            lambda *a, **k: _failing(make(*a, **k), 1, None, "fl_info"),
        )
    else:
        make_ecofed = harness.make_client_app
        monkeypatch.setattr(
            harness,
            "make_client_app",
            lambda *a, **k: _failing(make_ecofed(*a, **k), 1, "ecofed_upload", "ecofed_info"),
        )
    with pytest.raises(ClientFailure, match="simulated device failure"):
        run_protocol(name, setting, {"fraction-train": 1.0, "num-server-rounds": 1})


@pytest.fixture(scope="module")
def dropout_model() -> Iterator[str]:
    """A split model whose back has dropout (as EfficientNet's classifier has)."""
    stages = [
        ("stem", nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())),
        ("body", nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())),
        ("head", nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 16 * 16, 10))),
    ]
    register_sequential("baselines_dropout_net", stages, input_size=16)
    yield "baselines_dropout_net"
    unregister_model("baselines_dropout_net")


def test_runs_with_dropout_repeat_and_dpfl_still_equals_fl(
    setting: Setting, dropout_model: str
) -> None:
    # Dropout masks come from (seed, round, client) only: not from whatever ran before in
    # the process (before the fix, fl's and dpfl's masks did, and their curves differed).
    overrides = {"model": dropout_model, "cut": "stem", "fraction-train": 1.0}
    docs = []
    for name, noise in (("fl", 1), ("fl", 2), ("dpfl", 3)):
        torch.manual_seed(noise)
        torch.rand(noise)  # leave the global generator somewhere else each time
        docs.append(run_protocol(name, setting, overrides, label=f"{name}-dropout-{noise}"))
    curves = [[(r["val_accuracy"], r["val_loss"]) for r in doc["rounds"]] for doc in docs]
    assert curves[0] == curves[1]
    for (acc, loss), (acc_dpfl, loss_dpfl) in zip(curves[0], curves[2], strict=True):
        assert acc == acc_dpfl and loss == pytest.approx(loss_dpfl, rel=1e-4)


def test_dpfl_steps_equal_fl_steps_on_a_channels_last_efficientnet() -> None:
    # The gradient comes back as values; handed to the front's backward in another memory
    # format than its activations, other kernels round differently and dpfl's run drifts
    # away from fl's (3e-5 after two steps, several pp of accuracy after a round).
    cfg = EcoFedConfig.from_mapping({"learning-rate": 0.03, "batch-size": 10, "seed": 1})
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(20, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (20,), generator=generator)
    training = LocalTraining.from_config(cfg)
    model = full_model(initial_split(cfg))
    train_local(model, LocalData(images, labels.numpy(), 10), training, 1, "c")
    engine = VanillaDPFL(initial_split(cfg), training)
    engine.train_round(1, {"c": LocalData(images, labels.numpy(), 10)}, training)
    for ours, theirs in ((model[0], engine.front), (model[1], engine.back)):
        expected = ours.state_dict()
        for key, value in theirs.state_dict().items():
            assert torch.equal(value, expected[key]), key
