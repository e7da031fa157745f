"""EcoFed in a real Flower deployment on loopback: one SuperLink, two SuperNodes, `flwr run`.

Unlike the simulation tests, every piece runs as its own process and talks HTTP: the
SuperLink (deployment runtime, no ``--simulation``), two ``flower-supernode`` processes with
their partition in ``--node-config``, and ``flwr run`` submitting the FAB built from the
repository root. Each message exchange costs seconds of polling here, so the run is tiny:
two rounds (one upload, one replay), 200 samples per node.
"""

from __future__ import annotations

import io
import json
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from ecofed_flwr.launch import (
    find_free_port,
    flower_env,
    flower_executable,
    log_tail,
    start_superlink,
    stop_process,
    wait_until_ready,
    write_flwr_config,
)

pytestmark = pytest.mark.timeout(400)

REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 300

RUN_CONFIG = (
    "model='tiny_cnn' cut='block1' weights='random' input-size=16 dataset='synthetic' "
    "num-server-rounds=2 fraction-train=1.0 min-train-nodes=2 refresh='every:2' "
    "replay='paper' codec='paper' trainer='copies' batch-size=10 "
    # Fewer samples keep the server's training short on a busy 2-core machine; a dead node
    # fails the round in two minutes instead of the default fifteen.
    "samples-per-client=200 test-samples=200 round-timeout=120.0"
)


def test_fab_from_the_repository_root_is_small_and_carries_no_environment() -> None:
    from flwr.cli.build import build_fab_from_disk
    from flwr.common.constant import FAB_MAX_SIZE

    fab = build_fab_from_disk(REPO)
    names = zipfile.ZipFile(io.BytesIO(fab)).namelist()
    assert len(fab) < FAB_MAX_SIZE
    assert "src/ecofed_flwr/app/server_app.py" in names
    # .gitignore is honoured: no virtual environment, no outputs, no private Flower homes.
    assert not [n for n in names if n.startswith((".venv/", "outputs/", "tests/"))]


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=log.parent, start_new_session=True,
        )  # fmt: skip


def _tails(paths: list[Path]) -> str:
    return "".join(f"\n--- {p.name} ---\n{log_tail(p, 25)}" for p in paths)


def test_two_supernodes_upload_then_replay(tmp_path: Path) -> None:
    started = time.monotonic()
    out_dir = tmp_path / "out"
    home = tmp_path / "flwr-home"  # SuperLink, ServerApp and the flwr CLI
    env = flower_env(home)
    procs: list[subprocess.Popen[Any]] = []
    logs = [tmp_path / "superlink" / "superlink-console.log", tmp_path / "flwr-run.log"]
    try:
        port = find_free_port()
        procs.append(start_superlink(port, tmp_path / "superlink", env, simulation=False))
        write_flwr_config(home, f"127.0.0.1:{port}")

        used = [port]
        for partition in (0, 1):
            # Each node has its own local runtime API port and Flower home, as devices would.
            node_port = find_free_port(exclude=used)
            used.append(node_port)
            node_env = flower_env(tmp_path / f"node-{partition}-home")
            log = tmp_path / f"supernode-{partition}.log"
            logs.append(log)
            node = _spawn(
                [
                    flower_executable("flower-supernode", node_env),
                    "--insecure",
                    "--superlink",
                    f"127.0.0.1:{port}",
                    "--port",
                    str(node_port),
                    "--node-config",
                    f"partition-id={partition} num-partitions=2",
                ],
                node_env,
                log,
            )
            procs.append(node)
            wait_until_ready(
                node, f"http://127.0.0.1:{node_port}/health", 60, "flower-supernode", [log]
            )

        run_log = tmp_path / "flwr-run.log"
        command = [
            flower_executable("flwr", env),
            "run",
            str(REPO),
            "--stream",
            "--run-config",
            RUN_CONFIG,
            "--run-config",
            f"output-dir='{out_dir}'",
        ]
        run = _spawn(command, env, run_log)
        procs.append(run)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while run.poll() is None:
            # A node that dies would leave the ServerApp waiting: fail at once instead.
            dead = [f"partition {i}" for i, p in enumerate(procs[1:3]) if p.poll() is not None]
            assert not dead, f"SuperNode exited: {dead}" + _tails(logs)
            assert time.monotonic() < deadline, "flwr run timed out" + _tails(logs)
            time.sleep(1.0)
        # flwr run exits 0 even when the run fails: the results file is the verdict.
        assert run.returncode == 0, _tails(logs)
        results_file = out_dir / "results.json"
        assert results_file.exists(), "no results.json" + _tails(logs)
        results = json.loads(results_file.read_text())
    finally:
        for proc in reversed(procs):
            stop_process(proc)

    assert results["status"] == "completed", _tails(logs)
    first, second = results["rounds"]
    assert (first["round"], second["round"]) == (1, 2)
    assert first["refresh"] and sorted(first["uploaded"]) == sorted(first["sampled"])
    assert len(first["uploaded"]) == 2
    assert first["bytes_up_activations"] > 0
    assert not second["refresh"]
    assert second["bytes_up"] == 0 and second["train_samples"] > 0  # replay from the buffer
    assert isinstance(results["final_accuracy"], float)
    assert (out_dir / "accuracy.png").exists()
    print(f"deployment test: {time.monotonic() - started:.0f} s")
