"""A warm device process: the ClientApp's work done by one process that stays up.

Flower 1.42 starts one ``flwr-clientapp`` process per message. For EcoFed that process
imports torch (1.4-2 s here) and builds the split (up to 1.8 s for the default model) before
it computes for a few hundredths of a second. On a real device the work can instead go to a
*device worker*: a process started once beside the SuperNode (``ecofed supernode --warm``,
or ``ecofed device-worker``), which keeps torch, the built front and the loaded partition in
memory. The App's ClientApp, when the environment variable :data:`WORKER_ENV` names the
worker's socket, is then a thin :class:`WarmClientApp` that imports Flower only and passes
each message and its context to the worker over that local Unix socket.

What crosses the socket is Flower's own protobuf encoding of the message and the context
(never pickle), in length-prefixed frames whose sizes are capped before anything is read.
The socket lives in a folder only its user can enter.

This module imports Flower and numpy only; the worker loads the full ClientApp lazily.
"""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.common.serde import (
    context_from_proto,
    context_to_proto,
    message_from_proto,
    message_to_proto,
)
from flwr.proto.message_pb2 import Context as ProtoContext
from flwr.proto.message_pb2 import Message as ProtoMessage

__all__ = [
    "MAX_REPLY_BYTES",
    "MAX_REQUEST_BYTES",
    "WORKER_ENV",
    "DeviceWorkerError",
    "WarmClientApp",
    "serve",
    "socket_folder",
]

#: The environment variable naming the worker's socket (set for the SuperNode, inherited by
#: every ``flwr-clientapp`` process it starts).
WORKER_ENV = "ECOFED_DEVICE_WORKER"
#: Largest request (message + context) the worker reads: requests carry configs only.
MAX_REQUEST_BYTES = 64 * 2**20
#: Largest reply the ClientApp reads (the encoded activations of a partition).
MAX_REPLY_BYTES = 2**31
_MAGIC = b"EFW1"
_OK, _FAILED = b"\x00", b"\x01"
_LENGTH = struct.Struct("!Q")


class DeviceWorkerError(RuntimeError):
    """The device worker could not be reached, refused the request or failed on it."""


# ---------------------------------------------------------------------------- framing


def _send(sock: socket.socket, *parts: bytes) -> None:
    sock.sendall(b"".join(_LENGTH.pack(len(p)) + p for p in parts))


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray(size)
    view, got = memoryview(buf), 0
    while got < size:
        n = sock.recv_into(view[got:], size - got)
        if n == 0:
            raise DeviceWorkerError(f"connection closed after {got} of {size} bytes")
        got += n
    return bytes(buf)


def _recv(sock: socket.socket, cap: int, what: str) -> bytes:
    (size,) = _LENGTH.unpack(_recv_exact(sock, _LENGTH.size))
    if size > cap:
        raise DeviceWorkerError(f"{what} declares {size} bytes; at most {cap} are accepted")
    return _recv_exact(sock, size)


# ---------------------------------------------------------------------------- client side


class WarmClientApp(ClientApp):
    """A ClientApp that hands every message to the device worker at ``socket_path``.

    Parameters
    ----------
    socket_path : str
        The worker's Unix socket (see :func:`serve`).
    timeout : float (default: 3600)
        Seconds to wait for the worker's reply.
    """

    def __init__(self, socket_path: str, timeout: float = 3600.0) -> None:
        super().__init__()
        self.socket_path = socket_path
        self.timeout = timeout

    def __call__(self, message: Message, context: Context) -> Message:
        """Pass ``message`` and ``context`` to the worker; return its reply to ``message``.

        The worker's changes to ``context.state`` are copied back, as an in-process ClientApp
        would leave them.

        Raises
        ------
        DeviceWorkerError
            If the worker is unreachable, or its handler failed (its error is named).
        """
        request = (
            message_to_proto(message).SerializeToString(),
            context_to_proto(context).SerializeToString(),
        )
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.socket_path)
                sock.sendall(_MAGIC)
                _send(sock, *request)
                status = _recv_exact(sock, 1)
                if status == _FAILED:
                    reason = _recv(sock, MAX_REQUEST_BYTES, "the worker's error").decode()
                    raise DeviceWorkerError(f"the device worker failed: {reason}")
                reply_bytes = _recv(sock, MAX_REPLY_BYTES, "the worker's reply")
                state_bytes = _recv(sock, MAX_REPLY_BYTES, "the worker's context")
        except OSError as err:
            raise DeviceWorkerError(
                f"no device worker at {self.socket_path} ({err}); start one with "
                f"'ecofed device-worker' or unset {WORKER_ENV}"
            ) from err
        reply = message_from_proto(_parse(ProtoMessage, reply_bytes, "reply"))
        returned = context_from_proto(_parse(ProtoContext, state_bytes, "context"))
        context.state = returned.state
        if reply.has_error():
            raise DeviceWorkerError(f"the device's handler failed: {reply.error.reason}")
        return Message(content=reply.content, reply_to=message)


_Proto = TypeVar("_Proto", ProtoMessage, ProtoContext)


def _parse(kind: type[_Proto], data: bytes, what: str) -> _Proto:
    proto = kind()
    try:
        proto.ParseFromString(data)
    except Exception as err:  # protobuf's DecodeError and friends
        raise DeviceWorkerError(f"the {what} is not a valid Flower {kind.__name__}: {err}") from err
    return proto


# ---------------------------------------------------------------------------- worker side


def socket_folder() -> Path:
    """A new folder for a worker socket that only this user can enter (short path: Unix
    socket paths are limited to about 100 characters)."""
    return Path(tempfile.mkdtemp(prefix="ecofed-dev-"))


def _answer(conn: socket.socket, app: ClientApp) -> None:
    if _recv_exact(conn, len(_MAGIC)) != _MAGIC:
        raise DeviceWorkerError("not an EcoFed device-worker request")
    message_bytes = _recv(conn, MAX_REQUEST_BYTES, "the request's message")
    context_bytes = _recv(conn, MAX_REQUEST_BYTES, "the request's context")
    try:
        message = message_from_proto(_parse(ProtoMessage, message_bytes, "message"))
        context = context_from_proto(_parse(ProtoContext, context_bytes, "context"))
        reply = app(message, context)
    except Exception as err:  # the handler's failure goes back to the ClientApp, named
        conn.sendall(_FAILED)
        _send(conn, f"{type(err).__name__}: {err}".encode())
        return
    conn.sendall(_OK)
    _send(
        conn,
        message_to_proto(reply).SerializeToString(),
        context_to_proto(context).SerializeToString(),
    )


def serve(
    socket_path: str | Path,
    app: ClientApp | Callable[[], ClientApp],
    stop: threading.Event | None = None,
    parent_pid: int | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    """Answer ClientApp requests on ``socket_path``, one at a time, until ``stop`` is set.

    Parameters
    ----------
    socket_path : str | Path
        Where to listen (created; removed on return). Its folder should be private
        (:func:`socket_folder`).
    app : ClientApp | Callable[[], ClientApp]
        The ClientApp doing the work, or a function returning it (called once, before
        listening: imports and set-up happen before the first message).
    stop : threading.Event, optional
        Set it to stop serving (checked twice a second).
    parent_pid : int, optional
        Stop when this process is gone (the SuperNode wrapper that started the worker).
    ready : Callable[[], None], optional
        Called once the socket listens.
    """
    client_app = app if isinstance(app, ClientApp) else app()
    path = Path(socket_path)
    stop = stop or threading.Event()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        os.chmod(path, 0o600)
        server.listen(8)
        server.settimeout(0.5)
        if ready is not None:
            ready()
        try:
            while not stop.is_set():
                if parent_pid is not None and not _alive(parent_pid):
                    return
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.settimeout(None)
                    try:
                        _answer(conn, client_app)
                    except (DeviceWorkerError, OSError) as err:
                        # A broken or foreign request: drop the connection, keep serving.
                        _log_refusal(err)
        finally:
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _log_refusal(err: Exception) -> None:
    from flwr.common.logger import log  # Flower's logger, as the SuperNode's lines

    log(30, "EcoFed device worker: request dropped at %.3f: %s", time.time(), err)


def main(argv: list[str] | None = None) -> None:
    """``ecofed device-worker``: serve the App's ClientApp on a Unix socket."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="ecofed device-worker",
        description="Keep a device's ClientApp warm: torch, the split and the data stay "
        f"loaded; point the SuperNode's ClientApps at it with {WORKER_ENV}=SOCKET.",
    )
    parser.add_argument("--socket", required=True, help="Unix socket path to listen on")
    parser.add_argument("--parent-pid", type=int, help="stop when this process ends")
    args = parser.parse_args(argv)

    def full_app() -> ClientApp:
        from ecofed_flwr.federation import make_client_app

        return make_client_app()

    def ready() -> None:
        print(f"EcoFed device worker listening on {args.socket}", flush=True)

    serve(args.socket, full_app, parent_pid=args.parent_pid, ready=ready)


if __name__ == "__main__":
    main()
