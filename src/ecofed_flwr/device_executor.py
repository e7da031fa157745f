"""A warm task executor for a SuperNode in process isolation: ClientApps run in one process.

Flower 1.42's SuperNode, in its default subprocess isolation, starts a SuperExec that launches
one ``flwr-clientapp`` process per message; each pays Flower's runtime imports (about 1 s
here), installs the FAB again, and for EcoFed imports torch and builds the split. Started
with ``--isolation process``, the SuperNode leaves its tasks to whatever executor connects to
its runtime API. This module is such an executor: it takes the node's tasks one at a time and
runs each in this process, with the ClientApp loaded once per FAB, so torch, the built front
and the loaded partition stay in memory between messages.

It speaks the same runtime API as Flower's SuperExec and ``flwr-clientapp`` (acquire a task,
pull its input, push the reply and the task's output), through Flower's own client functions;
it is written for Flower 1.42 (the version this package pins).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from logging import ERROR, INFO

from flwr.app import Context, Message
from flwr.app.error import Error
from flwr.clientapp import ClientApp
from flwr.common.constant import ErrorCode, SubStatus
from flwr.common.serde import context_from_proto, fab_from_proto, run_from_proto
from flwr.proto.node_pb2 import Node
from flwr.proto.runtime_pb2 import (
    AcquireTaskRequest,
    PullAppMessagesRequest,
    PullTaskInputRequest,
)
from flwr.supercore import log
from flwr.supercore.constant import TaskType
from flwr.supercore.fab import Fab
from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
from flwr.supercore.inflatable.inflatable_protobuf_utils import (
    make_confirm_message_received_fn_protobuf,
    make_pull_object_fn_protobuf,
)
from flwr.supercore.inflatable.inflatable_utils import pull_and_inflate_object_from_tree
from flwr.supercore.interceptors import RuntimeTokenHttpInterceptor, RuntimeVersionHttpInterceptor
from flwr.supercore.protobuf.client import ProtobufClientInterceptor
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.run import Run
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supercore.task_identity import TaskIdentity
from flwr.supernode.runtime.run_clientapp import push_message, push_task_output

__all__ = ["AppLoader", "NewAppError", "load_fab_client_app", "main", "run_executor"]

#: Returns the ClientApp of a run's FAB (``fab_id``, ``fab_version``, ``fab_hash``, content).
AppLoader = Callable[[str, str, str, bytes], ClientApp]


def load_fab_client_app(fab_id: str, fab_version: str, fab_hash: str, content: bytes) -> ClientApp:
    """The ClientApp a FAB names, installed and imported as ``flwr-clientapp`` would."""
    from flwr.cli.install import install_from_fab
    from flwr.clientapp.utils import get_load_client_app_fn

    install_from_fab(content, skip_prompt=True)
    load = get_load_client_app_fn(default_app_ref="", app_path=None, multi_app=True)
    return load(fab_id, fab_version, fab_hash)


#: Waits between tries for a message part the SuperNode is still receiving: first, and cap
#: (Flower's: 1 s doubling to 10 s, up to 500 tries; a warm executor asks right after the
#: node took the message; these keep about 16 minutes for a slow link's parts).
PULL_BACKOFF_SECONDS = (0.01, 2.0)


def _pull_task_input(client: RuntimeHttpClient) -> tuple[Message, Context, Run, Fab]:
    """The task's message, context, run and FAB (Flower's ``pull_task_input`` with short
    waits for the message parts)."""
    res = client.PullTaskInput(PullTaskInputRequest())
    TaskIdentity.task_id = res.task_id
    TaskIdentity.run_id = res.run.run_id
    TaskIdentity.node_id = res.context.node_id
    context = context_from_proto(res.context)
    run, fab = run_from_proto(res.run), fab_from_proto(res.fab)
    pulled = client.PullMessages(PullAppMessagesRequest())
    if not pulled.messages_list:
        raise RuntimeError("the SuperNode gave a task without its message")
    node = Node(node_id=context.node_id)
    tree = pulled.message_object_trees[0]
    message = pull_and_inflate_object_from_tree(
        tree,
        make_pull_object_fn_protobuf(client.PullObject, node, context.run_id),
        make_confirm_message_received_fn_protobuf(
            client.ConfirmMessageReceived, node, context.run_id
        ),
        return_type=Message,
        initial_backoff=PULL_BACKOFF_SECONDS[0],
        backoff_cap=PULL_BACKOFF_SECONDS[1],
    )
    message.metadata.__dict__["_message_id"] = tree.object_id  # as Flower's own puller
    return message, context, run, fab


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
    client = _client(address, token)
    heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
    context = None
    status, details = SubStatus.FAILED, "ClientApp task failed"
    try:
        heartbeat.start()
        message, context, run, fab = _pull_task_input(client)
        reply: Message | None
        try:
            app = apps.get(fab.hash_str)
            if app is None:
                apps.clear()  # one app at a time (its split and data)
                app = apps[fab.hash_str] = loader(
                    run.fab_id, run.fab_version, fab.hash_str, fab.content
                )
            reply = app(message=message, context=context)
            status, details = SubStatus.COMPLETED, ""
        except Exception as err:  # the ClientApp's failure goes back as an error reply
            log(ERROR, "EcoFed executor: the ClientApp raised", exc_info=err)
            details = f"{type(err)}:<'{err}'>"
            reply = Message(
                Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=details),
                reply_to=message,
            )
        push_message(client, reply, context)
    finally:
        push_task_output(client=client, context=context, sub_status=status, details=details)
        if heartbeat.is_running:
            heartbeat.stop()
        client.close()


class NewAppError(Exception):
    """A task of another app (FAB) than the one loaded: it needs a fresh interpreter, since
    Python keeps the modules it imported for the first."""

    def __init__(self, token: str, fab_hash: str) -> None:
        super().__init__(f"a task of another app (FAB {fab_hash[:12]})")
        self.token, self.fab_hash = token, fab_hash


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
    it.

    Parameters
    ----------
    runtime_api_address : str
        The SuperNode's runtime API (``host:port``, its ``--runtime-api-address``).
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
    apps: dict[str, ClientApp] = {}
    client = _client(runtime_api_address)
    log(INFO, "EcoFed executor: taking the tasks of the SuperNode at %s", runtime_api_address)
    try:
        while not stop.is_set():
            if first_token is not None:
                token, first_token = first_token, None
            else:
                res = client.AcquireTask(
                    AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP])
                )
                if not (res.HasField("task") and res.token):
                    time.sleep(poll_seconds)
                    continue
                token = res.token
                fab_hash = res.task.fab_hash if res.task.HasField("fab_hash") else ""
                if apps and fab_hash and fab_hash not in apps:
                    raise NewAppError(token, fab_hash)
            try:
                _run_task(runtime_api_address, token, apps, loader)
            except Exception as err:  # one failed task must not stop the device
                log(ERROR, "EcoFed executor: a task failed", exc_info=err)
    finally:
        client.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m ecofed_flwr.device_executor``: run :func:`run_executor` (see ``--help``)."""
    import argparse
    import os

    from ecofed_flwr.launch.supernode import EXECUTOR_DESCRIPTION, add_executor_arguments

    parser = argparse.ArgumentParser(
        prog="ecofed device-executor", description=EXECUTOR_DESCRIPTION
    )
    add_executor_arguments(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    stop = threading.Event()
    if args.parent_pid is not None:
        parent = args.parent_pid

        def watch() -> None:
            while not stop.is_set():
                try:
                    os.kill(parent, 0)
                except ProcessLookupError:
                    stop.set()
                    os._exit(0)
                time.sleep(0.5)

        threading.Thread(target=watch, daemon=True).start()
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
