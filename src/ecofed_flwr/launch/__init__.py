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

One module per responsibility:

- :mod:`~ecofed_flwr.launch.errors`: the exceptions;
- :mod:`~ecofed_flwr.launch.flower`: ports, the private Flower home, the processes' environment;
- :mod:`~ecofed_flwr.launch.processes`: what a started process spawned, stopped through psutil;
- :mod:`~ecofed_flwr.launch.logs`: log tails for error messages;
- :mod:`~ecofed_flwr.launch.services`: start a SuperLink or a SuperNode, wait until it answers;
- :mod:`~ecofed_flwr.launch.run_config`: the run config checked before starting, resume settings;
- :mod:`~ecofed_flwr.launch.outcome`: a run's outcome and summary, the app's package;
- :mod:`~ecofed_flwr.launch.federation`: :func:`run_local_federation`, which uses them all.
"""

from __future__ import annotations

from ecofed_flwr.launch.errors import LaunchError, LaunchUsageError, RunFailedError
from ecofed_flwr.launch.federation import LATEST_DIR, run_local_federation
from ecofed_flwr.launch.flower import (
    CONNECTION_NAME,
    FLOWER_ENV,
    OFFLINE_DEFAULTS,
    PORT_RANGE,
    RAY_ACCELERATOR_WARNING_FILTER,
    find_free_port,
    flower_env,
    flower_executable,
    write_flwr_config,
)
from ecofed_flwr.launch.logs import log_tail
from ecofed_flwr.launch.outcome import check_outcome, keep_out_of_package, summary_lines
from ecofed_flwr.launch.processes import Spawned, descendants, stop_process
from ecofed_flwr.launch.run_config import LAUNCH_FILE, resolve_run_config
from ecofed_flwr.launch.services import TlsFiles, start_superlink, start_supernode, wait_until_ready

__all__ = [
    "CONNECTION_NAME",
    "FLOWER_ENV",
    "LATEST_DIR",
    "LAUNCH_FILE",
    "OFFLINE_DEFAULTS",
    "PORT_RANGE",
    "RAY_ACCELERATOR_WARNING_FILTER",
    "LaunchError",
    "LaunchUsageError",
    "RunFailedError",
    "Spawned",
    "TlsFiles",
    "check_outcome",
    "descendants",
    "find_free_port",
    "flower_env",
    "flower_executable",
    "keep_out_of_package",
    "log_tail",
    "resolve_run_config",
    "run_local_federation",
    "start_superlink",
    "start_supernode",
    "stop_process",
    "summary_lines",
    "wait_until_ready",
    "write_flwr_config",
]
