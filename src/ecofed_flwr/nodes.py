"""The node registry: which connected node is which client, without Flower.

Every server that talks to devices (both EcoFed strategies and the baselines' FedAvg) asks a
new node once who it is (the handshake, :mod:`ecofed_flwr.handshake`) and keys it by its
partition id, stable across runs unlike transport node ids, so that sampling and data
assignment are reproducible from the seed. :class:`NodeRegistry` holds those answers and
makes every decision about them in one place:

- the partition id a node reports is its client name when it is a non-negative ``int``
  (never a ``bool``) that no other connected node holds; otherwise ``node-<id>``;
- a node whose front differs from the server's is excluded (never asked again), with the
  differences named; a node that answers without a fingerprint (it has not built its front)
  takes part when its described fields agree, and its fingerprint is checked at upload;
- only nodes connected now are sampled: a node that left is forgotten, and its partition
  answers the handshake again under its new node id when it comes back;
- :meth:`NodeRegistry.state_dict` is the part a checkpoint keeps.

Transports (Flower's Grid, the legacy ClientManager) only move the messages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ecofed_flwr.handshake import FINGERPRINT_KEY, PARTITION_KEY, front_differences

__all__ = [
    "PARTITION_ASSIGNMENTS",
    "Admission",
    "HandshakeError",
    "NodeRegistry",
    "is_partition_id",
    "wait_for_nodes",
]

#: Who names a device's partition: its node config (``node``) or the server (``server``,
#: :meth:`NodeRegistry.assign`); see ``defaults.PARTITION_ASSIGNMENT``.
PARTITION_ASSIGNMENTS = ("node", "server")

_log = logging.getLogger("flwr")  # Flower's logger: the lines join the run's log


class HandshakeError(RuntimeError):
    """A strict registry met a node without a usable partition id (a benchmark's setup)."""


def is_partition_id(value: object) -> bool:
    """Whether a handshake's ``partition-id`` names a partition: an int >= 0, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class Admission:
    """The decision on one handshake answer.

    Attributes
    ----------
    node : int
        The transport's node id.
    client : str
        The client name the node's messages are booked under (its partition id, or
        ``node-<id>``).
    excluded : str | None
        Why the node is never asked again, or None when it takes part.
    """

    node: int
    client: str
    excluded: str | None = None


class NodeRegistry:
    """Handshake answers, partition ids, front checks, exclusions and connected-now sampling.

    Parameters
    ----------
    front : Mapping[str, str | int], optional
        The server's front description (:func:`~ecofed_flwr.handshake.describe_front`, with
        its fingerprint). A node that answers with another front (a described field, or
        another non-empty fingerprint) is excluded. None: no front check (the baselines'
        FedAvg, whose devices train whole models).
    strict : bool (default: False)
        Raise :class:`HandshakeError` for a node that does not answer with a free partition id
        (instead of naming it ``node-<id>``).
    """

    def __init__(self, front: Mapping[str, str | int] | None = None, strict: bool = False) -> None:
        self.front = dict(front) if front is not None else None
        self.strict = strict
        self._client_of: dict[int, str] = {}
        self._node_of: dict[str, int] = {}
        self._excluded: dict[int, str] = {}

    # ------------------------------------------------------------------ views

    @property
    def excluded(self) -> dict[int, str]:
        """Connected nodes never asked again, with the reason."""
        return dict(self._excluded)

    def clients(self) -> dict[str, int]:
        """The clients that take part, connected now, with their node ids."""
        return dict(self._node_of)

    def client_of(self, node: int) -> str:
        """The client name of ``node`` (``node-<id>`` for a node the registry does not know)."""
        return self._client_of.get(node, f"node-{node}")

    def node_of(self, client: str) -> int:
        """The node id of a client that takes part (KeyError otherwise)."""
        return self._node_of[client]

    # ------------------------------------------------------------------ decisions

    def connected(self, nodes: Iterable[int]) -> list[int]:
        """Note which nodes are connected now; return those that must answer the handshake.

        Nodes that are no longer connected are forgotten (their clients are not sampled, and
        their exclusions lapse); the returned nodes are the connected ones neither known nor
        excluded, sorted.
        """
        now = set(nodes)
        for node in [n for n in self._client_of if n not in now]:
            del self._node_of[self._client_of.pop(node)]
        self._excluded = {n: r for n, r in self._excluded.items() if n in now}
        return sorted(n for n in now if n not in self._client_of and n not in self._excluded)

    def admit(self, node: int, info: Mapping[str, Any] | None) -> Admission:
        """Decide on ``node``'s handshake answer (``info``: empty or None when it gave none).

        A node that gave no answer still takes part (as ``node-<id>``): its upload requests
        fail or time out and are reported as refusals, like any failing device. A node is
        excluded when its fingerprint differs from the server's, or, when it gives none (a
        device that answers from its settings), when a described field differs
        (:func:`~ecofed_flwr.handshake.front_differences`); its fingerprint is then checked
        at upload.

        Raises
        ------
        HandshakeError
            In a strict registry, when the node gives no partition id or a taken one.
        """
        info = info or {}
        partition = info.get(PARTITION_KEY)
        free = is_partition_id(partition) and str(partition) not in self._node_of
        if self.strict and not free:
            raise HandshakeError(
                f"node {node} reports partition {partition!r}; taken: "
                f"{sorted(self._node_of, key=_numeric)}"
            )
        client = str(partition) if free else f"node-{node}"
        diffs = self._front_differences(info)
        if diffs:
            reason = f"its front differs from the server's ({'; '.join(diffs)})"
            self._excluded[node] = reason
            _log.warning("EcoFed: node %s (%s) is not asked again: %s", node, client, reason)
            return Admission(node, client, reason)
        self._client_of[node] = client
        self._node_of[client] = node
        return Admission(node, client)

    def _front_differences(self, info: Mapping[str, Any]) -> list[str]:
        if not info or self.front is None:
            return []
        fingerprint = info.get(FINGERPRINT_KEY)
        if fingerprint not in ("", None) and fingerprint == self.front.get(FINGERPRINT_KEY):
            return []  # the very front, whatever its description says
        return front_differences(self.front, info)

    def assign(self, clients: Iterable[str], nodes: Iterable[int]) -> dict[str, int]:
        """Give each of ``clients`` (partition ids the server names) a connected node.

        For virtual devices, whose partition the server names in each request (run config
        ``partition-assignment = "server"``): no handshake, and a round's cost does not grow
        with the number of connected nodes. The previous round's assignment is forgotten;
        excluded nodes get nothing; clients beyond the free nodes get none (not in the
        result). Nodes are taken in sorted order, so a run repeats as long as its nodes do
        (what a node computes does not depend on which node it is).
        """
        free = (n for n in sorted(set(nodes)) if n not in self._excluded)
        self._client_of, self._node_of = {}, {}
        for client, node in zip(clients, free, strict=False):
            self._client_of[node] = client
            self._node_of[client] = node
        return dict(self._node_of)

    def exclude(self, node: int, reason: str) -> None:
        """Never ask ``node`` again (while it stays connected), for ``reason``."""
        self._excluded[node] = reason
        client = self._client_of.pop(node, None)
        if client is not None:
            del self._node_of[client]
        _log.warning("EcoFed: node %s (%s) is not asked again: %s", node, client, reason)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """Which node is which client and the excluded nodes (JSON values, for a checkpoint)."""
        return {
            "nodes": {str(n): c for n, c in self._client_of.items()},
            "excluded": {str(n): r for n, r in self._excluded.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`. Nodes not connected at the next round (a new simulation,
        a restarted SuperLink) are forgotten then, and their partitions answer the handshake
        again under their new node ids.

        Raises
        ------
        ValueError
            If ``state`` is not what :meth:`state_dict` produces.
        """
        maps = []
        for key in ("nodes", "excluded"):
            value = state.get(key)
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and k.isdigit() and isinstance(v, str) for k, v in value.items()
            ):
                raise ValueError(
                    f"strategy state: expected '{key}' to map node ids to text, got {value!r}"
                )
            maps.append({int(k): v for k, v in value.items()})
        self._client_of, self._excluded = maps
        self._node_of = {c: n for n, c in self._client_of.items()}


def wait_for_nodes(
    list_nodes: Callable[[], Iterable[int]],
    minimum: int,
    timeout: float,
    server_round: int,
    poll_seconds: float = 1.0,
) -> list[int]:
    """Wait until ``minimum`` nodes are connected or ``timeout`` seconds pass; the nodes.

    Says at once, then every 30 s, how many it waits for, and warns when it goes on with
    fewer after the timeout.
    """
    started = time.monotonic()
    deadline, said = started + timeout, started
    while True:
        nodes = sorted(set(list_nodes()))
        if len(nodes) >= minimum:
            return nodes
        now = time.monotonic()
        if now > deadline:
            _log.warning(
                "EcoFed round %d: only %d of the %d nodes to wait for connected in %.0f s "
                "(round timeout); going on with them (set min-available-nodes / "
                "min_available_nodes to the fleet's size)",
                server_round,
                len(nodes),
                minimum,
                now - started,
            )
            return nodes
        if now >= said:  # at once, then every 30 s
            _log.info(
                "EcoFed round %d: waiting for %d nodes, %d connected (up to %.0f s more)",
                server_round,
                minimum,
                len(nodes),
                deadline - now,
            )
            said = now + 30.0
        time.sleep(poll_seconds)


def _numeric(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name)
