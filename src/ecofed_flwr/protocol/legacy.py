"""The EcoFed upload on Flower's legacy API: a NumPyClient's fit result and the upload records.

A legacy client (:class:`~ecofed_flwr.clients.EcoFedNumPyClient`) cannot send records: its
``fit`` returns a list of NumPy arrays, a sample count and a dict of scalars (``bool``,
``bytes``, ``float``, ``int``, ``str``). It sends the very upload reply of the Message API
(:mod:`ecofed_flwr.protocol`) flattened into these:

- the NDArrays list: the arrays of the ``activations`` and ``labels`` records, in the order
  the layout names them;
- ``num_examples``: the reply's ``num-examples`` (the sample count);
- the metrics dict:

  ======================== ======= ================================================
  key                      type    meaning
  ======================== ======= ================================================
  ``ecofed-arrays``        str     one ``record/key:dtype:shape`` entry per array,
                                   ``;``-separated, e.g. ``activations/codes:uint8:500x2048``
  ``meta.<key>``           scalar  an entry of the ``meta`` record (codec metadata and
                                   ``ecofed-fingerprint``)
  ``meta-list.<key>``      str     a list entry of ``meta`` as comma-separated ints
                                   (``sample_shape``)
  ``metric.<key>``         number  an entry of the ``metrics`` record besides
                                   ``num-examples`` (device seconds)
  ======================== ======= ================================================

Flower sends each array as ``.npy`` bytes (``np.save``, no pickle). The server rebuilds the
reply's RecordDict from the bytes as they arrived, declaring each array's dtype and shape from
the layout, and hands it to :func:`~ecofed_flwr.protocol.decode_upload`, the single validation
point; this module only parses the layout, bounded in size, and never reads an array's bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict
from flwr.common.constant import SType

from ecofed_flwr.protocol.records import (
    ACTIVATIONS_KEY,
    LABELS_KEY,
    META_KEY,
    METRICS_KEY,
    NUM_EXAMPLES_KEY,
    UploadRefused,
)

LAYOUT_KEY = "ecofed-arrays"
META_PREFIX = "meta."
META_LIST_PREFIX = "meta-list."
METRIC_PREFIX = "metric."

#: Scalars a legacy metrics dict may hold (Flower's ``Scalar``).
Scalar = bool | bytes | float | int | str

_ARRAY_RECORDS = (ACTIVATIONS_KEY, LABELS_KEY)
_MAX_ARRAYS = 8
_MAX_LAYOUT_CHARS = 1024
_MAX_LIST_CHARS = 256
_MAX_ENTRIES = 64
_ENTRY = re.compile(
    r"(?P<record>activations|labels)/(?P<key>[A-Za-z0-9_]{1,32}):(?P<dtype>[a-z0-9]{1,16}):"
    r"(?P<shape>(?:\d{1,19}(?:x\d{1,19}){0,7})?)"
)
_INT_LIST = re.compile(r"-?\d{1,19}(?:,-?\d{1,19}){0,7}")


def fit_result_from_content(content: RecordDict) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
    """Flatten an upload reply's content into what ``NumPyClient.fit`` returns.

    Parameters
    ----------
    content : RecordDict
        The device's own upload records (:func:`ecofed_flwr.clients.upload_content`).

    Returns
    -------
    tuple[list[np.ndarray], int, dict[str, Scalar]]
        The arrays, ``num_examples`` and the metrics dict described in this module.
    """
    arrays: list[np.ndarray] = []
    layout: list[str] = []
    for record_key in _ARRAY_RECORDS:
        record = content.array_records[record_key]
        for key, array in record.items():
            value = array.numpy()  # the device's own arrays, just encoded
            arrays.append(value)
            shape = "x".join(str(d) for d in value.shape)
            layout.append(f"{record_key}/{key}:{value.dtype.name}:{shape}")
    metrics: dict[str, Scalar] = {LAYOUT_KEY: ";".join(layout)}
    for key, item in content.config_records[META_KEY].items():
        if isinstance(item, list):
            metrics[META_LIST_PREFIX + key] = ",".join(str(int(v)) for v in item)
        else:
            metrics[META_PREFIX + key] = item
    metric_record = content.metric_records[METRICS_KEY]
    num_examples = int(metric_record[NUM_EXAMPLES_KEY])  # type: ignore[arg-type]
    for key, item in metric_record.items():
        if key != NUM_EXAMPLES_KEY:
            metrics[METRIC_PREFIX + key] = item  # type: ignore[assignment]
    return arrays, num_examples, metrics


def content_from_fit_result(
    tensors: Sequence[bytes],
    num_examples: int,
    metrics: Mapping[str, Scalar],
    tensor_type: str = SType.NUMPY,
) -> RecordDict:
    """Rebuild the upload reply's content from a legacy fit result, for ``decode_upload``.

    Nothing here reads an array's bytes: each becomes an :class:`~flwr.app.Array` holding the
    ``.npy`` bytes as they arrived, with the dtype and shape the layout declares, so
    :func:`~ecofed_flwr.protocol.decode_upload` checks declaration, header and data exactly as
    for a Message-API reply.

    Parameters
    ----------
    tensors : Sequence[bytes]
        ``FitRes.parameters.tensors``: one ``.npy`` serialization per array.
    num_examples : int
        ``FitRes.num_examples``.
    metrics : Mapping[str, Scalar]
        ``FitRes.metrics``.
    tensor_type : str (default: ``"numpy.ndarray"``)
        ``FitRes.parameters.tensor_type``: every array is declared with it, so that
        :func:`decode_upload` refuses another serialization exactly as on the Message API.

    Returns
    -------
    RecordDict
        ``activations``, ``labels``, ``meta`` and ``metrics``, as the Message API carries them.

    Raises
    ------
    UploadRefused
        If the metrics dict is not the layout above (category ``structure``, ``codec`` or
        ``metrics``), saying what was expected and what arrived.
    """
    if len(metrics) > _MAX_ENTRIES:
        raise UploadRefused(
            "structure", f"metrics: expected at most {_MAX_ENTRIES} entries, got {len(metrics)}"
        )
    entries = _layout(metrics.get(LAYOUT_KEY))
    if len(entries) != len(tensors):
        raise UploadRefused(
            "structure",
            f"metrics['{LAYOUT_KEY}'] names {len(entries)} arrays, the fit result holds "
            f"{len(tensors)}",
        )
    records: dict[str, dict[str, Array]] = {key: {} for key in _ARRAY_RECORDS}
    for (record, key, dtype, shape), data in zip(entries, tensors, strict=True):
        if key in records[record]:
            raise UploadRefused("structure", f"metrics['{LAYOUT_KEY}']: {record}/{key} twice")
        if not isinstance(data, bytes):
            raise UploadRefused(
                "bad-array", f"{record}[{key!r}]: expected bytes, got {type(data).__name__}"
            )
        records[record][key] = Array(dtype=dtype, shape=shape, stype=tensor_type, data=data)
    meta: dict[str, Scalar | list[int]] = {}
    values: dict[str, int | float | list[int] | list[float]] = {NUM_EXAMPLES_KEY: num_examples}
    for name, item in metrics.items():
        if name == LAYOUT_KEY:
            continue
        if name.startswith(META_PREFIX):
            meta[name.removeprefix(META_PREFIX)] = item
        elif name.startswith(META_LIST_PREFIX):
            meta[name.removeprefix(META_LIST_PREFIX)] = _int_list(name, item)
        elif name.startswith(METRIC_PREFIX):
            if name.removeprefix(METRIC_PREFIX) == NUM_EXAMPLES_KEY:
                raise UploadRefused(
                    "metrics",
                    f"metrics[{name!r}]: the sample count is FitRes.num_examples; a metric "
                    "may not restate or override it",
                )
            if not isinstance(item, int | float) or isinstance(item, bool):
                raise UploadRefused(
                    "metrics", f"metrics[{name!r}]: expected a number, got {type(item).__name__}"
                )
            values[name.removeprefix(METRIC_PREFIX)] = item
        else:
            raise UploadRefused(
                "structure",
                f"metrics: expected '{LAYOUT_KEY}' and keys starting with {META_PREFIX!r}, "
                f"{META_LIST_PREFIX!r} or {METRIC_PREFIX!r}, got {name[:40]!r}",
            )
    try:
        meta_record = ConfigRecord(meta)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise UploadRefused("codec", f"metrics: codec metadata Flower refuses: {err}") from err
    try:
        metric_record = MetricRecord(values)
    except (TypeError, ValueError) as err:
        raise UploadRefused("metrics", f"metrics: numbers Flower refuses: {err}") from err
    return RecordDict(
        {
            ACTIVATIONS_KEY: ArrayRecord(records[ACTIVATIONS_KEY]),
            LABELS_KEY: ArrayRecord(records[LABELS_KEY]),
            META_KEY: meta_record,
            METRICS_KEY: metric_record,
        }
    )


def _layout(value: object) -> list[tuple[str, str, str, tuple[int, ...]]]:
    """Parse ``ecofed-arrays`` (bounded before any regular expression runs)."""
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_LAYOUT_CHARS:
        shown = f"a str of {len(value)} characters" if isinstance(value, str) else repr(value)[:40]
        raise UploadRefused(
            "structure",
            f"metrics['{LAYOUT_KEY}']: expected the arrays' layout (a str of 1 to "
            f"{_MAX_LAYOUT_CHARS} characters), got {shown}",
        )
    parts = value.split(";")
    if len(parts) > _MAX_ARRAYS:
        raise UploadRefused(
            "structure",
            f"metrics['{LAYOUT_KEY}']: expected at most {_MAX_ARRAYS} arrays, got {len(parts)}",
        )
    entries = []
    for part in parts:
        match = _ENTRY.fullmatch(part)
        if match is None:
            raise UploadRefused(
                "structure",
                f"metrics['{LAYOUT_KEY}']: expected 'record/key:dtype:DxD...' entries with "
                f"record 'activations' or 'labels', got {part[:60]!r}",
            )
        shape = tuple(int(d) for d in match["shape"].split("x")) if match["shape"] else ()
        entries.append((match["record"], match["key"], match["dtype"], shape))
    return entries


def _int_list(name: str, value: object) -> list[int]:
    if not isinstance(value, str) or len(value) > _MAX_LIST_CHARS or not _INT_LIST.fullmatch(value):
        raise UploadRefused(
            "codec",
            f"metrics[{name[:40]!r}]: expected up to 8 comma-separated ints, got "
            f"{repr(value)[:40]}",
        )
    return [int(v) for v in value.split(",")]
