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
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["PatchPointError", "cap_supernode_sleeps", "main", "start_executor"]

#: Flower's SuperExec task-poll variable (seconds, 0.01-60).
SUPEREXEC_POLL_ENV = "FLWR_SUPEREXEC_TASK_POLL_INTERVAL"
#: Where Flower 1.42's SuperNode sleeps between polls (checked: a Flower upgrade that moves it
#: fails loudly instead of silently polling every 3 s).
PATCHED_MODULE = "flwr.supernode.start_client_internal"
#: Flower's default port of the SuperNode's runtime API (``--port``).
SUPERNODE_UVICORN_DEFAULT_PORT = 9094


class PatchPointError(RuntimeError):
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
    ValueError
        If ``poll_seconds`` is not in [0.01, 3].
    PatchPointError
        If the installed Flower's SuperNode no longer sleeps through its module's ``time``.
    """
    if not 0.01 <= poll_seconds <= 3.0:
        raise ValueError(f"--poll-seconds must be within [0.01, 3], got {poll_seconds}")
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


def _runtime_address(flower_args: list[str]) -> str:
    """Where the executor reaches the SuperNode's runtime API (its ``--port``, on loopback)."""
    port = str(SUPERNODE_UVICORN_DEFAULT_PORT)
    if "--port" in flower_args:
        port = flower_args[flower_args.index("--port") + 1]
    return f"127.0.0.1:{port}"


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
        "--poll-seconds", type=float, default=0.05, help="wait when the node has no task"
    )
    parser.add_argument("--parent-pid", type=int, help="stop when this process ends")
    # A task the process it replaced had acquired (see device_executor.NewAppError).
    parser.add_argument("--first-token", help=argparse.SUPPRESS)


def _parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="ecofed supernode", description=SUPERNODE_DESCRIPTION)
    add_supernode_arguments(parser)
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None, run_supernode: Callable[[], None] | None = None) -> None:
    """Run Flower's SuperNode with the waits capped and, with ``--warm``, a warm executor.

    Raises
    ------
    ValueError
        If ``--poll-seconds`` is out of range, or ``--warm`` is combined with flower-supernode
        options it cannot serve (another ``--isolation``, a TLS runtime API).
    PatchPointError
        If the installed Flower's SuperNode does not sleep where this wrapper expects.
    """
    args, flower_args = _parse(argv)
    if args.warm:
        clash = {"--isolation", "--ssl-certfile", "--ssl-keyfile"} & set(flower_args)
        if clash:
            raise ValueError(
                f"--warm runs the node with --isolation process and a loopback runtime API; "
                f"drop {', '.join(sorted(clash))}"
            )
    cap_supernode_sleeps(args.poll_seconds)
    os.environ[SUPEREXEC_POLL_ENV] = str(args.poll_seconds)
    executor: subprocess.Popen[bytes] | None = None
    if args.warm:
        flower_args = [*flower_args, "--isolation", "process"]
        executor = start_executor(_runtime_address(flower_args), args.poll_seconds)
    if run_supernode is None:
        from flwr.supernode.cli.flower_supernode import flower_supernode

        run_supernode = flower_supernode

    def stop_executor() -> None:
        if executor is not None and executor.poll() is None:
            executor.terminate()
            try:
                executor.wait(10)
            except subprocess.TimeoutExpired:
                executor.kill()

    from flwr.supercore.exit import add_exit_handler

    add_exit_handler(stop_executor)  # Flower exits through sys.exit on SIGTERM/SIGINT
    sys.argv = ["flower-supernode", *flower_args]
    try:
        run_supernode()
    finally:
        stop_executor()


if __name__ == "__main__":
    main()
