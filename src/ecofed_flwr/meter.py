"""The byte meter: whatever moves a Flower message measures its bytes, by purpose, here.

Flower 1.42 sends a message as a tree of content-addressed objects (message, record dict,
records, arrays, array chunks), each serialized with a small header and sent once however
often it occurs. :func:`purpose_nbytes` counts every object of a message's tree once, under
the purpose of the first part that holds it (activations, labels, gradients, weights; the
rest is ``control``), so the parts always add up to :func:`wire_nbytes`.
:class:`ByteMeter` books them in a :class:`~ecofed_flwr.ledger.Ledger`: both EcoFed
strategies, the baselines' metered Grid and the benchmarks measure through it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.supercore.inflatable.inflatable_object import (
    InflatableObject,
    get_all_nested_objects,
    no_object_id_recompute,
)

from ecofed_flwr.ledger import Direction, Ledger

__all__ = [
    "RECORD_PURPOSES",
    "ByteMeter",
    "ByteSplit",
    "purpose_nbytes",
    "split_reply_bytes",
    "wire_nbytes",
]

#: Purpose of the bytes of each top-level record key (``arrays`` is the key of Flower's
#: ``FedAvg`` for the model); any other record is ``control``.
RECORD_PURPOSES: dict[str, str] = {
    "activations": "activations",
    "labels": "labels",
    "gradients": "gradients",
    "arrays": "weights",
    "front": "weights",
    "head": "weights",
}

#: What a message's parts may be: records or arrays of its content.
Part = InflatableObject


def wire_nbytes(obj: Message | ArrayRecord | ConfigRecord | MetricRecord) -> int:
    """Bytes Flower transmits for ``obj``: every object of its tree, serialized, once."""
    tree: dict[str, InflatableObject] = get_all_nested_objects(obj)
    return sum(len(node.deflate()) for node in tree.values())


def record_parts(
    message: Message, purposes: Mapping[str, str] = RECORD_PURPOSES
) -> dict[str, list[Part]]:
    """The top-level records of ``message`` by purpose (records ``purposes`` does not name,
    and error replies, have none)."""
    parts: dict[str, list[Part]] = defaultdict(list)
    if message.has_content():
        for key, record in message.content.items():
            if key in purposes:
                parts[purposes[key]].append(record)
    return dict(parts)


def purpose_nbytes(
    message: Message, parts: Mapping[str, Iterable[Part]] | None = None
) -> dict[str, int]:
    """Serialized bytes of ``message`` by purpose; they sum to :func:`wire_nbytes`.

    Every object of the message's tree is counted once, under the purpose of the first part
    (in ``parts``' order) whose tree holds it; everything else (the message, its record dict,
    records of no purpose) is ``control``. ``parts`` defaults to :func:`record_parts`.
    """
    sizes: dict[str, int] = defaultdict(int)
    counted: set[str] = set()
    # Object ids are hashes of nested content: compute each once per call, as Flower does
    # when it pushes a message.
    with no_object_id_recompute():
        tree = get_all_nested_objects(message)
        for purpose, objects in (record_parts(message) if parts is None else parts).items():
            for obj in objects:
                for object_id in get_all_nested_objects(obj):
                    if object_id in tree and object_id not in counted:
                        counted.add(object_id)
                        sizes[purpose] += len(tree[object_id].deflate())
        for object_id, node in tree.items():
            if object_id not in counted:
                counted.add(object_id)
                sizes["control"] += len(node.deflate())
    return dict(sizes)


@dataclass(frozen=True)
class ByteSplit:
    """A message's serialized bytes by purpose; ``control`` is everything else (never < 0)."""

    total: int
    activations: int = 0
    labels: int = 0

    def __post_init__(self) -> None:
        if min(self.activations, self.labels) < 0 or self.activations + self.labels > self.total:
            raise ValueError(
                f"ByteSplit: expected 0 <= activations + labels <= total, got {self.activations}"
                f" + {self.labels} > {self.total}"
            )

    @property
    def control(self) -> int:
        return self.total - self.activations - self.labels


def split_reply_bytes(reply: Message) -> ByteSplit:
    """Serialized bytes of an upload reply: activations, labels and the rest.

    An object in the ``activations`` record's tree counts as activations, one in the
    ``labels`` tree only as labels, everything else as control; shared or identical records
    and arrays are counted once, and the parts add up to :func:`wire_nbytes`.
    """
    sizes = purpose_nbytes(reply)
    return ByteSplit(
        total=sum(sizes.values()),
        activations=sizes.get("activations", 0),
        labels=sizes.get("labels", 0),
    )


class ByteMeter:
    """Books every message a channel moves in a ledger: one message, its bytes by purpose.

    Parameters
    ----------
    ledger : Ledger
        Where bytes go, per round, client, direction and purpose.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def book(
        self,
        server_round: int,
        client: str,
        direction: Direction,
        message: Message,
        parts: Mapping[str, Iterable[Part]] | None = None,
    ) -> dict[str, int]:
        """Measure ``message`` (:func:`purpose_nbytes`) and book it; return its bytes by purpose.

        The message counts once (on its ``control`` entry); purposes with no bytes are not
        booked.
        """
        sizes = purpose_nbytes(message, parts)
        for purpose, nbytes in sizes.items():
            if purpose != "control" and nbytes:
                self.ledger.add(server_round, client, direction, purpose, nbytes, messages=0)
        self.ledger.add(server_round, client, direction, "control", sizes.get("control", 0))
        return sizes
