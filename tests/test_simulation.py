"""EcoFed through Flower's simulation engine (in-process, Ray): learning, traffic, refusals."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.simulation import run_simulation

from ecofed_flwr.app.server_app import make_server_app
from ecofed_flwr.app.task import build_split, client_data
from ecofed_flwr.clients import add_ecofed_handlers
from ecofed_flwr.codec import make_codec
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.federation import make_client_app
from ecofed_flwr.models import create_split

NUM_NODES = 4
BACKEND = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}, "init_args": {"num_cpus": 2}}


def _config(tmp_path: Path, **overrides: object) -> EcoFedConfig:
    base: dict[str, object] = {
        "model": "tiny_cnn",
        "cut": "block1",
        "weights": "random",
        "input-size": 16,
        "dataset": "synthetic",
        "num-server-rounds": 4,
        "fraction-train": 0.5,
        "refresh": "every:2",
        "replay": "paper",
        "codec": "paper",
        "trainer": "copies",
        "learning-rate": 0.05,
        "batch-size": 10,
        "output-dir": str(tmp_path),
    }
    base.update(overrides)
    return EcoFedConfig.from_mapping(base)


def _run(cfg: EcoFedConfig, client_app: ClientApp) -> dict:
    run_simulation(
        server_app=make_server_app(cfg),
        client_app=client_app,
        num_supernodes=NUM_NODES,
        backend_config=BACKEND,  # type: ignore[arg-type]
    )
    return json.loads((Path(cfg.output_dir) / "results.json").read_text())


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    cfg = _config(tmp_path_factory.mktemp("paper"))
    return _run(cfg, make_client_app(cfg))


def test_accuracy_rises_above_chance(paper_run: dict) -> None:
    assert paper_run["status"] == "completed"
    assert [r["round"] for r in paper_run["rounds"]] == [0, 1, 2, 3, 4]  # round 0: untrained
    assert paper_run["final_accuracy"] > 0.5  # 10 classes: chance is 0.1
    assert paper_run["final_accuracy"] == paper_run["rounds"][paper_run["best_round"]]["accuracy"]
    assert all(r["val_accuracy"] is None for r in paper_run["rounds"][:1])
    assert all(r["val_accuracy"] is not None for r in paper_run["rounds"][1:])
    assert Path(paper_run["model_path"]).is_file()
    assert (Path(paper_run["config"]["output-dir"]) / "accuracy.png").stat().st_size > 10_000


def test_replay_rounds_send_nothing_and_refresh_bytes_match_codec(paper_run: dict) -> None:
    cfg = EcoFedConfig.from_mapping(paper_run["config"])
    split = create_split("tiny_cnn", "block1", "random", 10, 16)
    per_sample = make_codec(cfg.codec).encoded_nbytes(1, split.activation_shape)
    for r in paper_run["rounds"][1:]:
        if r["round"] % 2 == 0:  # P = 2: rounds 2 and 4 replay
            assert not r["refresh"]
            assert r["bytes_up"] == r["bytes_down"] == r["bytes_up_activations"] == 0
            assert r["train_samples"] > 0  # the server still trains, on the buffer
        else:
            assert r["refresh"] and r["samples_uploaded"] > 0
            expected = r["samples_uploaded"] * per_sample
            assert abs(r["bytes_up_activations"] - expected) / expected < 0.01
            assert r["bytes_up"] > r["bytes_up_activations"]
            assert r["buffer_bytes"] > 0


def test_failing_client_and_foreign_front_are_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = _config(tmp_path, **{"num-server-rounds": 2, "fraction-train": 1.0})
    other = create_split("tiny_cnn", "block1", "random", 10, 16, seed=99)

    def front(context: Context):  # type: ignore[no-untyped-def]
        pid = int(context.node_config["partition-id"])  # type: ignore[call-overload]
        # Node 1 runs a front with other weights: its fingerprint differs.
        return other.front if pid == 1 else build_split(cfg).front

    def data(context: Context):  # type: ignore[no-untyped-def]
        pid = int(context.node_config["partition-id"])  # type: ignore[call-overload]
        if pid == 0:
            raise RuntimeError("simulated device failure")
        return client_data(cfg, pid, int(context.node_config["num-partitions"]))  # type: ignore[call-overload]

    app = add_ecofed_handlers(ClientApp(), front, data)
    with caplog.at_level(logging.WARNING, logger="flwr"):
        results = _run(cfg, app)
    first = results["rounds"][1]
    assert results["status"] == "completed"
    assert len(first["uploaded"]) == NUM_NODES - 2
    # The node with another front is told at the handshake and never asked to upload.
    (excluded,) = results["excluded_nodes"].values()
    assert "fingerprint" in excluded and "weights differ" in excluded
    assert "1" not in first["sampled"]
    reasons = list(first["refused"].values())
    assert any("simulated device failure" in r or "client error" in r for r in reasons), reasons
    assert first["train_samples"] > 0
    assert results["final_accuracy"] is not None
    assert any("refused reply of 0" in rec.getMessage() for rec in caplog.records)


def test_same_config_and_seed_give_the_same_rounds(paper_run: dict, tmp_path: Path) -> None:
    # Flower's simulated node ids are random on every run: devices are keyed by partition id.
    cfg = EcoFedConfig.from_mapping({**paper_run["config"], "output-dir": str(tmp_path)})
    again = _run(cfg, make_client_app(cfg))
    keys = ("round", "sampled", "uploaded", "slots", "val_accuracy", "val_loss", "accuracy")
    first = [{k: r[k] for k in keys} for r in paper_run["rounds"]]
    assert first == [{k: r[k] for k in keys} for r in again["rounds"]]
    assert all(c.isdigit() for r in paper_run["rounds"] for c in r["sampled"])
