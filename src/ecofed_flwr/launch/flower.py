"""Flower's side of a launch: ports, the private Flower home and the processes' environment."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ecofed_flwr.launch.errors import LaunchError

__all__ = [
    "CONNECTION_NAME",
    "FLOWER_ENV",
    "OFFLINE_DEFAULTS",
    "PORT_RANGE",
    "RAY_ACCELERATOR_WARNING_FILTER",
    "find_free_port",
    "flower_env",
    "flower_executable",
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
