"""Flower's services: start a SuperLink or a SuperNode and wait until it answers."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecofed_flwr.launch.errors import LaunchError, LaunchUsageError
from ecofed_flwr.launch.flower import flower_executable
from ecofed_flwr.launch.logs import format_tails
from ecofed_flwr.launch.processes import stop_process

__all__ = ["READY_TIMEOUT_S", "TlsFiles", "start_superlink", "start_supernode", "wait_until_ready"]

#: Seconds to wait for a service's health endpoint.
READY_TIMEOUT_S = 60.0  # a SuperLink takes 2-7 s on a loaded 2-core machine


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
                + format_tails(logs)
            )
        if _answers(url, context):
            return
        time.sleep(0.25)
    raise LaunchError(f"{what} did not answer on {url} within {timeout:.0f} s" + format_tails(logs))


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
    ready_timeout: float = READY_TIMEOUT_S,
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
    ready_timeout: float = READY_TIMEOUT_S,
    poll_seconds: float | None = None,
    warm: bool = False,
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
    poll_seconds : float, optional
        Run it through ``ecofed supernode`` (:mod:`ecofed_flwr.launch.supernode`) with its
        waits between polls capped at this many seconds (Flower's: 3 s idle, 1 s SuperExec).
    warm : bool (default: False)
        Through ``ecofed supernode --warm``: Flower's process isolation, with a warm executor
        (:mod:`ecofed_flwr.device_executor`) running every ClientApp call in one process that
        keeps torch, the split and the data loaded.

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
    supernode = [flower_executable("flower-supernode", env)]
    if poll_seconds is not None or warm:
        # The Python of the environment that has flower-supernode (a virtualenv's bin/).
        python = Path(supernode[0]).with_name("python")
        supernode = [str(python) if python.exists() else sys.executable]
        supernode += ["-m", "ecofed_flwr.launch.supernode"]
        supernode += ["--poll-seconds", str(poll_seconds if poll_seconds is not None else 3.0)]
        supernode += ["--warm"] if warm else []
    command = [
        *supernode,
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
