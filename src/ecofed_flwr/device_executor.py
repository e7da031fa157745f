"""A warm task executor for a SuperNode in process isolation: ClientApps run in one process.

Flower 1.42's SuperNode, in its default subprocess isolation, starts a SuperExec that launches
one ``flwr-clientapp`` process per message; each pays Flower's runtime imports (about 1 s
here), installs the FAB again, and for EcoFed imports torch and builds the split. Started
with ``--isolation process``, the SuperNode leaves its tasks to whatever executor connects to
its runtime API. This module is such an executor: it takes the node's tasks one at a time and
runs each in this process, with the ClientApp loaded once per FAB, so torch, the built front
and the loaded partition stay in memory between messages.

It speaks the same runtime API as Flower's SuperExec and ``flwr-clientapp`` (acquire a task,
pull its input, push the reply and the task's output), through Flower's own client functions
(``flwr.supernode.runtime.run_clientapp``); it is written for Flower 1.42 (the version this
package requires). Where Flower's client code assumes a process per task (it interrupts its
process when a task's token is refused), the executor ends that task, not itself.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from logging import ERROR, INFO, WARNING

from flwr.app import Context, Message
from flwr.app.error import Error
from flwr.clientapp import ClientApp
from flwr.common.constant import ErrorCode, SubStatus
from flwr.proto.runtime_pb2 import AcquireTaskRequest
from flwr.supercore import log
from flwr.supercore.constant import TaskType
from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
from flwr.supercore.interceptors import RuntimeTokenHttpInterceptor, RuntimeVersionHttpInterceptor
from flwr.supercore.protobuf.client import ProtobufClientInterceptor
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supernode.runtime import run_clientapp

from ecofed_flwr.flower_waits import shorten_backoff

__all__ = [
    "AppLoader",
    "NewAppError",
    "load_fab_client_app",
    "main",
    "run_executor",
    "shorten_part_waits",
]

#: Returns the ClientApp of a run's FAB (``fab_id``, ``fab_version``, ``fab_hash``, content).
AppLoader = Callable[[str, str, str, bytes], ClientApp]

#: Waits between tries for a message part the SuperNode is still receiving: first, and cap
#: (Flower's: 1 s doubling to 10 s, up to 500 tries; a warm executor asks right after the
#: node took the message; these keep about 16 minutes for a slow link's parts).
PULL_BACKOFF_SECONDS = (0.01, 2.0)
#: Wait after the SuperNode's runtime API failed to answer (it may be starting or stopping).
UNREACHABLE_WAIT_SECONDS = 1.0


class NewAppError(Exception):
    """A task of another app (FAB) than the one loaded: it needs a fresh interpreter, since
    Python keeps the modules it imported for the first."""

    def __init__(self, token: str, fab_hash: str) -> None:
        super().__init__(f"a task of another app (FAB {fab_hash[:12]})")
        self.token, self.fab_hash = token, fab_hash


def shorten_part_waits() -> None:
    """Make Flower's ``pull_task_input`` (in this process) ask again for a message part the
    SuperNode is still receiving after :data:`PULL_BACKOFF_SECONDS` instead of 1 s: it wraps
    the ``pull_and_inflate_object_from_tree`` that ``flwr.supernode.runtime.run_clientapp``
    calls; nothing else changes."""
    shorten_backoff(run_clientapp, "pull_and_inflate_object_from_tree", *PULL_BACKOFF_SECONDS)


def load_fab_client_app(fab_id: str, fab_version: str, fab_hash: str, content: bytes) -> ClientApp:
    """The ClientApp a FAB names, installed and imported as ``flwr-clientapp`` would."""
    from flwr.cli.install import install_from_fab
    from flwr.clientapp.utils import get_load_client_app_fn

    install_from_fab(content, skip_prompt=True)
    load = get_load_client_app_fn(default_app_ref="", app_path=None, multi_app=True)
    return load(fab_id, fab_version, fab_hash)


def _client(address: str, token: str | None = None) -> RuntimeHttpClient:
    """A runtime-API client: as Flower's SuperExec, or with a task's token as its ClientApp."""
    interceptors: list[ProtobufClientInterceptor] = [
        RuntimeVersionHttpInterceptor(component_name="SuperExec")
    ]
    if token is not None:
        interceptors = [
            RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
            RuntimeTokenHttpInterceptor(token),
        ]
    return RuntimeHttpClient.from_server_address(
        server_address=address,
        insecure=True,
        root_certificates=None,
        interceptors=interceptors,
        retry_invoker=make_simple_http_retry_invoker(),
    )


def _run_task(address: str, token: str, apps: dict[str, ClientApp], loader: AppLoader) -> None:
    """One task: its input pulled, the ClientApp run (or its failure as an error reply), the
    reply and the task's final status pushed. Every step's failure ends in a FAILED status
    (as far as the SuperNode can still be told), never in a stuck task."""
    client = _client(address, token)
    heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
    context: Context | None = None
    status, details = SubStatus.FAILED, "the warm executor failed before running the ClientApp"
    try:
        heartbeat.start()
        message, context, run, fab = run_clientapp.pull_task_input(client)
        reply: Message
        try:
            app = apps.get(fab.hash_str)
            if app is None:
                apps.clear()  # one app at a time (its split and data)
                try:
                    app = loader(run.fab_id, run.fab_version, fab.hash_str, fab.content)
                except Exception as err:
                    raise _LoadError(err) from err
                apps[fab.hash_str] = app
            reply = app(message=message, context=context)
            status, details = SubStatus.COMPLETED, ""
        except Exception as err:  # the ClientApp's failure goes back to the server, named
            cause = err.__cause__ if isinstance(err, _LoadError) else err
            code = (
                ErrorCode.LOAD_CLIENT_APP_EXCEPTION
                if isinstance(err, _LoadError)
                else ErrorCode.CLIENT_APP_RAISED_EXCEPTION
            )
            log(ERROR, "EcoFed executor: the ClientApp failed", exc_info=cause)
            details = f"{type(cause).__name__}: {cause}"
            reply = Message(Error(code=code, reason=details), reply_to=message)
        try:
            run_clientapp.push_message(client, reply, context)
        except Exception as err:
            status, details = SubStatus.FAILED, f"pushing the reply failed: {err}"
            raise
    finally:
        # The heartbeat first: once the task is finished, a beat is refused, and Flower's
        # heartbeat answers a refusal by interrupting the whole process.
        try:
            if heartbeat.is_running:
                heartbeat.stop()
        finally:
            try:
                run_clientapp.push_task_output(
                    client=client, context=context, sub_status=status, details=details
                )
            finally:
                client.close()


class _LoadError(Exception):
    """The run's ClientApp could not be loaded (its cause is the error)."""


def run_executor(
    runtime_api_address: str,
    poll_seconds: float = 0.05,
    loader: AppLoader = load_fab_client_app,
    stop: threading.Event | None = None,
    first_token: str | None = None,
) -> None:
    """Take the SuperNode's ClientApp tasks and run them here, one at a time, until ``stop``.

    One app is loaded at a time: a task of another FAB (a new run of other code) raises
    :class:`NewAppError` with the task's token, for :func:`main` to restart the process on
    it. A task that fails in any way is reported failed and the executor goes on; an
    unreachable SuperNode is asked again every second.

    Parameters
    ----------
    runtime_api_address : str
        The SuperNode's runtime API (``host:port``).
    poll_seconds : float (default: 0.05)
        Wait between asks when the node has no task.
    loader : AppLoader
        Loads a run's ClientApp (once per FAB hash); default: the FAB's own ClientApp.
    stop : threading.Event, optional
        Set it to stop after the current task.
    first_token : str, optional
        A task already acquired (by the process this one replaced) to run first.

    Raises
    ------
    NewAppError
        For a task of another FAB than the loaded app's.
    """
    stop = stop or threading.Event()
    shorten_part_waits()
    apps: dict[str, ClientApp] = {}
    client = _client(runtime_api_address)
    log(INFO, "EcoFed executor: taking the tasks of the SuperNode at %s", runtime_api_address)
    try:
        while not stop.is_set():
            if first_token is not None:
                token, first_token = first_token, None
            else:
                try:
                    res = client.AcquireTask(
                        AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP])
                    )
                except (Exception, KeyboardInterrupt) as err:
                    log(WARNING, "EcoFed executor: the SuperNode did not answer: %r", err)
                    stop.wait(UNREACHABLE_WAIT_SECONDS)
                    continue
                if not (res.HasField("task") and res.token):
                    stop.wait(poll_seconds)
                    continue
                token = res.token
                fab_hash = res.task.fab_hash if res.task.HasField("fab_hash") else ""
                if apps and fab_hash and fab_hash not in apps:
                    raise NewAppError(token, fab_hash)
            try:
                _run_task(runtime_api_address, token, apps, loader)
            except (Exception, KeyboardInterrupt) as err:
                # KeyboardInterrupt: Flower's HTTP retry and heartbeat interrupt the process
                # on a refused token, as if it ran one task; here it ends this task only.
                log(ERROR, "EcoFed executor: a task failed", exc_info=err)
            except BaseException as err:  # Flower's RunNotRunningException: the run ended
                if isinstance(err, SystemExit):
                    raise
                log(INFO, "EcoFed executor: the task's run is no longer running (%r)", err)
    finally:
        client.close()


def main(argv: list[str] | None = None) -> None:
    """``ecofed device-executor``: run :func:`run_executor` (see ``--help``)."""
    import argparse

    from ecofed_flwr.launch.supernode import (
        EXECUTOR_DESCRIPTION,
        SupernodeUsageError,
        add_executor_arguments,
        check_poll_seconds,
    )

    parser = argparse.ArgumentParser(
        prog="ecofed device-executor", description=EXECUTOR_DESCRIPTION
    )
    add_executor_arguments(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        check_poll_seconds(args.poll_seconds)
    except SupernodeUsageError as err:
        parser.error(str(err))
    stop = threading.Event()
    if args.parent_pid is not None:
        parent = args.parent_pid

        def watch() -> None:
            while not stop.wait(0.5):
                if os.getppid() != parent:  # the node wrapper is gone (a re-parented child)
                    os._exit(0)

        threading.Thread(target=watch, name="ecofed-parent-watch", daemon=True).start()
    try:
        run_executor(
            args.runtime_api_address, args.poll_seconds, stop=stop, first_token=args.first_token
        )
    except NewAppError as new:
        # Same process id (the SuperNode wrapper still owns it), fresh modules, same task.
        log(INFO, "EcoFed executor: %s; restarting to load it", new)
        kept = _without_option(argv, "--first-token")
        command = [sys.executable, "-m", "ecofed_flwr.device_executor", *kept]
        os.execv(sys.executable, [*command, "--first-token", new.token])


def _without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == option:
            skip = True
        elif not item.startswith(option + "="):
            out.append(item)
    return out


if __name__ == "__main__":
    main()
