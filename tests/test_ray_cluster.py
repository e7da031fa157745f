"""`ecofed run` on a Ray cluster: a 2-node cluster on loopback runs the devices on both nodes.

The cluster is started with Ray's own utilities (``ray.cluster_utils.Cluster``: a head and a
second node, each with its own raylet, one CPU each) and shut down by them: the test stops
only the processes it started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecofed_flwr.launch.federation import device_settings

ROOT = Path(__file__).resolve().parents[1]
RUN_CONFIG = "num-server-rounds=1 samples-per-client=40 test-samples=200"


def test_what_devices_need_travels_in_the_run_config() -> None:
    env = {"ECOFED_FASHION_MNIST_DIR": "/data/fmnist", "HF_HUB_OFFLINE": "0"}
    assert device_settings({"dataset": "fashion_mnist"}, env) == [
        "data-dir='/data/fmnist'",
        "offline=false",
    ]
    assert device_settings({"dataset": "fashion_mnist", "data-dir": "/own"}, env) == [
        "offline=false"
    ]
    assert device_settings({"dataset": "synthetic"}, {"ECOFED_FASHION_MNIST_DIR": "/x"}) == []


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    nodes = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        nodes.add_node(num_cpus=1)
        yield nodes
    finally:
        nodes.shutdown()


def _ecofed_run(out: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FLWR_TELEMETRY_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    command = [
        str(Path(sys.executable).parent / "ecofed"),
        "run",
        "--num-supernodes",
        "4",
        "--quiet",
        "--output-root",
        str(out),
        "--run-config",
        RUN_CONFIG,
        *args,
    ]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "devices ran on Ray" in done.stdout
    return dict(json.loads((out / "latest" / "results.json").read_text()))


def _client_actor_nodes(address: str) -> set[str]:
    import ray

    ray.init(address=address, log_to_driver=False)
    try:
        # Every actor the cluster ran, dead ones included (the state API needs a dashboard).
        actors = ray._private.state.actors().values()  # noqa: SLF001
        return {a["Address"]["NodeID"] for a in actors if a["ActorClassName"] == "ClientAppActor"}
    finally:
        ray.shutdown()


def test_devices_run_on_both_nodes_of_a_cluster_and_local_never_joins_it(
    cluster: Any, tmp_path: Path
) -> None:
    # Default (local): a Ray of its own, although a cluster is running on this machine.
    local = _ecofed_run(tmp_path / "local")
    assert local["status"] == "completed"
    assert local["ray"]["address"] == "local" and local["ray"]["nodes"] == 1
    assert not _client_actor_nodes(cluster.address)  # the cluster ran nothing

    joined = _ecofed_run(tmp_path / "cluster", "--ray-address", cluster.address)
    assert joined["status"] == "completed"
    assert joined["ray"]["address"] == cluster.address
    assert joined["ray"]["nodes"] == 2 and joined["ray"]["cpus"] == 2.0
    assert len(_client_actor_nodes(cluster.address)) == 2  # actors on both nodes
    launch = json.loads(next((tmp_path / "cluster").glob("run-*/launch.json")).read_text())
    assert launch["ray_address"] == cluster.address
