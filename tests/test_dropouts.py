"""Dropouts in Flower's simulation engine: in every round 30 % of the sampled devices fail,
two by raising and one by answering only after the round timeout. The run completes, each
refusal is in ``results.json`` with its reason, every exchange ends at the timeout, and the
server learns exactly what it learns from the devices that work.

What is compared: ten devices, all sampled every round (``fraction-train = 1``), refresh
``once``, so the three failing devices (0 and 1 raise, 2 sleeps past the timeout) are asked
again in every round and fail every time. The reference is the same federation, seed and
data partitions in which devices 0, 1 and 2 take no part (they present another front and are
left out at the handshake). With the failures refused and nothing else changed, the test
accuracies of the two runs agree (the task asks for 1 pp; they agree exactly).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.simulation import run_simulation

from ecofed_flwr.app.task import build_split, client_data
from ecofed_flwr.baselines.wire import DelegatingGrid
from ecofed_flwr.clients.ecofed import info_reply, upload_reply
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.federation import run_federation
from ecofed_flwr.handshake import INFO_ACTION, INFO_MESSAGE_TYPE
from ecofed_flwr.models import create_split
from ecofed_flwr.protocol import UPLOAD_ACTION, UPLOAD_MESSAGE_TYPE

pytestmark = pytest.mark.timeout(600)

NUM_NODES = 10
RAISING, SLEEPING = {0, 1}, 2  # 3 of the 10 devices sampled in every round
ROUNDS = 3
TIMEOUT_S = 8.0
POLL_S = 2.0  # Flower's Grid polls for replies: an exchange may end this much after the timeout
MARGIN_S = 15.0  # the round's server training and evaluation, on a busy 2-core machine
# Four actors on two cores: one may sleep while the others serve the rest of the round.
BACKEND = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}, "init_args": {"num_cpus": 4}}


def _config(run_dir: Path) -> EcoFedConfig:
    return EcoFedConfig.from_mapping(
        {
            "model": "tiny_cnn",
            "cut": "block1",
            "weights": "random",
            "input-size": 16,
            "dataset": "fashion_mnist",  # not learnt perfectly: accuracies can tell runs apart
            "samples-per-client": 100,
            "test-samples": 1000,
            "num-server-rounds": ROUNDS,
            "fraction-train": 1.0,
            "refresh": "once",
            "codec": "u4",
            "batch-size": 32,
            "local-epochs": 2,
            "round-timeout": TIMEOUT_S,
            "output-dir": str(run_dir),
        }
    )


def _client_app(cfg: EcoFedConfig, dropouts: bool) -> ClientApp:
    """Devices of the run with dropouts, or of the reference (where 0-2 are left out)."""
    app = ClientApp()
    failing = RAISING | {SLEEPING}

    @app.train(UPLOAD_ACTION)
    def upload(message: Message, context: Context) -> Message:
        partition = int(context.node_config["partition-id"])  # type: ignore[call-overload]
        if dropouts and partition in RAISING:
            raise RuntimeError(f"simulated crash of device {partition}")
        if dropouts and partition == SLEEPING:
            time.sleep(TIMEOUT_S + POLL_S)  # it answers, but after the round has ended
        return upload_reply(message, build_split(cfg), client_data(cfg, partition, NUM_NODES))

    @app.query(INFO_ACTION)
    def info(message: Message, context: Context) -> Message:
        partition = int(context.node_config["partition-id"])  # type: ignore[call-overload]
        front = build_split(cfg)
        if not dropouts and partition in failing:
            front = create_split("tiny_cnn", "block1", "random", 10, 16, seed=99)
        return info_reply(message, context, front)

    return app


class _TimedGrid(DelegatingGrid):
    """The ServerApp's Grid, timing every upload exchange (from its push to its last pull)."""

    def __init__(self, grid: Grid) -> None:
        super().__init__(grid)
        self.upload_waits: list[float] = []
        self._pushed = 0.0

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        sent = list(messages)
        ids = list(self.grid.push_messages(sent))
        if sent and sent[0].metadata.message_type == UPLOAD_MESSAGE_TYPE:
            self._pushed = time.monotonic()
            self.upload_waits.append(0.0)
        else:
            self._pushed = 0.0
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        replies = list(self.grid.pull_messages(message_ids))
        if self._pushed:
            self.upload_waits[-1] = time.monotonic() - self._pushed
        return replies


def _simulate(cfg: EcoFedConfig, dropouts: bool) -> tuple[dict[str, Any], list[float]]:
    grids: list[_TimedGrid] = []
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        # Ray starts each actor's Python and imports torch on its first message: do that
        # first, so that the short round timeout measures uploads and not start-up.
        deadline = time.monotonic() + 180
        while len(list(grid.get_node_ids())) < NUM_NODES and time.monotonic() < deadline:
            time.sleep(0.5)
        warm_up = [
            Message(content=RecordDict(), message_type=INFO_MESSAGE_TYPE, dst_node_id=node)
            for node in grid.get_node_ids()
        ]
        grid.send_and_receive(warm_up, timeout=180)
        grids.append(_TimedGrid(grid))
        run_federation(grids[0], cfg)

    run_simulation(
        server_app=app,
        client_app=_client_app(cfg, dropouts),
        num_supernodes=NUM_NODES,
        backend_config=BACKEND,  # type: ignore[arg-type]
    )
    doc = json.loads((Path(cfg.output_dir) / "results.json").read_text())
    return doc, grids[0].upload_waits


def test_a_run_with_30_percent_dropouts_completes_within_the_timeouts(tmp_path: Path) -> None:
    dropped, waits = _simulate(_config(tmp_path / "dropouts"), dropouts=True)
    reference, _ = _simulate(_config(tmp_path / "reference"), dropouts=False)

    lines = [f"round timeout {TIMEOUT_S} s"]
    for r, ref, wait in zip(dropped["rounds"][1:], reference["rounds"][1:], waits, strict=True):
        reasons = {c: reason.splitlines()[-1][-60:] for c, reason in r["refused"].items()}
        lines.append(
            f"round {r['round']}: upload exchange {wait:.1f} s, round {r['seconds']:.1f} s; "
            f"uploaded {sorted(r['uploaded'])}, refused {reasons}; test accuracy "
            f"{r['accuracy']:.4f} (reference {ref['accuracy']:.4f})"
        )
    lines.append(
        f"kept back: test accuracy {dropped['final_accuracy']:.4f} (round "
        f"{dropped['best_round']}); reference {reference['final_accuracy']:.4f} (round "
        f"{reference['best_round']})"
    )
    print("\n" + "\n".join(lines))

    assert dropped["status"] == reference["status"] == "completed"
    assert len(waits) == ROUNDS  # the failing devices are asked, and fail, in every round
    everyone = [str(i) for i in range(NUM_NODES)]
    failing = sorted(str(p) for p in RAISING | {SLEEPING})
    for r, wait in zip(dropped["rounds"][1:], waits, strict=True):
        assert r["sampled"] == everyone
        assert sorted(r["refused"]) == failing  # 30 % of the sampled devices
        assert not set(r["uploaded"]) & set(failing)
        for partition in RAISING:
            reason = r["refused"][str(partition)]
            assert reason.startswith("client error") and "simulated crash" in reason, reason
        assert r["refused"][str(SLEEPING)] == "no reply before the timeout"
        # The exchange waited for the sleeping device until the timeout, and no longer.
        assert TIMEOUT_S <= wait <= TIMEOUT_S + POLL_S
        assert r["seconds"] < TIMEOUT_S + MARGIN_S
    assert sorted(reference["excluded_nodes"].values()) and len(reference["excluded_nodes"]) == 3
    for r, ref in zip(dropped["rounds"], reference["rounds"], strict=True):
        assert (r["val_accuracy"], r["accuracy"]) == (ref["val_accuracy"], ref["accuracy"])
    assert abs(dropped["final_accuracy"] - reference["final_accuracy"]) <= 0.01
    assert dropped["final_accuracy"] > 0.3  # 10 classes: well above chance
