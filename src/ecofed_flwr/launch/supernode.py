"""``ecofed supernode``: Flower's SuperNode for a device that answers in about a second.

Where one real-device exchange's seconds go with Flower 1.42 (``benchmarks/exchange.py``):

- an idle SuperNode asks the SuperLink for work every 3 s (``time.sleep(3)`` in
  ``flwr.supernode.start_client_internal``, no option), and waits for the ClientApp's reply
  in 0.5 s steps;
- its SuperExec looks for new tasks every 1 s (``FLWR_SUPEREXEC_TASK_POLL_INTERVAL``);
- each message gets a new ``flwr-clientapp`` process: Flower's runtime imports (about 1 s),
  the FAB installed again, and for EcoFed torch imported and the split built, before a few
  hundredths of a second of compute; that process then waits 1 s for any message part the
  SuperNode is still receiving.

This wrapper runs the same SuperNode (same arguments, in this process) with those sleeps
capped at ``--poll-seconds`` (the cap replaces the ``time`` module that Flower's SuperNode
module sees, nothing else). With ``--warm`` the node runs in Flower's process isolation and
a warm executor (:mod:`ecofed_flwr.device_executor`, a child process) takes its tasks and runs
every ClientApp call in one process that keeps torch, the split and the data loaded.
Polling faster costs one small request to the SuperLink per node and interval: fine for a
handful of devices, not for thousands.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = [
    "PatchPointError",
    "SupernodeUsageError",
    "cap_supernode_sleeps",
    "check_poll_seconds",
    "main",
    "start_executor",
    "warm_runtime_address",
]

#: Flower's SuperExec task-poll variable (seconds, 0.01-60).
SUPEREXEC_POLL_ENV = "FLWR_SUPEREXEC_TASK_POLL_INTERVAL"
#: Where Flower 1.42's SuperNode sleeps between polls (checked: a Flower upgrade that moves it
#: fails loudly instead of silently polling every 3 s).
PATCHED_MODULE = "flwr.supernode.start_client_internal"


class SupernodeUsageError(ValueError):
    """``ecofed supernode`` or ``ecofed device-executor`` cannot run with these options."""


class PatchPointError(SupernodeUsageError):
    """This Flower's SuperNode does not sleep where ``ecofed supernode`` shortens it."""


class _CappedTime:
    """The ``time`` module with ``sleep`` capped at ``cap`` seconds."""

    def __init__(self, cap: float) -> None:
        self.cap = cap

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, self.cap))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def cap_supernode_sleeps(poll_seconds: float) -> ModuleType:
    """Cap the waits of Flower's SuperNode loop at ``poll_seconds``; return the patched module.

    Raises
    ------
    SupernodeUsageError
        If ``poll_seconds`` is not in [0.01, 3].
    PatchPointError
        If the installed Flower's SuperNode no longer sleeps through its module's ``time``.
    """
    check_poll_seconds(poll_seconds)
    import importlib
    import inspect

    module = importlib.import_module(PATCHED_MODULE)
    source = inspect.getsource(module)
    if getattr(module, "time", None) is not time or "time.sleep(3)" not in source:
        raise PatchPointError(
            f"{PATCHED_MODULE} does not sleep with time.sleep(3) in this Flower; "
            "run flower-supernode directly (this wrapper was written for Flower 1.42)"
        )
    module.time = _CappedTime(poll_seconds)  # type: ignore[attr-defined]
    return module


def check_poll_seconds(seconds: float) -> float:
    """``seconds`` if it is a poll interval these commands accept ([0.01, 3])."""
    if not 0.01 <= seconds <= 3.0:
        raise SupernodeUsageError(f"--poll-seconds must be within [0.01, 3], got {seconds}")
    return seconds


def warm_runtime_address(flower_args: list[str]) -> str:
    """Where the warm executor reaches the SuperNode's runtime API, read with Flower's own
    ``flower-supernode`` parser (``--port``, ``--host``; ``--port=N`` too).

    Raises
    ------
    SupernodeUsageError
        For options the warm executor cannot serve: another ``--isolation``, a TLS runtime
        API, SuperExec authentication, runtime dependency installation.
    """
    from flwr.supernode.cli.flower_supernode import _parse_args_run_supernode

    known, _ = _parse_args_run_supernode().parse_known_args(flower_args)
    refused = {
        "--isolation": any(a == "--isolation" or a.startswith("--isolation=") for a in flower_args),
        "--ssl-certfile/--ssl-keyfile": bool(known.ssl_certfile or known.ssl_keyfile),
        "--superexec-auth-secret-file": bool(known.superexec_auth_secret_file),
        "--allow-runtime-dependency-installation": bool(known.runtime_dependency_install),
    }
    clash = [name for name, given in refused.items() if given]
    if clash:
        raise SupernodeUsageError(
            "--warm runs the node with --isolation process and a plain loopback runtime API "
            f"served by its own executor; drop {', '.join(clash)}"
        )
    host = str(known.host)
    if host in ("0.0.0.0", "localhost"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{int(known.port)}"


def start_executor(
    runtime_api_address: str, poll_seconds: float, python: str = sys.executable
) -> subprocess.Popen[bytes]:
    """Start :mod:`ecofed_flwr.device_executor` for the node at ``runtime_api_address``; it
    stops by itself when this process ends."""
    return subprocess.Popen(
        [python, "-m", "ecofed_flwr.device_executor", "--runtime-api-address",
         runtime_api_address, "--poll-seconds", str(poll_seconds),
         "--parent-pid", str(os.getpid())],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


SUPERNODE_DESCRIPTION = (
    "flower-supernode with shorter polls and, with --warm, a warm ClientApp executor. Every "
    "other argument goes to flower-supernode unchanged."
)
EXECUTOR_DESCRIPTION = (
    "Run a SuperNode's ClientApp tasks in this one warm process (torch, the split and the "
    "data stay loaded); start the SuperNode with --isolation process (ecofed supernode --warm "
    "does both)."
)


def add_supernode_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``ecofed supernode`` takes itself (the rest go to flower-supernode)."""
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=0.1,
        help="cap on the SuperNode's and its task executor's waits between polls (default "
        "0.1; Flower's: 3 and 1)",
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="run every ClientApp call in one warm process (torch, split and data stay "
        "loaded between messages); the node runs in Flower's process isolation",
    )


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``ecofed device-executor``."""
    parser.add_argument(
        "--runtime-api-address", required=True, help="the SuperNode's runtime API, host:port"
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=0.05,
        help="wait when the node has no task, within [0.01, 3] (default 0.05)",
    )
    parser.add_argument("--parent-pid", type=int, help="stop when this process ends")
    # A task the process it replaced had acquired (see device_executor.NewAppError).
    parser.add_argument("--first-token", help=argparse.SUPPRESS)


def _parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="ecofed supernode", description=SUPERNODE_DESCRIPTION)
    add_supernode_arguments(parser)
    return parser.parse_known_args(argv)


class _ExecutorKeeper:
    """The warm executor child: started, restarted if it ever exits while the node runs (a
    dead executor would leave the node's tasks waiting forever), stopped with the node."""

    def __init__(self, address: str, poll_seconds: float) -> None:
        self.address, self.poll_seconds = address, poll_seconds
        self.proc = start_executor(address, poll_seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="ecofed-executor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            code = self.proc.poll()
            if code is not None and not self._stop.is_set():
                print(
                    f"ecofed supernode: the executor exited with code {code}; restarting it",
                    file=sys.stderr,
                    flush=True,
                )
                self.proc = start_executor(self.address, self.poll_seconds)

    def stop(self) -> None:
        self._stop.set()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main(argv: list[str] | None = None, run_supernode: Callable[[], None] | None = None) -> None:
    """Run Flower's SuperNode with the waits capped and, with ``--warm``, a warm executor.

    Raises
    ------
    SupernodeUsageError
        If ``--poll-seconds`` is out of range, ``--warm`` is combined with flower-supernode
        options it cannot serve, or the installed Flower's SuperNode does not sleep where
        this wrapper expects (:class:`PatchPointError`).
    """
    args, flower_args = _parse(argv)
    address = warm_runtime_address(flower_args) if args.warm else None
    cap_supernode_sleeps(args.poll_seconds)
    os.environ[SUPEREXEC_POLL_ENV] = str(args.poll_seconds)
    keeper: _ExecutorKeeper | None = None
    if address is not None:
        flower_args = [*flower_args, "--isolation", "process"]
        keeper = _ExecutorKeeper(address, args.poll_seconds)
    if run_supernode is None:
        from flwr.supernode.cli.flower_supernode import flower_supernode

        run_supernode = flower_supernode

    def stop_executor() -> None:
        if keeper is not None:
            keeper.stop()

    from flwr.supercore.exit import add_exit_handler

    add_exit_handler(stop_executor)  # Flower exits through sys.exit on SIGTERM/SIGINT
    sys.argv = ["flower-supernode", *flower_args]
    try:
        run_supernode()
    finally:
        stop_executor()


if __name__ == "__main__":
    main()
