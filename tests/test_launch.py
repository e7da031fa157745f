"""The launcher's pieces, without Ray or a federation: ports, config, outcome, process stop."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import psutil
import pytest

from ecofed_flwr import cli
from ecofed_flwr.launch import (
    PORT_RANGE,
    RAY_ACCELERATOR_WARNING_FILTER,
    LaunchError,
    LaunchUsageError,
    RunFailedError,
    Spawned,
    check_outcome,
    descendants,
    find_free_port,
    flower_env,
    resolve_run_config,
    start_superlink,
    stop_process,
    write_flwr_config,
)

REPO = Path(__file__).resolve().parents[1]


def test_free_port_is_in_range_and_skips_taken_ports() -> None:
    port = find_free_port()
    assert port in PORT_RANGE
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        other = find_free_port(ports=[port, *PORT_RANGE])
        assert other != port
        with pytest.raises(LaunchError, match="no free port"):
            find_free_port(ports=[port])
    assert find_free_port(ports=[port, port + 1], exclude=[port]) == port + 1


def test_config_toml_is_read_by_flwr_as_the_default_insecure_superlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flwr.cli.flower_config import read_superlink_connection

    path = write_flwr_config(tmp_path / "home", "127.0.0.1:47123")
    assert tomllib.loads(path.read_text()) == {
        "superlink": {
            "default": "ecofed",
            "ecofed": {"address": "127.0.0.1:47123", "insecure": True},
        }
    }
    # flwr's own reader is the judge of the key names.
    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "home"))
    conn = read_superlink_connection()
    assert (conn.name, conn.address, conn.insecure) == ("ecofed", "127.0.0.1:47123", True)


def test_flower_env_points_at_this_environment_and_disables_installs(tmp_path: Path) -> None:
    env = flower_env(tmp_path, base={"PATH": "/usr/bin"})
    assert env["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/usr/bin"]
    assert env["FLWR_HOME"] == str(tmp_path)
    assert env["FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION"] == "1"
    assert env["FLWR_TELEMETRY_ENABLED"] == "0"
    assert env["PYTHONWARNINGS"] == RAY_ACCELERATOR_WARNING_FILTER


def test_flower_env_keeps_the_users_warning_filters() -> None:
    env = flower_env(Path("home"), base={"PYTHONWARNINGS": "error::DeprecationWarning"})
    assert env["PYTHONWARNINGS"].split(",") == [
        "error::DeprecationWarning",
        RAY_ACCELERATOR_WARNING_FILTER,
    ]
    assert flower_env(Path("home"), base=env)["PYTHONWARNINGS"] == env["PYTHONWARNINGS"]


def test_ray_accelerator_warning_filter_silences_only_that_warning(tmp_path: Path) -> None:
    # Ray warns from ray._private.worker at ray.init; stand in for it without starting Ray.
    script = tmp_path / "warn.py"
    script.write_text(
        "import warnings\n"
        "g = {'__name__': 'ray._private.worker', 'warnings': warnings}\n"
        "exec('warnings.warn(\"Tip: In future versions of Ray, ...\", FutureWarning)', g)\n"
        "exec('warnings.warn(\"Something else\", FutureWarning)', g)\n"
    )
    env = flower_env(tmp_path, base={"PATH": os.environ.get("PATH", "")})
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, check=True
    )
    assert "Tip" not in done.stderr
    assert "Something else" in done.stderr


def test_tls_config_toml_names_the_ca_by_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flwr.cli.flower_config import read_superlink_connection

    monkeypatch.chdir(tmp_path)
    write_flwr_config(tmp_path / "home", "localhost:47123", root_certificates=Path("ca.crt"))
    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "home"))
    conn = read_superlink_connection()
    assert conn.root_certificates == str(tmp_path / "ca.crt")
    assert conn.insecure is False


def test_supernode_auth_without_tls_is_refused_before_starting(tmp_path: Path) -> None:
    with pytest.raises(LaunchUsageError, match="needs TLS"):
        start_superlink(
            find_free_port(), tmp_path, flower_env(tmp_path), simulation=False, supernode_auth=True
        )
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("doc", [None, "not json", {"status": "running", "rounds": [{}]}])
def test_outcome_check_rejects_missing_broken_or_unfinished_results(
    tmp_path: Path, doc: object
) -> None:
    log = tmp_path / "flwr-run.log"
    log.write_text("something went wrong\n")
    if isinstance(doc, str):
        (tmp_path / "results.json").write_text(doc)
    elif doc is not None:
        (tmp_path / "results.json").write_text(json.dumps(doc))
    with pytest.raises(RunFailedError) as err:
        check_outcome(tmp_path, [log])
    assert "something went wrong" in str(err.value)  # the log tail comes along
    if isinstance(doc, dict):
        assert "'running' after 1 round" in str(err.value)


def test_outcome_check_returns_completed_results(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"status": "completed", "rounds": []}))
    assert check_outcome(tmp_path)["status"] == "completed"


def test_run_config_is_checked_before_anything_starts() -> None:
    merged = resolve_run_config(REPO, ["num-server-rounds=3 codec='u2'", "model='tiny_cnn'"])
    assert (merged["num-server-rounds"], merged["codec"], merged["model"]) == (3, "u2", "tiny_cnn")
    for bad, message in [
        (["nope=1"], "unknown keys"),
        (["output-dir='/tmp/x'"], "output-dir is set by the launcher"),
        (["codec=u2"], "invalid format"),  # strings need quotes in TOML
        (["codec='zz9'"], "codec"),
        (["overrides.toml"], "not a TOML file"),
    ]:
        with pytest.raises(LaunchUsageError, match=message):
            resolve_run_config(REPO, bad)


def test_cli_run_returns_2_on_usage_errors_and_starts_nothing(tmp_path: Path) -> None:
    out = ["--output-root", str(tmp_path / "out")]
    assert cli.main(["run", "--app-dir", str(REPO), *out, "--run-config", "nope=1"]) == 2
    assert cli.main(["run", "--app-dir", str(tmp_path), *out]) == 2  # not a Flower app
    assert cli.main(["run", "--num-supernodes", "0", *out]) == 2
    assert not (tmp_path / "out").exists()  # checked before any folder or process


_SPAWNER = """
import signal, subprocess, sys, time
# A grandchild in a session of its own that ignores SIGTERM, like Ray's agents.
code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
child = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
print(child.pid, flush=True)
time.sleep(60)
"""


def _finished(proc: psutil.Process) -> bool:
    """Ended (a zombie has ended: its parent reaps it)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_stop_process_ends_the_process_and_its_orphaned_stubborn_children() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _SPAWNER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        grandchild = psutil.Process(int(proc.stdout.readline()))
        started = time.monotonic()
        stop_process(proc, timeout=1.0)
        assert proc.returncode is not None
        assert time.monotonic() - started < 10
        assert _finished(grandchild)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stop_process_stops_what_the_process_spawned_and_nothing_else() -> None:
    # A shell whose child sleeps; SIGTERM ends the shell, and the orphaned child is found
    # and stopped. A process started beside the shell (not below it) is left running.
    shell = subprocess.Popen(
        ["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE, text=True
    )
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        assert shell.stdout is not None
        child = psutil.Process(int(shell.stdout.readline()))
        assert child in descendants(psutil.Process(shell.pid))
        spawned = Spawned(shell.pid)
        spawned.refresh()
        assert set(spawned.running()) == {child}
        stop_process(shell, timeout=1.0)
        assert shell.returncode is not None
        assert _finished(child)
        assert bystander.poll() is None
        assert not spawned.running()
    finally:
        for proc in (shell, bystander):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_large_simulations_assign_partitions_from_the_server() -> None:
    from ecofed_flwr.launch.federation import LARGE_FEDERATION, large_federation_assignment

    # make run's size keeps the handshake; a large one gets server-named partitions...
    assert large_federation_assignment(10, []) is None
    assert large_federation_assignment(LARGE_FEDERATION - 1, ["fraction-train=0.1"]) is None
    assert (
        large_federation_assignment(LARGE_FEDERATION, ["fraction-train=0.002"])
        == "partition-assignment='server'"
    )
    # ...unless the user chose, either way.
    for chosen in ("partition-assignment='node'", "seed=1 partition-assignment='server'"):
        assert large_federation_assignment(100_000, [chosen]) is None
