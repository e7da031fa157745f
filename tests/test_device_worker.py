"""The device worker (a warm process doing the ClientApp's work) and ``ecofed supernode``."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, Metadata, RecordDict

from ecofed_flwr.device_worker import (
    MAX_REQUEST_BYTES,
    WORKER_ENV,
    DeviceWorkerError,
    WarmClientApp,
    serve,
    socket_folder,
)
from ecofed_flwr.federation import make_client_app
from ecofed_flwr.launch import supernode
from ecofed_flwr.protocol import ACTIVATIONS_KEY, CONFIG_KEY, LABELS_KEY, UPLOAD_MESSAGE_TYPE

RUN_CONFIG = {
    "model": "tiny_cnn",
    "cut": "block1",
    "weights": "random",
    "input-size": 16,
    "dataset": "synthetic",
    "samples-per-client": 20,
    "test-samples": 20,
}


def _request(codec: str = "u4") -> Message:
    metadata = Metadata(
        run_id=1,
        message_id="ab" * 32,
        src_node_id=1,
        dst_node_id=7,
        reply_to_message_id="",
        group_id="1",
        created_at=0.0,
        ttl=600.0,
        message_type=UPLOAD_MESSAGE_TYPE,
    )
    content = RecordDict({CONFIG_KEY: ConfigRecord({"codec": codec, "server-round": 1})})
    return Message(content, metadata=metadata)  # type: ignore[call-overload]


def _context() -> Context:
    return Context(
        run_id=1,
        node_id=7,
        node_config={"partition-id": 1, "num-partitions": 4},
        state=RecordDict(),
        run_config=dict(RUN_CONFIG),
    )


@pytest.fixture(scope="module")
def worker() -> Iterator[str]:
    """A device worker serving the App's ClientApp, in a thread of this process."""
    folder = socket_folder()
    path = str(folder / "worker.sock")
    stop, listening = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=serve, args=(path, make_client_app), kwargs={"stop": stop, "ready": listening.set}
    )
    thread.start()
    assert listening.wait(30)
    yield path
    stop.set()
    thread.join(10)
    assert not Path(path).exists()  # the socket is removed when the worker stops
    folder.rmdir()


def test_socket_folder_is_private() -> None:
    folder = socket_folder()
    try:
        assert folder.stat().st_mode & 0o077 == 0
    finally:
        folder.rmdir()


def test_warm_reply_equals_the_in_process_reply(worker: str) -> None:
    direct = make_client_app()(_request(), _context())
    warm = WarmClientApp(worker)(_request(), _context())
    assert warm.metadata.reply_to_message_id == "ab" * 32
    assert not warm.has_error()
    for key in (ACTIVATIONS_KEY, LABELS_KEY):
        ours, theirs = warm.content.array_records[key], direct.content.array_records[key]
        assert list(ours) == list(theirs)
        for name in ours:
            assert np.array_equal(ours[name].numpy(), theirs[name].numpy())


def test_a_failing_handler_is_named_and_the_worker_goes_on(worker: str) -> None:
    with pytest.raises(DeviceWorkerError, match="no-such-codec"):
        WarmClientApp(worker)(_request(codec="no-such-codec"), _context())
    reply = WarmClientApp(worker)(_request(), _context())
    assert LABELS_KEY in reply.content.array_records


def _dropped(sock: socket.socket) -> bool:
    """The worker closed the connection without answering (a reset when data was unread)."""
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_oversized_and_foreign_requests_are_dropped_unread(worker: str) -> None:
    # A request declaring more than the cap: the connection is dropped before any allocation.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(worker)
        sock.sendall(b"EFW1" + struct.pack("!Q", MAX_REQUEST_BYTES + 1))
        assert _dropped(sock)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(worker)
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert _dropped(sock)
    # Garbage where the protobuf should be: refused by name, the worker still serves.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(worker)
        sock.sendall(b"EFW1" + struct.pack("!Q", 3) + b"\xff\xff\xff" + struct.pack("!Q", 0))
        sock.settimeout(10)
        assert sock.recv(1) == b"\x01"
    assert LABELS_KEY in WarmClientApp(worker)(_request(), _context()).content.array_records


def test_no_worker_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DeviceWorkerError, match="ecofed device-worker"):
        WarmClientApp(str(tmp_path / "none.sock"))(_request(), _context())


def test_thin_client_app_imports_no_torch() -> None:
    code = (
        "import sys, ecofed_flwr.app.client_app as m; "
        "print(type(m.app).__name__, 'torch' in sys.modules)"
    )
    env = {**os.environ, WORKER_ENV: "/nonexistent.sock"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["WarmClientApp", "False"]


# ------------------------------------------------------------------- ecofed supernode


def test_supernode_sleeps_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    module = importlib.import_module(supernode.PATCHED_MODULE)
    monkeypatch.setattr(module, "time", time)  # restored after the test
    patched = supernode.cap_supernode_sleeps(0.01)
    assert patched is module
    started = time.perf_counter()
    module.time.sleep(3)  # what the idle SuperNode does between polls
    assert time.perf_counter() - started < 1.0
    assert module.time.monotonic() > 0  # everything else is the real time module
    with pytest.raises(supernode.PatchPointError):  # patching twice: not Flower's module
        supernode.cap_supernode_sleeps(0.01)
    with pytest.raises(ValueError, match="poll-seconds"):
        supernode.cap_supernode_sleeps(5.0)


def test_supernode_wrapper_starts_and_stops_its_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    module = importlib.import_module(supernode.PATCHED_MODULE)
    monkeypatch.setattr(module, "time", time)
    for name in (WORKER_ENV, supernode.SUPEREXEC_POLL_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    seen: dict[str, object] = {}

    def fake_supernode() -> None:
        # What the SuperNode (and the SuperExec and ClientApps it starts) would see.
        seen["argv"] = list(sys.argv)
        seen["poll"] = os.environ[supernode.SUPEREXEC_POLL_ENV]
        seen["sock"] = sock = os.environ[WORKER_ENV]
        reply = WarmClientApp(sock)(_request(), _context())
        seen["labels"] = LABELS_KEY in reply.content.array_records

    supernode.main(
        ["--poll-seconds", "0.2", "--warm", "--insecure", "--superlink", "127.0.0.1:1"],
        run_supernode=fake_supernode,
    )
    assert seen["argv"] == ["flower-supernode", "--insecure", "--superlink", "127.0.0.1:1"]
    assert seen["poll"] == "0.2" and seen["labels"] is True
    assert not Path(str(seen["sock"])).parent.exists()  # worker stopped, its folder removed
