"""The EcoFed wire protocol on Flower records, shared by the strategy and the client.

One exchange per uploading client and refresh: the server sends a message of type
``train.ecofed_upload`` carrying a ConfigRecord; the client replies with

- ``activations`` (ArrayRecord): the encoded batch's arrays (codes, scales, ...);
- ``labels`` (ArrayRecord): one integer array ``labels``;
- ``meta`` (ConfigRecord): the codec metadata and the front's fingerprint;
- ``metrics`` (MetricRecord): ``num-examples`` and measured device seconds.

Only numpy arrays (read back with ``allow_pickle=False``) and scalars cross the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.supercore.inflatable.inflatable_object import InflatableObject, get_all_nested_objects

from ecofed_flwr.codec import EncodedBatch

UPLOAD_ACTION = "ecofed_upload"
UPLOAD_MESSAGE_TYPE = f"train.{UPLOAD_ACTION}"
ACTIVATIONS_KEY = "activations"
LABELS_KEY = "labels"
META_KEY = "meta"
METRICS_KEY = "metrics"
CONFIG_KEY = "config"
FINGERPRINT_KEY = "ecofed-fingerprint"


def label_dtype(num_classes: int) -> np.dtype[np.unsignedinteger]:
    """Smallest unsigned dtype that holds every label."""
    for dtype in (np.uint8, np.uint16):
        if num_classes <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    return np.dtype(np.uint32)


def config_value(record: ConfigRecord | MetricRecord, key: str, kind: type, default: object) -> Any:
    """``record[key]`` (or ``default``) checked to be of ``kind``; ints pass as floats."""
    value = record.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"'{key}' must be {kind.__name__}, got {value!r}")
    return value


def encoded_to_records(batch: EncodedBatch, fingerprint: str) -> tuple[ArrayRecord, ConfigRecord]:
    """The activations ArrayRecord and meta ConfigRecord of an encoded batch."""
    arrays = ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in batch.arrays.items()})
    meta = ConfigRecord({**batch.meta, FINGERPRINT_KEY: fingerprint})
    return arrays, meta


def records_to_encoded(arrays: ArrayRecord, meta: ConfigRecord) -> tuple[EncodedBatch, str]:
    """Inverse of :func:`encoded_to_records`: the batch (not yet validated) and fingerprint."""
    fields = dict(meta)
    fingerprint = fields.pop(FINGERPRINT_KEY, "")
    values = {k: list(v) if isinstance(v, list) else v for k, v in fields.items()}
    batch = EncodedBatch(
        arrays={k: arrays[k].numpy() for k in arrays},
        meta=values,  # type: ignore[arg-type]
    )
    return batch, str(fingerprint)


def wire_nbytes(obj: Message | ArrayRecord | ConfigRecord | MetricRecord) -> int:
    """Bytes Flower transmits for ``obj``: every object of its tree, serialized.

    Flower 1.42 sends a message as a tree of content-addressed objects (message, record dict,
    records, arrays, array chunks), each serialized with a small header; this sums them.
    """
    tree: dict[str, InflatableObject] = get_all_nested_objects(obj)
    return sum(len(node.deflate()) for node in tree.values())


@dataclass(frozen=True)
class ByteSplit:
    """A message's serialized bytes by purpose; ``control`` is everything else."""

    total: int
    activations: int = 0
    labels: int = 0

    @property
    def control(self) -> int:
        return self.total - self.activations - self.labels


def split_reply_bytes(reply: Message) -> ByteSplit:
    """Serialized bytes of an upload reply: activations, labels and the rest."""
    if reply.has_error():
        return ByteSplit(total=wire_nbytes(reply))
    content: RecordDict = reply.content
    acts = content.array_records.get(ACTIVATIONS_KEY)
    labels = content.array_records.get(LABELS_KEY)
    return ByteSplit(
        total=wire_nbytes(reply),
        activations=wire_nbytes(acts) if acts is not None else 0,
        labels=wire_nbytes(labels) if labels is not None else 0,
    )
