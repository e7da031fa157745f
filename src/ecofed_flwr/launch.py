"""Run the EcoFed app end to end on a private, local Flower SuperLink (``ecofed run``).

``flwr run`` alone has three traps (see the project's Flower notes): it starts a shared
background SuperLink on port 39091 when none answers and leaves it running, that SuperLink
installs the app's dependencies from the network with ``uv sync``, and ``flwr run`` exits 0
even when the run fails. :func:`run_local_federation` avoids all three: it starts a SuperLink
of its own (simulation runtime, dependency installation disabled) on a free port of
:data:`PORT_RANGE`, points ``flwr`` at it through a private ``FLWR_HOME``, checks the outcome
in the run's ``results.json`` itself, and stops that SuperLink (and only what it spawned)
whatever happens.

The pieces (:func:`find_free_port`, :func:`write_flwr_config`, :func:`flower_env`,
:func:`start_superlink`, :func:`start_supernode`, :func:`stop_process`,
:func:`check_outcome`) are public so that the deployment tests can start a real SuperLink
with SuperNodes the same way, insecure or with TLS (:class:`TlsFiles`) and SuperNode
authentication.
"""

from __future__ import annotations

import collections
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from ecofed_flwr.results import MODEL_FILE, PLOT_FILE, RESULTS_FILE

__all__ = [
    "FLOWER_ENV",
    "PORT_RANGE",
    "LaunchError",
    "LaunchUsageError",
    "RunFailedError",
    "TlsFiles",
    "check_outcome",
    "find_free_port",
    "flower_env",
    "log_tail",
    "resolve_run_config",
    "run_local_federation",
    "start_superlink",
    "start_supernode",
    "stop_process",
    "keep_out_of_package",
    "write_flwr_config",
]

#: Ports this project's launcher and tests use; other SuperLinks on the machine keep Flower's
#: defaults (8000, 9091-9094, 39091-39093), so staying in this range avoids taking theirs.
PORT_RANGE = range(47000, 48000)

#: Environment for every Flower process we start: no telemetry, no update check, no network
#: look-ups, and no ``uv sync`` of the app's dependencies (torch would pull GBs of wheels).
FLOWER_ENV: dict[str, str] = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
}

#: Offline by default, unless the caller's environment says otherwise: ``hf:`` data sets and
#: hub weights need ``HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0 ecofed run ...``.
OFFLINE_DEFAULTS: dict[str, str] = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}

#: Warning filter added to ``PYTHONWARNINGS`` of every Flower process we start: ``ray.init``
#: (in ``flwr-simulation``) warns that Ray will stop hiding GPUs from actors with
#: ``num_gpus=0``. Silenced rather than answered with ``RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO=0``,
#: which would opt in to the new behaviour and let every ClientApp actor see every GPU.
RAY_ACCELERATOR_WARNING_FILTER = "ignore:Tip:FutureWarning:ray._private.worker"

#: Name of the SuperLink connection written to the private ``config.toml``.
CONNECTION_NAME = "ecofed"

#: Folder under the output root that always holds the last successful run's results.
LATEST_DIR = "latest"

#: File of a run folder that records how the launcher ran it (read by ``--resume``).
LAUNCH_FILE = "launch.json"

#: Simulated SuperNodes of a run unless told otherwise.
DEFAULT_SUPERNODES = 10

_READY_TIMEOUT_S = 60.0  # a SuperLink takes 2-7 s on a loaded 2-core machine
_STOP_TIMEOUT_S = 15.0
_TAIL_LINES = 40


class LaunchError(Exception):
    """The federation could not be run: a Flower process failed to start or the run failed."""


class RunFailedError(LaunchError):
    """``flwr run`` finished but the run did not complete (no completed ``results.json``)."""


class LaunchUsageError(ValueError):
    """What the user asked for cannot be run (bad run-config override, missing app)."""


# ------------------------------------------------------------------------------------- ports


def find_free_port(
    host: str = "127.0.0.1",
    ports: Sequence[int] = PORT_RANGE,
    exclude: Sequence[int] = (),
) -> int:
    """A port of ``ports`` that nothing listens on at ``host`` right now.

    Parameters
    ----------
    host : str
        Address to probe (the one the server will bind).
    ports : Sequence[int]
        Candidates; probed from a random offset so that concurrent launchers rarely pick
        the same port in the moment between this probe and the server's own bind.
    exclude : Sequence[int]
        Ports already promised to another process of the same launch.

    Returns
    -------
    int
        A port that could be bound.

    Raises
    ------
    LaunchError
        If every candidate is taken.
    """
    candidates = [p for p in ports if p not in set(exclude)]
    if not candidates:
        raise LaunchError("no candidate ports to choose from")
    start = random.randrange(len(candidates))
    for port in candidates[start:] + candidates[:start]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # No SO_REUSEADDR: a port still in TIME_WAIT counts as taken, which is the
            # conservative answer.
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise LaunchError(f"no free port in {ports[0]}-{ports[-1]} on {host}")


# ------------------------------------------------------------------------ config and environment


def write_flwr_config(
    flwr_home: Path,
    address: str,
    name: str = CONNECTION_NAME,
    root_certificates: Path | None = None,
) -> Path:
    """Write ``flwr_home/config.toml`` naming ``address`` as the default SuperLink.

    Keys as read by ``flwr/cli/flower_config.py`` in Flower 1.42: ``[superlink] default``
    and ``[superlink.<name>] address``, ``insecure`` or ``root-certificates``. An explicit
    address makes ``flwr`` treat the SuperLink as user-managed, so it never starts its own
    on port 39091.

    Parameters
    ----------
    flwr_home : Path
        The private Flower home folder (created if missing).
    address : str
        ``host:port`` of the SuperLink's HTTP API.
    name : str
        Connection name.
    root_certificates : Path, optional
        CA certificate that signed the SuperLink's TLS certificate. Without it the
        connection is insecure (plain HTTP). Written as an absolute path: ``flwr`` reads a
        relative one from its own working folder, not from ``flwr_home``.

    Returns
    -------
    Path
        The written file.
    """
    flwr_home.mkdir(parents=True, exist_ok=True)
    path = flwr_home / "config.toml"
    if root_certificates is None:
        security = "insecure = true"
    else:
        # A JSON string is a valid TOML basic string (same escapes).
        security = f"root-certificates = {json.dumps(str(root_certificates.resolve()))}"
    lines = [
        "[superlink]",
        f'default = "{name}"',
        "",
        f"[superlink.{name}]",
        f'address = "{address}"',
        security,
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def flower_env(flwr_home: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for Flower processes using ``flwr_home``.

    The SuperLink and SuperNodes spawn ``flower-superexec``, ``flwr-serverapp``,
    ``flwr-clientapp`` and ``flwr-simulation`` by name, so the folder of this interpreter's
    scripts goes first on ``PATH``: without it, a SuperLink started from an unactivated
    virtual environment dies with ``FileNotFoundError: 'flower-superexec'``. The user's
    ``PYTHONWARNINGS`` are kept and :data:`RAY_ACCELERATOR_WARNING_FILTER` is added.

    Parameters
    ----------
    flwr_home : Path
        Value for ``FLWR_HOME`` (config, installed FABs).
    base : Mapping[str, str], optional
        Starting environment (default: ``os.environ``).

    Returns
    -------
    dict[str, str]
        The environment.
    """
    env = dict(os.environ if base is None else base)
    env.update(FLOWER_ENV)
    for key, value in OFFLINE_DEFAULTS.items():
        env.setdefault(key, value)
    env["FLWR_HOME"] = str(flwr_home)
    warning_filters = [f for f in env.get("PYTHONWARNINGS", "").split(",") if f]
    if RAY_ACCELERATOR_WARNING_FILTER not in warning_filters:
        # Last, so it takes precedence over a broader filter of the user's (e.g. `error`).
        warning_filters.append(RAY_ACCELERATOR_WARNING_FILTER)
    env["PYTHONWARNINGS"] = ",".join(warning_filters)
    bin_dir = str(Path(sys.executable).parent)  # not resolved: a venv's python is a symlink
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")]).rstrip(os.pathsep)
    return env


def flower_executable(name: str, env: Mapping[str, str]) -> str:
    """Full path of the Flower command ``name`` on ``env``'s ``PATH``.

    Raises
    ------
    LaunchError
        If it is not installed.
    """
    found = shutil.which(name, path=env.get("PATH"))
    if found is None:
        raise LaunchError(f"`{name}` not found on PATH; is flwr installed in this environment?")
    return found


# ---------------------------------------------------------------------------------- processes


def log_tail(path: Path, lines: int = _TAIL_LINES) -> str:
    """The last ``lines`` lines of the text file ``path`` ('' if it does not exist)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return "".join(collections.deque(f, maxlen=lines))
    except FileNotFoundError:
        return ""


@dataclass(frozen=True)
class _ProcInfo:
    ppid: int
    pgrp: int
    start_time: int  # clock ticks since boot: tells a process from a later one with its PID
    state: str


def _proc_table() -> dict[int, _ProcInfo]:
    """Every process on the machine, from ``/proc`` (Linux)."""
    table: dict[int, _ProcInfo] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended while we were looking
        # The command name may contain spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        table[int(entry.name)] = _ProcInfo(
            ppid=int(fields[1]), pgrp=int(fields[2]), start_time=int(fields[19]), state=fields[0]
        )
    return table


class _Spawned:
    """The processes ``root`` spawned, remembered across snapshots so that orphans are kept.

    Flower's helpers (``flower-superexec``, ``flwr-serverapp``, ``flwr-simulation``) start
    new sessions, and Ray's agents outlive their parent: once a parent is gone, its children
    are re-parented to init and no longer appear below ``root``. So every snapshot adds the
    descendants of ``root`` and of every remembered process, and every member of a process
    group led by one of them (such a group was created by our process, so all in it are
    ours). Nothing else is ever included.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.members: dict[int, int] = {}  # pid -> start time
        self.groups: set[int] = set()

    def refresh(self) -> None:
        table = _proc_table()
        children: dict[int, list[int]] = collections.defaultdict(list)
        for pid, info in table.items():
            children[info.ppid].append(pid)
        todo = [self.root, *(p for p in self.members if self._same(table, p))]
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in self.members:
                    self.members[child] = table[child].start_time
                    todo.append(child)
        leaders = {self.root, *self.members}
        for pid in list(self.members):
            if pid in table and table[pid].pgrp in leaders:
                self.groups.add(table[pid].pgrp)
        for pid, info in table.items():
            if info.pgrp in self.groups and pid != self.root and pid not in self.members:
                self.members[pid] = info.start_time

    def _same(self, table: dict[int, _ProcInfo], pid: int) -> bool:
        info = table.get(pid)
        return info is not None and info.start_time == self.members[pid]

    def running(self) -> list[int]:
        """Remembered processes still running (zombies are finished: their parent reaps)."""
        table = _proc_table()
        return [p for p in self.members if self._same(table, p) and table[p].state != "Z"]


def _signal_all(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop_process(proc: subprocess.Popen[Any], timeout: float = _STOP_TIMEOUT_S) -> None:
    """Stop ``proc`` and whatever it spawned; nothing else is touched.

    SIGTERM to ``proc``, SIGKILL after ``timeout`` seconds. Flower's helpers watch their
    parent and exit by themselves about a second later; those still running ``timeout``
    seconds after that (Ray's agents ignore SIGTERM for a while) get SIGTERM, then SIGKILL,
    by PID. Only processes found below ``proc`` (see :class:`_Spawned`) are signalled.

    Parameters
    ----------
    proc : subprocess.Popen
        A process this launcher started.
    timeout : float
        Seconds to wait after each SIGTERM.
    """
    spawned = _Spawned(proc.pid) if Path("/proc").is_dir() else None
    if spawned is not None:
        spawned.refresh()
    if proc.poll() is None:
        proc.terminate()
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if spawned is not None:
                spawned.refresh()  # it may still spawn while shutting down
            time.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if spawned is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spawned.refresh()
        if not spawned.running():
            return
        time.sleep(0.2)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        spawned.refresh()
        _signal_all(spawned.running(), sig)
        deadline = time.monotonic() + min(timeout, 5.0)
        while spawned.running() and time.monotonic() < deadline:
            time.sleep(0.2)


def _answers(url: str, context: ssl.SSLContext | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0, context=context) as response:
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_until_ready(
    proc: subprocess.Popen[Any],
    url: str,
    timeout: float,
    what: str,
    logs: Sequence[Path] = (),
    ca_certfile: Path | None = None,
) -> None:
    """Wait until ``url`` answers 2xx while ``proc`` is alive.

    Parameters
    ----------
    proc : subprocess.Popen
        The process that should answer.
    url : str
        Its health endpoint, ``http://`` or ``https://``.
    timeout : float
        Seconds to wait.
    what : str
        Name of the process in error messages.
    logs : Sequence[Path]
        Logs whose tails go into the error message.
    ca_certfile : Path, optional
        CA certificate to verify an ``https://`` server with (default: the system's).

    Raises
    ------
    LaunchError
        If ``proc`` exits or ``timeout`` seconds pass first; the message carries the tail of
        ``logs``.
    """
    context = None if ca_certfile is None else ssl.create_default_context(cafile=ca_certfile)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LaunchError(
                f"{what} exited with code {proc.returncode} before answering on {url}"
                + _format_tails(logs)
            )
        if _answers(url, context):
            return
        time.sleep(0.25)
    raise LaunchError(
        f"{what} did not answer on {url} within {timeout:.0f} s" + _format_tails(logs)
    )


def _format_tails(logs: Sequence[Path]) -> str:
    parts = []
    for path in logs:
        tail = log_tail(path).rstrip()
        if tail:
            parts.append(f"\n--- last lines of {path} ---\n{tail}")
    return "".join(parts)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a SuperLink that serves HTTPS.

    Flower 1.42 traps (checked by hand): the server certificate must cover
    ``IP:127.0.0.1`` as well as the names devices use, because the SuperLink's own
    ``flower-superexec`` connects to 127.0.0.1 (without it the ServerApp never starts and
    the run stays ``pending`` with no error); ``certfile`` is the certificate alone, not a
    chain.

    Parameters
    ----------
    ca_certfile : Path
        Certificate of the CA that signed ``certfile``; SuperNodes and ``flwr`` get it as
        their root certificate.
    certfile : Path
        The SuperLink's certificate.
    keyfile : Path
        The SuperLink's private key (unencrypted).
    """

    ca_certfile: Path
    certfile: Path
    keyfile: Path


def start_superlink(
    port: int,
    state_dir: Path,
    env: Mapping[str, str],
    *,
    simulation: bool,
    cwd: Path | None = None,
    ready_timeout: float = _READY_TIMEOUT_S,
    tls: TlsFiles | None = None,
    supernode_auth: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``flower-superlink`` on ``127.0.0.1:port`` and wait until it answers.

    In Flower 1.42 one HTTP port serves the Control API (``flwr``), the runtime API
    (ServerApp) and the Fleet API (SuperNodes); the gRPC APIs are off unless
    ``FLWR_INTERNAL_GRPC_*`` variables are set, so one port is all it needs. Its state,
    including registered SuperNodes, lives in ``state_dir/state.db``.

    Parameters
    ----------
    port : int
        Port of the HTTP API.
    state_dir : Path
        Gets ``state.db``, ``superlink.log`` (Flower's log) and ``superlink-console.log``
        (stdout/stderr, where uvicorn reports bind errors).
    env : Mapping[str, str]
        Environment, see :func:`flower_env`.
    simulation : bool
        Simulation runtime (``flwr run`` starts simulated SuperNodes) or deployment
        (real ``flower-supernode`` processes connect to the port).
    cwd : Path, optional
        Working folder of the SuperLink and so of the ServerApp it spawns.
    ready_timeout : float
        Seconds to wait for the health endpoint.
    tls : TlsFiles, optional
        Serve HTTPS with these files (``--ssl-ca-certfile --ssl-certfile --ssl-keyfile``);
        default: plain HTTP (``--insecure``).
    supernode_auth : bool
        Admit only SuperNodes whose public key was registered with ``flwr supernode
        register`` (``--enable-supernode-auth``); needs ``tls``.

    Returns
    -------
    subprocess.Popen
        The running SuperLink; stop it with :func:`stop_process`.

    Raises
    ------
    LaunchUsageError
        If ``supernode_auth`` is asked for without ``tls`` (nothing was started).
    LaunchError
        If it exits or does not answer in time (it is stopped first).
    """
    if supernode_auth and tls is None:
        raise LaunchUsageError("SuperNode authentication needs TLS: pass tls=TlsFiles(...)")
    if tls is None:
        security = ["--insecure"]
    else:
        security = [
            "--ssl-ca-certfile",
            str(tls.ca_certfile),
            "--ssl-certfile",
            str(tls.certfile),
            "--ssl-keyfile",
            str(tls.keyfile),
        ]
    if supernode_auth:
        security.append("--enable-supernode-auth")
    state_dir.mkdir(parents=True, exist_ok=True)
    command = [
        flower_executable("flower-superlink", env),
        *security,
        "--isolation",
        "subprocess",
        "--disable-runtime-dependency-installation",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--database",
        str(state_dir / "state.db"),
        "--log-file",
        str(state_dir / "superlink.log"),
    ]
    if simulation:
        command.append("--simulation")
    console = state_dir / "superlink-console.log"
    with console.open("ab") as out:
        # A session of its own: Ctrl-C in the terminal then reaches only the launcher, which
        # stops the SuperLink while its helpers can still be found below it. A SuperLink hit
        # by the terminal's SIGINT directly dies first and orphans Ray's agents.
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(env), cwd=cwd, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until_ready(
            proc,
            f"{'http' if tls is None else 'https'}://127.0.0.1:{port}/health",
            ready_timeout,
            "flower-superlink",
            [console, state_dir / "superlink.log"],
            ca_certfile=None if tls is None else tls.ca_certfile,
        )
    except BaseException:
        stop_process(proc)
        raise
    return proc


def start_supernode(
    superlink: str,
    port: int,
    node_config: str,
    env: Mapping[str, str],
    log: Path,
    *,
    root_certificates: Path | None = None,
    auth_private_key: Path | None = None,
    wait: bool = True,
    ready_timeout: float = _READY_TIMEOUT_S,
) -> subprocess.Popen[bytes]:
    """Start ``flower-supernode`` connecting to ``superlink``; by default wait until it answers.

    Parameters
    ----------
    superlink : str
        ``host:port`` of the SuperLink's Fleet API.
    port : int
        Port of the node's own runtime API on 127.0.0.1 (distinct per node on one host).
    node_config : str
        ``--node-config`` value, e.g. ``"partition-id=0 num-partitions=2"``.
    env : Mapping[str, str]
        Environment, see :func:`flower_env` (a ``FLWR_HOME`` per node, as on devices).
    log : Path
        Gets the node's stdout and stderr; its folder is the node's working folder.
    root_certificates : Path, optional
        CA certificate to verify a TLS SuperLink with; default: connect insecurely
        (``--insecure``; such a node retries forever, silently, against a TLS SuperLink).
    auth_private_key : Path, optional
        The node's private key for SuperNode authentication: OpenSSH format, ECDSA on a
        NIST curve (a PEM key fails with a misleading message). Its public key must be
        registered with ``flwr supernode register``, or the node exits with code 305.
    wait : bool
        Wait until the runtime API answers. A node the SuperLink refuses may exit before or
        after that; pass ``False`` to watch its exit instead.
    ready_timeout : float
        Seconds to wait when ``wait``.

    Returns
    -------
    subprocess.Popen
        The running SuperNode; stop it with :func:`stop_process`.

    Raises
    ------
    LaunchError
        If it exits or does not answer in time when ``wait`` (it is stopped first).
    """
    if root_certificates is None:
        security = ["--insecure"]
    else:
        security = ["--root-certificates", str(root_certificates)]
    if auth_private_key is not None:
        security += ["--auth-supernode-private-key", str(auth_private_key)]
    command = [
        flower_executable("flower-supernode", env),
        *security,
        "--superlink",
        superlink,
        "--port",
        str(port),
        "--node-config",
        node_config,
    ]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(env), cwd=log.parent, start_new_session=True,
        )  # fmt: skip
    if wait:
        try:
            wait_until_ready(
                proc, f"http://127.0.0.1:{port}/health", ready_timeout, "flower-supernode", [log]
            )
        except BaseException:
            stop_process(proc)
            raise
    return proc


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


# --------------------------------------------------------------------------------- run config


def _app_section(app_dir: Path) -> dict[str, Any]:
    pyproject = app_dir / "pyproject.toml"
    try:
        with pyproject.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise LaunchUsageError(f"no pyproject.toml in {app_dir}: not a Flower app") from None
    except tomllib.TOMLDecodeError as err:
        raise LaunchUsageError(f"{pyproject}: {err}") from err
    app = data.get("tool", {}).get("flwr", {}).get("app")
    if not isinstance(app, dict):
        raise LaunchUsageError(f"{pyproject} has no [tool.flwr.app] section: not a Flower app")
    return app


def resolve_run_config(app_dir: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """The run config that ``flwr run`` will use: the app's defaults with ``overrides``.

    Checked before anything starts, so that a typo is a usage error and not a failed run
    found minutes later (the ServerApp would only fail once it reads the config).

    Parameters
    ----------
    app_dir : Path
        The Flower app (folder of ``pyproject.toml``).
    overrides : Sequence[str]
        ``--run-config`` values in ``flwr``'s syntax (``"k1=1 k2='text'"``) or one TOML file.

    Returns
    -------
    dict[str, Any]
        Merged flat run config.

    Raises
    ------
    LaunchUsageError
        On a malformed override, an unknown key, ``output-dir`` or ``resume`` (the launcher
        owns them) or, for the EcoFed app, a value :class:`~ecofed_flwr.config.EcoFedConfig`
        rejects.
    """
    import click
    from flwr.common.config import flatten_dict, parse_config_args

    if any(value.strip().endswith(".toml") for value in overrides):
        # flwr accepts a TOML file only as the sole --run-config, and the launcher always
        # adds output-dir.
        raise LaunchUsageError("--run-config: pass key=value pairs, not a TOML file")
    app = _app_section(app_dir)
    defaults = flatten_dict(app.get("config", {}))
    try:
        parsed = parse_config_args(list(overrides)) if overrides else {}
    except (click.ClickException, ValueError, OSError) as err:
        message = err.format_message() if isinstance(err, click.ClickException) else str(err)
        raise LaunchUsageError(f"--run-config: {message}") from err
    unknown = sorted(set(parsed) - set(defaults))
    if unknown:
        raise LaunchUsageError(f"--run-config: unknown keys {unknown}; known: {sorted(defaults)}")
    if "output-dir" in parsed:
        raise LaunchUsageError(
            "--run-config: output-dir is set by the launcher; use --output-root instead"
        )
    if "resume" in parsed:
        raise LaunchUsageError("--run-config: resume is set by the launcher; use --resume RUN_DIR")
    merged = {**defaults, **parsed}
    components = app.get("components", {})
    if str(components.get("serverapp", "")).startswith("ecofed_flwr."):
        from ecofed_flwr.config import ConfigError, EcoFedConfig

        try:
            EcoFedConfig.from_mapping(merged)
        except ConfigError as err:
            raise LaunchUsageError(f"--run-config: {err}") from err
    return merged


def _toml_string(text: str) -> str:
    # flwr splits --run-config on whitespace unless the value is quoted, and its quoted form
    # cannot contain its own quote character.
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return json.dumps(text)
    raise LaunchUsageError(f"path {text!r} contains both quote characters")


def _toml_value(value: Any) -> str:
    """``value`` in the TOML syntax of ``flwr run --run-config`` (bool, number or string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    raise LaunchUsageError(f"cannot pass {value!r} as a run-config value")


# ----------------------------------------------------------------------------------- outcome


def check_outcome(run_dir: Path, logs: Sequence[Path] = ()) -> dict[str, Any]:
    """The results of the run in ``run_dir``, if it completed.

    ``flwr run`` exits 0 whatever happens to the run, so the outcome is read from the
    results file the ServerApp writes: ``"status": "completed"`` only after the last round.

    Parameters
    ----------
    run_dir : Path
        The run's ``output-dir``.
    logs : Sequence[Path]
        Logs whose tails go into the error message.

    Returns
    -------
    dict[str, Any]
        The results document.

    Raises
    ------
    RunFailedError
        If ``results.json`` is missing, unreadable or not completed.
    """
    path = run_dir / RESULTS_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFailedError(
            f"the run wrote no {path} (it failed before its first round)" + _format_tails(logs)
        ) from None
    except (OSError, json.JSONDecodeError) as err:
        raise RunFailedError(f"cannot read {path}: {err}" + _format_tails(logs)) from err
    status = doc.get("status") if isinstance(doc, dict) else None
    if status != "completed":
        rounds = len(doc.get("rounds", [])) if isinstance(doc, dict) else 0
        failure = doc.get("failure") if isinstance(doc, dict) else None
        raise RunFailedError(
            f"the run did not complete: {path} has status {status!r} after {rounds} round(s)"
            + (f": {failure}" if failure else "")
            + _format_tails(logs)
        )
    return dict(doc)


def summary_lines(doc: Mapping[str, Any], wall_seconds: float) -> list[str]:
    """A few human lines about a completed run."""
    accuracy = doc.get("final_accuracy")
    acc_text = f"{accuracy:.4f}" if isinstance(accuracy, int | float) else "n/a"
    server_s = doc.get("wall_seconds")
    server_text = f" (ServerApp {server_s:.1f} s)" if isinstance(server_s, int | float) else ""
    return [
        f"EcoFed run completed: {len(doc.get('rounds', []))} round(s), final accuracy {acc_text}",
        f"bytes up {int(doc.get('total_bytes_up', 0)):,} "
        f"(activations {int(doc.get('total_bytes_up_activations', 0)):,}), "
        f"bytes down {int(doc.get('total_bytes_down', 0)):,}",
        f"wall {wall_seconds:.1f} s{server_text}",
    ]


# ---------------------------------------------------------------------------------------- run


def keep_out_of_package(app_dir: Path, output_root: Path) -> bool:
    """Make ``flwr run`` leave ``output_root`` out of the app's package; True if it had to.

    ``flwr run`` packages the app folder less what its ``.gitignore`` excludes. An output
    root inside the app folder that the ``.gitignore`` does not exclude would carry every
    earlier run (logs, checkpoints, Flower's home, copies of the app) into the next run's
    package, until Flower refuses it (path depth or size). Such a root is added to the
    app's ``.gitignore``, and the user is told.
    """
    try:
        relative = output_root.resolve().relative_to(app_dir.resolve())
    except ValueError:
        return False  # outside the app folder: never packaged
    if relative == Path("."):
        raise LaunchUsageError(
            f"the output root {output_root} is the app folder itself: choose a folder inside "
            "it (e.g. outputs/) or outside it"
        )
    gitignore = app_dir / ".gitignore"
    text = gitignore.read_text(encoding="utf-8") if gitignore.is_file() else ""
    probe = f"{relative.as_posix()}/run/results.json"
    if not _packaged(text, probe):
        return False
    line = f"/{relative.as_posix()}/"
    with gitignore.open("a", encoding="utf-8") as handle:
        handle.write(("" if not text or text.endswith("\n") else "\n") + line + "\n")
    print(
        f"note: added {line} to {gitignore}: flwr run packages the app folder, and run "
        "outputs inside it must stay out of the package",
        flush=True,
    )
    return True


def _packaged(gitignore: str, path: str) -> bool:
    """Whether Flower's packaging rules keep ``path`` with this ``.gitignore``."""
    try:
        from flwr.cli.utils import filter_paths_for_publish
    except ImportError:  # another Flower: judge by the .gitignore alone
        import pathspec

        spec = pathspec.PathSpec.from_lines("gitwildmatch", gitignore.splitlines())
        return not spec.match_file(path)
    files: dict[str, Path | bytes] = {".gitignore": gitignore.encode(), path: b"{}"}
    try:
        return path in filter_paths_for_publish(files)
    except Exception:  # e.g. a path deeper than Flower allows: it must be kept out anyway
        return True


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
) -> Path:
    """Run the Flower app in ``app_dir`` on a private simulation SuperLink; check the outcome.

    Starts ``flower-superlink --simulation`` on a free port of :data:`PORT_RANGE` with a
    private ``FLWR_HOME``, runs ``flwr run <app_dir> --stream`` against it with
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
        Simulated SuperNodes (one partition each); default 10, or the resumed run's.
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
    if resume is None:
        resolve_run_config(app_dir, run_config)
        nodes = DEFAULT_SUPERNODES if num_supernodes is None else num_supernodes
        overrides = list(run_config)
        root = (output_root or app_dir / "outputs").expanduser().resolve()
    else:
        resume = resume.expanduser().resolve()
        nodes, overrides = _resume_settings(app_dir, resume, run_config, num_supernodes)
        root = (output_root or resume.parent).expanduser().resolve()
    _toml_string(str(root))  # a path flwr cannot take is a usage error, found before starting
    keep_out_of_package(app_dir, root)
    started = time.perf_counter()
    if resume is None:
        run_dir = _new_run_dir(root)
        launch = {"app_dir": str(app_dir), "num_supernodes": nodes, "client_cpus": client_cpus}
        (run_dir / LAUNCH_FILE).write_text(json.dumps(launch, indent=2) + "\n", encoding="utf-8")
        flower_dir, flwr_log, resume_flag = run_dir / "flower", run_dir / "flwr-run.log", []
    else:
        _toml_string(str(resume))
        run_dir = resume
        # The crashed run's SuperLink folder stays for its logs; the resume gets its own.
        flower_dir, flwr_log = run_dir / "flower-resume", run_dir / "flwr-run-resume.log"
        shutil.rmtree(flower_dir, ignore_errors=True)
        resume_flag = ["--run-config", "resume=true"]
    # A FLWR_HOME per run: concurrent launches never read each other's config.toml.
    flwr_home = flower_dir / "flwr-home"
    env = flower_env(flwr_home)
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
                f"output-dir={_toml_string(str(run_dir))}",
                *resume_flag,
                *(arg for value in overrides for arg in ("--run-config", value)),
                "--federation-config",
                f"num-supernodes={nodes} client-resources-num-cpus={int(client_cpus)}",
            ]
            code = _stream(command, env, app_dir, flwr_log, echo=stream)
            logs = [flwr_log, flower_dir / "superlink.log"]
            if code != 0:
                raise RunFailedError(f"`flwr run` exited with code {code}" + _format_tails(logs))
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


def _resume_settings(
    app_dir: Path, run_dir: Path, run_config: Sequence[str], num_supernodes: int | None
) -> tuple[int, list[str]]:
    """The SuperNodes and ``--run-config`` values that resume the run in ``run_dir``.

    Raises
    ------
    LaunchUsageError
        If ``run_dir`` holds no checkpoint, or the arguments change what the run computes.
    """
    from ecofed_flwr.checkpoint import Checkpointer, CheckpointError
    from ecofed_flwr.config import resume_differences

    try:
        last_round, extra = Checkpointer(run_dir).peek()
    except CheckpointError as err:
        raise LaunchUsageError(f"--resume {run_dir}: {err}") from err
    saved = extra.get("config")
    if not isinstance(saved, dict):
        raise LaunchUsageError(f"--resume {run_dir}: the checkpoint holds no run settings")
    try:
        launch = json.loads((run_dir / LAUNCH_FILE).read_text(encoding="utf-8"))
        nodes = launch["num_supernodes"]
    except (OSError, ValueError, TypeError, KeyError):
        nodes = None  # a run not started by this launcher (e.g. plain `flwr run`)
    if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1:
        if num_supernodes is None:
            raise LaunchUsageError(
                f"--resume {run_dir}: no {LAUNCH_FILE} says how many SuperNodes the run had; "
                "pass --num-supernodes (the same as the run's: partitions depend on it)"
            )
        nodes = num_supernodes
    elif num_supernodes is not None and num_supernodes != nodes:
        raise LaunchUsageError(
            f"--num-supernodes: the run in {run_dir} had {nodes} (partitions depend on it), "
            f"got {num_supernodes}"
        )
    pairs = [f"{k}={_toml_value(v)}" for k, v in saved.items() if k not in ("output-dir", "resume")]
    overrides = [*pairs, *run_config]
    changed = resume_differences(saved, resolve_run_config(app_dir, overrides))
    if changed:
        raise LaunchUsageError(
            "--run-config: a resumed run keeps the settings that decide its results; "
            "changed: " + "; ".join(changed)
        )
    print(f"Resuming {run_dir} after round {last_round} of its checkpoint", flush=True)
    return nodes, overrides
