"""What crosses the wire: Flower messages measured by purpose, and recorded in a Ledger.

Three ways to get messages measured, for three kinds of protocol:

- :class:`MeteredGrid` wraps the Grid a ServerApp receives and records every message it
  sends and every reply it gets (classic FL through Flower's ``FedAvg``, EcoFed through its
  strategy): what is counted is exactly what Flower transmits.
- :class:`Link` builds the messages of one device's exchange as real Flower messages when
  a protocol is simulated in one process (vanilla and local-loss DPFL), so that their bytes
  are those Flower would send for the same tensors.
- :class:`OfflineGrid` lets a strategy build the messages of a round without a federation
  (to measure one round of a large model without training it).

A message's bytes are split by the top-level record that carries them (see
:data:`ecofed_flwr.meter.RECORD_PURPOSES`) by the product's own byte meter
(:class:`ecofed_flwr.meter.ByteMeter`); the message envelope, the record dict and any other
record count as ``control``. The parts always add up to :func:`ecofed_flwr.meter.wire_nbytes`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from ecofed_flwr.ledger import Direction, Ledger
from ecofed_flwr.meter import RECORD_PURPOSES, ByteMeter, record_parts

#: Run id used for messages built outside a Flower run; a 63-bit value like Flower's own, so
#: that the metadata has its real serialized length.
OFFLINE_RUN_ID = 0x4C2F_9A51_07D3_6B8E

Record = ArrayRecord | ConfigRecord | MetricRecord


def node_id_for(client: str) -> int:
    """A stable 63-bit node id for ``client`` (Flower's node ids are random 63-bit ints)."""
    return int.from_bytes(hashlib.sha256(client.encode()).digest()[:8], "big") >> 1


def record_message(
    ledger: Ledger,
    server_round: int,
    client: str,
    direction: Direction,
    message: Message,
    purposes: Mapping[str, str] = RECORD_PURPOSES,
) -> int:
    """Add ``message``'s bytes by purpose to ``ledger`` (as one message); return its total."""
    sizes = ByteMeter(ledger).book(
        server_round, client, direction, message, record_parts(message, purposes)
    )
    return sum(sizes.values())


def _task_identity_is_set() -> bool:
    try:
        TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id  # noqa: B018
    except RuntimeError:
        return False
    return True


@contextmanager
def task_identity() -> Iterator[None]:
    """Let instruction messages be built outside a Flower run (inside one, change nothing).

    ``Message(content, dst_node_id, message_type)`` takes its run and source ids from the
    process's task identity, which only a Flower runtime sets. Outside one, the block runs
    as the SuperLink of run :data:`OFFLINE_RUN_ID`; the identity is unset again after it.
    """
    if _task_identity_is_set():
        yield
        return
    TaskIdentity.run_id = OFFLINE_RUN_ID
    TaskIdentity.node_id = SUPERLINK_NODE_ID
    TaskIdentity.task_id = 1
    try:
        yield
    finally:
        # There is no public way to unset the identity.
        for attribute in ("_run_id", "_node_id", "_task_id"):
            setattr(TaskIdentity, attribute, None)


def as_pushed(message: Message) -> Message:
    """Give ``message`` the id the SuperLink gives it on push (its object id).

    A reply carries that id as ``reply_to_message_id``, so a reply built in-process has the
    serialized length of a real one. Flower's HttpGrid sets the id the same way.
    """
    message.metadata.__dict__["_message_id"] = message.object_id
    return message


class Link:
    """One device's exchange with the server, built as Flower messages and recorded.

    Down messages are instructions from the server; up messages are replies to the latest
    instruction, as a ClientApp's replies are. Each is recorded in ``ledger`` with its
    bytes by purpose when it is built.

    Parameters
    ----------
    ledger : Ledger
        Where the messages' bytes go.
    client : str
        The device's name in the ledger.
    message_type : str
        Type of the instructions (``train.<protocol>``).
    purposes : Mapping[str, str] (default: RECORD_PURPOSES)
        Purpose of each top-level record key.
    """

    def __init__(
        self,
        ledger: Ledger,
        client: str,
        message_type: str,
        purposes: Mapping[str, str] = RECORD_PURPOSES,
    ) -> None:
        self.ledger = ledger
        self.client = client
        self.node_id = node_id_for(client)
        self.message_type = message_type
        self.purposes = purposes
        self._last_down: Message | None = None

    def down(self, server_round: int, records: Mapping[str, Record]) -> Message:
        """Build, record and return a server-to-device instruction carrying ``records``."""
        with task_identity():
            message = Message(
                RecordDict(dict(records)),
                self.node_id,
                self.message_type,
                group_id=str(server_round),
            )
        self._last_down = as_pushed(message)
        record_message(self.ledger, server_round, self.client, "down", message, self.purposes)
        return message

    def up(self, server_round: int, records: Mapping[str, Record]) -> Message:
        """Build, record and return a device-to-server reply carrying ``records``."""
        if self._last_down is None:
            raise RuntimeError(f"{self.client}: a device replies only after an instruction")
        message = Message(RecordDict(dict(records)), reply_to=self._last_down)
        record_message(self.ledger, server_round, self.client, "up", message, self.purposes)
        return message


def _metrics_of(reply: Message) -> dict[str, float]:
    if reply.has_error():
        return {}
    values: dict[str, float] = {}
    for record in reply.content.metric_records.values():
        for key, value in record.items():
            if isinstance(value, int | float):
                values[key] = float(value)
    return values


def _round_of(messages: Iterable[Message]) -> int | None:
    # FedAvg and EcoFed both put the round into the request's ConfigRecord.
    for message in messages:
        if message.has_content():
            for record in message.content.config_records.values():
                value = record.get("server-round")
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
    return None


class DelegatingGrid(Grid):
    """A Grid that hands every call to the Grid it wraps; subclasses override what they watch.

    Parameters
    ----------
    grid : Grid
        The Grid to wrap (the ServerApp's own).
    """

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    def set_run(self, run: Run) -> None:
        self.grid.set_run(run)

    @property
    def run(self) -> Run:
        return self.grid.run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return self.grid.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self.grid.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self.grid.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self.grid.send_and_receive(messages, timeout=timeout)


class MeteredGrid(DelegatingGrid):
    """A Grid that records every message sent and every reply received in a Ledger.

    Wraps the Grid a ServerApp is given; strategies use it as they would the original.
    Messages are measured after the wrapped Grid has sent them, with the metadata it set.
    The round of an exchange is the ``server-round`` of its requests' ConfigRecord (as
    ``FedAvg`` and EcoFed send it); replies count in the round of their requests, and
    messages before the first round (a node handshake) in round 1.

    Parameters
    ----------
    grid : Grid
        The Grid to wrap.
    ledger : Ledger
        Where bytes are recorded, per round, node, direction and purpose.
    purposes : Mapping[str, str] (default: RECORD_PURPOSES)
        Purpose of each top-level record key.

    Attributes
    ----------
    reply_metrics : dict[int, dict[str, dict[str, float]]]
        Per round and node: the values of the MetricRecords of the node's reply (device
        compute seconds, sample counts).
    """

    def __init__(
        self, grid: Grid, ledger: Ledger, purposes: Mapping[str, str] = RECORD_PURPOSES
    ) -> None:
        super().__init__(grid)
        self.ledger = ledger
        self.purposes = purposes
        self.round = 1  # a handshake before the first round counts in round 1
        self.reply_metrics: dict[int, dict[str, dict[str, float]]] = defaultdict(dict)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        sent = list(messages)
        ids = list(self.grid.push_messages(sent))
        self._record_sent(sent)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        replies = list(self.grid.pull_messages(message_ids))
        self._record_received(replies)
        return replies

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        sent = list(messages)
        replies = list(self.grid.send_and_receive(sent, timeout=timeout))
        self._record_sent(sent)
        self._record_received(replies)
        return replies

    def _record_sent(self, messages: list[Message]) -> None:
        self.round = _round_of(messages) or self.round
        for message in messages:
            node = str(message.metadata.dst_node_id)
            record_message(self.ledger, self.round, node, "down", message, self.purposes)

    def _record_received(self, replies: list[Message]) -> None:
        for reply in replies:
            node = str(reply.metadata.src_node_id)
            record_message(self.ledger, self.round, node, "up", reply, self.purposes)
            self.reply_metrics[self.round][node] = _metrics_of(reply)


class OfflineGrid(Grid):
    """A Grid of fixed node ids that sends nothing: a strategy builds a round's messages.

    ``strategy.configure_train(round, arrays, config, OfflineGrid([...]))`` returns the
    messages the strategy would send, to be measured without a federation.

    Parameters
    ----------
    node_ids : Iterable[int]
        The nodes the strategy may sample.
    """

    def __init__(self, node_ids: Iterable[int]) -> None:
        self.node_ids = list(node_ids)

    def set_run(self, run: Run) -> None:
        raise RuntimeError("this Grid runs outside any Flower run")

    @property
    def run(self) -> Run:
        raise RuntimeError("this Grid runs outside any Flower run")

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        with task_identity():
            return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.node_ids)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        raise RuntimeError("an OfflineGrid sends nothing; it only lets messages be built")

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        raise RuntimeError("an OfflineGrid sends nothing; it only lets messages be built")

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        raise RuntimeError("an OfflineGrid sends nothing; it only lets messages be built")
