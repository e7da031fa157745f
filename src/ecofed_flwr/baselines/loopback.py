"""Run a ServerApp and a ClientApp in this process, without Flower's simulation engine.

:class:`LoopbackGrid` hands every message straight to a ClientApp (one Context per
simulated node, with ``partition-id`` and ``num-partitions`` in its node config, as in a
simulation) and returns its reply. The apps, strategies and messages are the real ones;
only the transport is skipped, so byte counts equal those of a simulation. It saves Ray's
start-up and its per-client processes: for tests, and for small machines.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import Context, Error, Message, RecordDict
from flwr.app.user_config import UserConfig
from flwr.clientapp import ClientApp
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.serverapp import ServerApp

from ecofed_flwr.baselines.wire import (
    OFFLINE_RUN_ID,
    OfflineGrid,
    as_pushed,
    node_id_for,
    task_identity,
)

CLIENT_ERROR_CODE = 1  # what a SuperNode reports when a ClientApp raises


class LoopbackGrid(OfflineGrid):
    """A Grid whose nodes are one in-process ClientApp, called once per message.

    Parameters
    ----------
    client_app : ClientApp
        Answers every message.
    num_nodes : int
        Simulated nodes; node ``i`` gets partition ``i`` of ``num_nodes``.
    """

    def __init__(
        self, client_app: ClientApp, num_nodes: int, run_config: UserConfig | None = None
    ) -> None:
        if num_nodes < 1:
            raise ValueError(f"need at least one node, got {num_nodes}")
        self.client_app = client_app
        self.contexts = {
            node_id_for(f"client-{i}"): Context(
                run_id=OFFLINE_RUN_ID,
                node_id=node_id_for(f"client-{i}"),
                node_config={"partition-id": i, "num-partitions": num_nodes},
                state=RecordDict(),
                run_config=dict(run_config or {}),
            )
            for i in range(num_nodes)
        }
        self._replies: dict[str, Message] = {}
        super().__init__(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for message in messages:
            as_pushed(message)
            node = message.metadata.dst_node_id
            if node not in self.contexts:
                raise ValueError(f"no node {node}; nodes: {sorted(self.contexts)}")
            try:
                reply = self.client_app(message, self.contexts[node])
            except Exception as err:  # a SuperNode turns a ClientApp failure into an error reply
                reply = Message(
                    Error(CLIENT_ERROR_CODE, f"{type(err).__name__}: {err}"), reply_to=message
                )
            self._replies[message.metadata.message_id] = reply
            ids.append(message.metadata.message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(messages))


def run_loopback(
    server_app: ServerApp,
    client_app: ClientApp,
    num_nodes: int,
    run_config: UserConfig | None = None,
) -> None:
    """Run ``server_app`` against ``num_nodes`` in-process nodes of ``client_app``.

    ``run_config`` is every Context's run config (the app's ``[tool.flwr.app.config]``).
    """
    context = Context(
        run_id=OFFLINE_RUN_ID,
        node_id=SUPERLINK_NODE_ID,
        node_config={},
        state=RecordDict(),
        run_config=dict(run_config or {}),
    )
    with task_identity():
        server_app(LoopbackGrid(client_app, num_nodes, run_config), context)
