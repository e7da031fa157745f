"""A real-device exchange in about a second: ``ecofed supernode`` (capped polls, a warm
ClientApp executor) and the deployment Grid's short waits for reply parts.

The executor's work itself (tasks taken from a real SuperNode, the App's ClientApp run in one
process) is checked end to end by tests/test_deployment.py, whose TLS run uses warm nodes
and must repeat the plain nodes' rounds exactly.
"""

from __future__ import annotations

import importlib
import os
import sys
import time

import psutil
import pytest

from ecofed_flwr.launch import supernode


@pytest.fixture()
def flower_module(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Flower's SuperNode module, its ``time`` restored after the test."""
    from flwr.supercore.exit import exit_handler

    module = importlib.import_module(supernode.PATCHED_MODULE)
    monkeypatch.setattr(module, "time", time)
    monkeypatch.delenv(supernode.SUPEREXEC_POLL_ENV, raising=False)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    # supernode.main registers an exit handler with Flower: keep it out of this process's.
    monkeypatch.setattr(exit_handler, "registered_exit_handlers", [])
    return module


def test_supernode_sleeps_are_capped(flower_module) -> None:  # type: ignore[no-untyped-def]
    patched = supernode.cap_supernode_sleeps(0.01)
    assert patched is flower_module
    started = time.perf_counter()
    flower_module.time.sleep(3)  # what the idle SuperNode does between polls
    assert time.perf_counter() - started < 1.0
    assert flower_module.time.monotonic() > 0  # everything else is the real time module
    with pytest.raises(supernode.PatchPointError):  # patching twice: not Flower's module
        supernode.cap_supernode_sleeps(0.01)
    with pytest.raises(supernode.SupernodeUsageError, match="poll-seconds"):
        supernode.cap_supernode_sleeps(5.0)


def _executors() -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process().children()
        if "ecofed_flwr.device_executor" in " ".join(p.cmdline())
    ]


def test_warm_supernode_runs_in_process_isolation_with_an_executor(
    flower_module,  # type: ignore[no-untyped-def]
) -> None:
    seen: dict[str, object] = {}

    def fake_supernode() -> None:
        # What Flower's SuperNode (and the executor it serves) would see.
        seen["argv"] = list(sys.argv)
        seen["poll"] = os.environ[supernode.SUPEREXEC_POLL_ENV]
        executors = _executors()
        seen["executor"] = [p.cmdline() for p in executors]
        seen["pids"] = [p.pid for p in executors]

    supernode.main(
        ["--poll-seconds", "0.2", "--warm", "--insecure", "--superlink", "127.0.0.1:1",
         "--port", "47999"],
        run_supernode=fake_supernode,
    )  # fmt: skip
    assert seen["argv"] == [
        "flower-supernode", "--insecure", "--superlink", "127.0.0.1:1", "--port", "47999",
        "--isolation", "process",
    ]  # fmt: skip
    assert seen["poll"] == "0.2"
    (cmdline,) = seen["executor"]  # type: ignore[misc]
    assert cmdline[cmdline.index("--runtime-api-address") + 1] == "127.0.0.1:47999"
    # The executor stops with the SuperNode.
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                   for pid in seen["pids"])  # type: ignore[attr-defined]  # fmt: skip
    assert _executors() == []


def test_plain_supernode_keeps_flowers_isolation(flower_module) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    supernode.main(
        ["--poll-seconds", "0.5", "--insecure"], run_supernode=lambda: seen.extend(sys.argv)
    )
    assert seen == ["flower-supernode", "--insecure"]
    assert _executors() == []


def test_warm_executor_reaches_the_runtime_api_flower_would_serve() -> None:
    from flwr.supercore.constant import SUPERNODE_UVICORN_DEFAULT_PORT

    address = supernode.warm_runtime_address
    assert address(["--insecure"]) == f"127.0.0.1:{SUPERNODE_UVICORN_DEFAULT_PORT}"
    assert address(["--port=47011", "--insecure"]) == "127.0.0.1:47011"
    assert address(["--port", "47012", "--host", "0.0.0.0"]) == "127.0.0.1:47012"
    assert address(["--host", "::", "--port", "47013"]) == "[::1]:47013"


def test_a_dead_executor_is_started_again(flower_module) -> None:  # type: ignore[no-untyped-def]
    # Nothing listens there: the executor keeps asking, as for a SuperNode still starting.
    keeper = supernode._ExecutorKeeper("127.0.0.1:9", 0.05)
    try:
        first = keeper.proc.pid
        keeper.proc.kill()
        deadline = time.monotonic() + 15
        while keeper.proc.pid == first and time.monotonic() < deadline:
            time.sleep(0.1)
        assert keeper.proc.pid != first and keeper.proc.poll() is None
    finally:
        keeper.stop()
    assert keeper.proc.poll() is not None
    assert _executors() == []


@pytest.mark.parametrize(
    "extra",
    [
        ["--isolation", "subprocess"],
        ["--isolation=process"],
        ["--ssl-certfile", "c.pem", "--ssl-keyfile", "k"],
        ["--ssl-certfile=c.pem"],
        ["--superexec-auth-secret-file", "secret"],
        ["--allow-runtime-dependency-installation"],
    ],
)
def test_warm_refuses_options_it_cannot_serve(flower_module, extra: list[str]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(supernode.SupernodeUsageError, match="--warm"):
        supernode.main(["--warm", "--insecure", *extra], run_supernode=lambda: None)
    assert _executors() == []


def test_deployment_grid_asks_again_for_missing_reply_parts_soon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flwr.supercore.inflatable.inflatable_utils import ObjectUnavailableError
    from flwr.superlink.grid import http_grid

    from ecofed_flwr.strategies.base import shorten_object_waits

    monkeypatch.setattr(http_grid, "pull_objects", http_grid.pull_objects)  # restored after
    assert not shorten_object_waits(object())  # not a deployment Grid: left alone
    grid = http_grid.HttpGrid.__new__(http_grid.HttpGrid)
    assert shorten_object_waits(grid) and shorten_object_waits(grid)  # wrapped once
    missing = iter(range(3))

    def pull(object_id: str) -> bytes:
        # The reply's part arrives after three asks, as when its device is still pushing it.
        if next(missing, None) is not None:
            raise ObjectUnavailableError(object_id)
        return b"part"

    started = time.perf_counter()
    assert http_grid.pull_objects(["a"], pull) == {"a": b"part"}
    # Flower's waits (1 + 2 + 4 s) would take 7 s; ours 0.02 + 0.04 + 0.08 s.
    assert time.perf_counter() - started < 1.0
