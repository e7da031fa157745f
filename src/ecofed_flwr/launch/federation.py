"""``ecofed run``: the app on a private simulation SuperLink, the outcome checked, the SuperLink
stopped whatever happens."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from ecofed_flwr import defaults
from ecofed_flwr.launch.errors import LaunchError, LaunchUsageError, RunFailedError
from ecofed_flwr.launch.flower import (
    CONNECTION_NAME,
    find_free_port,
    flower_env,
    flower_executable,
    write_flwr_config,
)
from ecofed_flwr.launch.logs import format_tails
from ecofed_flwr.launch.outcome import check_outcome, keep_out_of_package, summary_lines
from ecofed_flwr.launch.processes import stop_process
from ecofed_flwr.launch.run_config import (
    LAUNCH_FILE,
    launched_with,
    resolve_run_config,
    resume_settings,
    toml_string,
)
from ecofed_flwr.launch.services import start_superlink
from ecofed_flwr.results import MODEL_FILE, PLOT_FILE, RESULTS_FILE

__all__ = ["LATEST_DIR", "run_local_federation"]

#: Folder under the output root that always holds the last successful run's results.
LATEST_DIR = "latest"


def _new_run_dir(output_root: Path) -> Path:
    stamp = datetime.now().strftime("run-%Y%m%d-%H%M%S")
    for suffix in ["", *(f"-{i}" for i in range(2, 100))]:
        candidate = output_root / f"{stamp}{suffix}"
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            continue  # two launches in the same second
        return candidate
    raise LaunchError(f"cannot create a run folder in {output_root}")


def _stream(
    command: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path, echo: bool
) -> int:
    """Run ``command``, copying its output to ``log`` (and stdout when ``echo``) as it comes."""
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=dict(env), cwd=cwd, text=True, errors="replace",
            bufsize=1,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                out.flush()
                if echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()
            return proc.wait()
        finally:
            # Interrupted (Ctrl-C, SIGTERM): the CLI only follows the run's logs, so ending it
            # is safe; the SuperLink it talks to is stopped by the caller.
            stop_process(proc, timeout=5.0)


def run_local_federation(
    app_dir: Path,
    run_config: Sequence[str] = (),
    num_supernodes: int | None = None,
    output_root: Path | None = None,
    client_cpus: float = 1.0,
    stream: bool = True,
    resume: Path | None = None,
    ray_address: str | None = None,
) -> Path:
    """Run the Flower app in ``app_dir`` on a private simulation SuperLink; check the outcome.

    Starts ``flower-superlink --simulation`` on a free port of
    :data:`~ecofed_flwr.launch.flower.PORT_RANGE` with a private ``FLWR_HOME``, runs
    ``flwr run <app_dir> --stream`` against it with
    ``output-dir`` set to a fresh ``output_root/run-YYYYmmdd-HHMMSS`` folder, checks that the
    run wrote a completed ``results.json`` there, copies it, ``accuracy.png`` and ``model.pt`` to
    ``output_root/latest/``, prints a summary whose last line is the path of
    ``latest/results.json``, and stops the SuperLink in every case.

    Parameters
    ----------
    app_dir : Path
        The Flower app (folder of ``pyproject.toml``).
    run_config : Sequence[str]
        ``--run-config`` overrides in ``flwr``'s TOML syntax, e.g. ``"num-server-rounds=3"``.
    num_supernodes : int, optional
        Simulated SuperNodes (one partition each); default
        :data:`ecofed_flwr.defaults.NUM_SUPERNODES`, or the resumed run's.
    output_root : Path, optional
        Where run folders and ``latest/`` go (default: ``app_dir/outputs``, or the resumed
        run folder's parent).
    client_cpus : float
        CPUs reserved per ClientApp, a whole number (Flower 1.42 takes no fractions); Ray
        runs ``CPUs / client_cpus`` of them at a time.
    stream : bool
        Echo ``flwr run``'s output as it comes (it is always saved in the run folder's
        ``flwr-run.log``, or ``flwr-run-resume.log`` for a resume).
    resume : Path, optional
        The folder of an earlier run whose ServerApp stopped (a crash, a kill): the run goes
        on from its checkpoint after its last finished round, in that folder, with its
        settings (read from the checkpoint) and its number of SuperNodes (from the folder's
        ``launch.json``). ``run_config`` may then only change the settings of
        :data:`ecofed_flwr.config.RESUME_MAY_CHANGE`.
    ray_address : str, optional
        The Ray that runs the devices (``RAY_ADDRESS`` of the simulation): ``"local"`` (the
        default: a new Ray on this machine, never a cluster left running here), ``"auto"``
        (the cluster started on this machine) or a cluster head's ``HOST:PORT``; a resume
        keeps the run's. What the devices need from this machine's environment (the
        Fashion-MNIST folder, the offline setting) travels in the run config, so that
        devices on other Ray nodes get it too.

    Returns
    -------
    Path
        ``output_root/latest/results.json``.

    Raises
    ------
    LaunchUsageError
        For a bad app folder, run-config override, or run folder to resume (nothing was
        started).
    LaunchError
        If the SuperLink does not start; :class:`RunFailedError` if the run fails.
    """
    if num_supernodes is not None and num_supernodes < 1:
        raise LaunchUsageError(f"num_supernodes must be >= 1, got {num_supernodes}")
    if client_cpus < 1 or not float(client_cpus).is_integer():
        # Flower 1.42's SimulationConfig stores client-resources-num-cpus as uint32: a
        # fraction is rejected by `flwr run` ("'float' object cannot be interpreted as an
        # integer").
        raise LaunchUsageError(f"client_cpus must be a whole number >= 1, got {client_cpus}")
    app_dir = app_dir.expanduser().resolve()
    if ray_address is not None and not ray_address.strip():
        raise LaunchUsageError("--ray-address: expected local, auto or HOST:PORT, got ''")
    if resume is None:
        resolved = resolve_run_config(app_dir, run_config)
        nodes = defaults.NUM_SUPERNODES if num_supernodes is None else num_supernodes
        overrides = [*device_settings(resolved, os.environ), *run_config]
        assignment = large_federation_assignment(nodes, run_config)
        if assignment is not None:
            overrides.append(assignment)
            print(
                f"note: {nodes:,} virtual devices: {assignment} (the server names each upload's "
                "partition and asks only the sampled devices, instead of asking every node "
                "for its partition before round 1); set partition-assignment='node' to keep "
                "the handshake (docs/scaling.md)",
                flush=True,
            )
        root = (output_root or app_dir / "outputs").expanduser().resolve()
        ray_address = ray_address or "local"
    else:
        resume = resume.expanduser().resolve()
        nodes, overrides = resume_settings(app_dir, resume, run_config, num_supernodes)
        root = (output_root or resume.parent).expanduser().resolve()
        ray_address = ray_address or launched_with(resume, "ray_address") or "local"
    toml_string(str(root))  # a path flwr cannot take is a usage error, found before starting
    keep_out_of_package(app_dir, root)
    started = time.perf_counter()
    if resume is None:
        run_dir = _new_run_dir(root)
        launch = {
            "app_dir": str(app_dir),
            "num_supernodes": nodes,
            "client_cpus": client_cpus,
            "ray_address": ray_address,
        }
        (run_dir / LAUNCH_FILE).write_text(json.dumps(launch, indent=2) + "\n", encoding="utf-8")
        flower_dir, flwr_log, resume_flag = run_dir / "flower", run_dir / "flwr-run.log", []
    else:
        toml_string(str(resume))
        run_dir = resume
        # The crashed run's SuperLink folder stays for its logs; the resume gets its own.
        flower_dir, flwr_log = run_dir / "flower-resume", run_dir / "flwr-run-resume.log"
        shutil.rmtree(flower_dir, ignore_errors=True)
        resume_flag = ["--run-config", "resume=true"]
    # A FLWR_HOME per run: concurrent launches never read each other's config.toml.
    flwr_home = flower_dir / "flwr-home"
    env = flower_env(flwr_home)
    # Flower's simulation calls ray.init(), which reads RAY_ADDRESS; "local" keeps a cluster
    # left running on this machine (`ray start`) from silently taking the run.
    env["RAY_ADDRESS"] = ray_address
    superlink: subprocess.Popen[bytes] | None = None
    with _terminate_as_exit():
        try:
            for attempt in range(3):
                port = find_free_port()
                try:
                    superlink = start_superlink(port, flower_dir, env, simulation=True, cwd=app_dir)
                    break
                except LaunchError as err:
                    # Another process may take the port between our probe and the bind.
                    if "address already in use" not in str(err) or attempt == 2:
                        raise
            address = f"127.0.0.1:{port}"
            write_flwr_config(flwr_home, address)
            what = "resuming run folder" if resume_flag else "run folder"
            print(f"SuperLink (simulation) on {address}; {what} {run_dir}", flush=True)
            command = [
                flower_executable("flwr", env),
                "run",
                str(app_dir),
                CONNECTION_NAME,
                "--stream",
                "--run-config",
                f"output-dir={toml_string(str(run_dir))}",
                *resume_flag,
                *(arg for value in overrides for arg in ("--run-config", value)),
                "--federation-config",
                f"num-supernodes={nodes} client-resources-num-cpus={int(client_cpus)}",
            ]
            code = _stream(command, env, app_dir, flwr_log, echo=stream)
            logs = [flwr_log, flower_dir / "superlink.log"]
            if code != 0:
                raise RunFailedError(f"`flwr run` exited with code {code}" + format_tails(logs))
            doc = check_outcome(run_dir, logs)
        finally:
            if superlink is not None:
                stop_process(superlink)
    latest = root / LATEST_DIR
    shutil.rmtree(latest, ignore_errors=True)
    latest.mkdir(parents=True)
    for name in (RESULTS_FILE, PLOT_FILE, MODEL_FILE):
        if (run_dir / name).exists():
            shutil.copy2(run_dir / name, latest / name)
    for line in summary_lines(doc, time.perf_counter() - started):
        print(line)
    print(f"run folder: {run_dir}")
    print(latest / RESULTS_FILE, flush=True)
    return latest / RESULTS_FILE


#: SuperNodes from which ``ecofed run`` assigns partitions from the server by default.
LARGE_FEDERATION = 10_000


def large_federation_assignment(nodes: int, run_config: Sequence[str]) -> str | None:
    """The run-config override ``ecofed run`` adds for a simulation of ``nodes`` SuperNodes.

    From :data:`LARGE_FEDERATION` SuperNodes on, a simulation whose overrides do not name
    ``partition-assignment`` gets ``partition-assignment='server'``: virtual devices can load
    any partition, and the handshake with every node would make round 1 grow with their
    number. Smaller simulations (``make run``) keep the default, the handshake.
    """
    if nodes < LARGE_FEDERATION or any("partition-assignment" in item for item in run_config):
        return None
    return "partition-assignment='server'"


def device_settings(resolved: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """Run-config values for what the devices would otherwise take from this machine's
    environment (Ray workers on other nodes get their own): the Fashion-MNIST folder of
    ``ECOFED_FASHION_MNIST_DIR`` when the run reads Fashion-MNIST and names no ``data-dir``,
    and ``offline = false`` when ``HF_HUB_OFFLINE=0`` here (online on purpose)."""
    out = []
    folder = environ.get(defaults.FASHION_MNIST_DIR_ENV)
    if folder and resolved.get("dataset") == "fashion_mnist" and not resolved.get("data-dir"):
        out.append(f"data-dir={toml_string(str(Path(folder).expanduser().resolve()))}")
    if environ.get("HF_HUB_OFFLINE") == "0" and resolved.get("offline", True):
        out.append("offline=false")
    return out


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """Make SIGTERM raise ``SystemExit`` so that ``finally`` blocks stop our processes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
