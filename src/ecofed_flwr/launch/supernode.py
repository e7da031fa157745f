"""``ecofed supernode``: Flower's SuperNode for a device that answers in a second or two.

Three waits of Flower 1.42 make one real-device exchange last 6-9 s for a few hundredths of
a second of compute (``benchmarks/exchange.py``):

- an idle SuperNode asks the SuperLink for work every 3 s (``time.sleep(3)`` in
  ``flwr.supernode.start_client_internal``, no option), and polls for the ClientApp's reply
  every 0.5 s;
- its SuperExec looks for new tasks every 1 s (``FLWR_SUPEREXEC_TASK_POLL_INTERVAL``);
- each message gets a new ``flwr-clientapp`` process, which for EcoFed imports torch and
  builds the split before it computes.

This wrapper runs the same SuperNode (same arguments, in this process) with those sleeps
capped at ``--poll-seconds`` (the cap replaces the ``time`` module that Flower's SuperNode
module sees, nothing else), and with ``--warm`` starts a device worker
(:mod:`ecofed_flwr.device_worker`) first and points the node's ClientApps at it. Polling
faster costs one small request to the SuperLink per node and interval: fine for a handful of
devices, not for thousands.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["PatchPointError", "cap_supernode_sleeps", "main", "start_device_worker"]

#: Flower's SuperExec task-poll variable (seconds, 0.01-60).
SUPEREXEC_POLL_ENV = "FLWR_SUPEREXEC_TASK_POLL_INTERVAL"
#: Where Flower 1.42's SuperNode sleeps between polls (checked: a Flower upgrade that moves it
#: fails loudly instead of silently polling every 3 s).
PATCHED_MODULE = "flwr.supernode.start_client_internal"
WORKER_READY_TIMEOUT_S = 120.0


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


def start_device_worker(
    folder: Path, python: str = sys.executable, timeout: float = WORKER_READY_TIMEOUT_S
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start ``ecofed_flwr.device_worker`` on a socket in ``folder``; wait until it listens.

    The worker stops by itself when this process ends.

    Raises
    ------
    RuntimeError
        If it exits, or does not listen within ``timeout`` seconds (it is stopped first).
    """
    sock = folder / "worker.sock"
    proc = subprocess.Popen(
        [python, "-m", "ecofed_flwr.device_worker", "--socket", str(sock),
         "--parent-pid", str(os.getpid())],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while not sock.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"the device worker exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            proc.terminate()
            raise RuntimeError(f"the device worker did not listen within {timeout:.0f} s")
        time.sleep(0.05)
    return proc, sock


def _parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="ecofed supernode",
        description="flower-supernode with shorter polls and, with --warm, a device worker. "
        "Every other argument goes to flower-supernode unchanged.",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=0.1,
        help="cap on the SuperNode's and its SuperExec's waits between polls (default 0.1; "
        "Flower's: 3 and 1)",
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="start a device worker and hand it every message (torch, split and data stay "
        "loaded between messages)",
    )
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None, run_supernode: Callable[[], None] | None = None) -> None:
    """Run Flower's SuperNode with the waits capped and, with ``--warm``, a device worker."""
    args, flower_args = _parse(argv)
    cap_supernode_sleeps(args.poll_seconds)
    os.environ[SUPEREXEC_POLL_ENV] = str(max(args.poll_seconds, 0.01))
    worker: subprocess.Popen[bytes] | None = None
    folder: Path | None = None
    if args.warm:
        from ecofed_flwr.device_worker import WORKER_ENV, socket_folder

        folder = socket_folder()
        worker, sock = start_device_worker(folder)
        os.environ[WORKER_ENV] = str(sock)
    if run_supernode is None:
        from flwr.supernode.cli.flower_supernode import flower_supernode

        run_supernode = flower_supernode

    def stop_worker() -> None:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    from flwr.supercore.exit import add_exit_handler

    add_exit_handler(stop_worker)  # Flower exits through sys.exit on SIGTERM/SIGINT
    sys.argv = ["flower-supernode", *flower_args]
    try:
        run_supernode()
    finally:
        stop_worker()


if __name__ == "__main__":
    main()
