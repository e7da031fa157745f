"""The single validation point of an EcoFed upload: :func:`decode_upload`.

A server checks every reply with it: it refuses anything that is not exactly an upload reply
(:mod:`ecofed_flwr.protocol.records`), before using or allocating more than the spec allows.
``.npy`` arrays are parsed here, never unpickled.
"""

from __future__ import annotations

import io
import math
import warnings
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict
from flwr.common.constant import SType

from ecofed_flwr.codec import ArraySpec, CodecError, EncodedBatch, PayloadValueError
from ecofed_flwr.handshake import FINGERPRINT_KEY
from ecofed_flwr.protocol.records import (
    ACTIVATIONS_KEY,
    LABELS_ARRAY_KEY,
    LABELS_KEY,
    MAX_NDIM,
    META_KEY,
    METRICS_KEY,
    NUM_EXAMPLES_KEY,
    SECONDS_KEYS,
    Upload,
    UploadRefused,
    UploadSpec,
    is_int,
)

_RECORD_TYPES: dict[str, type] = {
    ACTIVATIONS_KEY: ArrayRecord,
    LABELS_KEY: ArrayRecord,
    META_KEY: ConfigRecord,
    METRICS_KEY: MetricRecord,
}
_LABEL_DTYPES = {
    np.dtype(t).name: np.dtype(t)
    for t in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64)
}
_LABEL_ITEMSIZE_MAX = 8
# np.save writes headers of about 128 bytes for the arrays of an upload.
_NPY_HEADER_MAX = 1024
_NPY_VERSIONS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_META_TEXT_MAX = 256


def decode_upload(content: RecordDict, spec: UploadSpec) -> Upload:
    """Check an upload reply's content against ``spec`` and decode it: the one validation point.

    Checks run cheapest first and nothing is read or allocated beyond what ``spec`` allows:

    1. structure: exactly the records ``activations``, ``labels`` (ArrayRecords), ``meta``
       (ConfigRecord) and ``metrics`` (MetricRecord), no record or array shared between keys,
       the codec's array keys and ``labels`` only;
    2. ``meta``: the front's fingerprint, the codec name, ``num_samples <= max_samples`` and
       the activation shape; ``metrics``: ``num-examples`` equal to the sample count, device
       seconds finite and ``>= 0``, no other keys;
    3. every array's declared ``stype``, dtype and shape (Array metadata) against the sizes the
       codec derives from the (capped) sample count, before any byte is read;
    4. each ``.npy`` header is parsed (no pickle, versions 1.0 and 2.0, C order) and must agree
       with the metadata and the data length exactly, then the data is viewed in place;
    5. the codec payload (:meth:`Codec.validate` with ``spec.max_abs_value``): statistics, every
       code, and a zstd frame decompressed into exactly the size the capped sample count gives;
    6. labels: integers in ``[0, num_classes)``.

    Parameters
    ----------
    content : RecordDict
        The reply's content (``reply.content``; the caller handles replies that carry an error).
    spec : UploadSpec
        What the server accepts.

    Returns
    -------
    Upload
        The validated batch (plain form), int64 labels, sample count and device seconds.

    Raises
    ------
    UploadRefused
        For any reply that is not a valid upload, with a ``category`` and a message saying
        what was expected and what arrived. Nothing else escapes from foreign bytes: every
        exception of the parsing and decoding steps is turned into ``UploadRefused``.
    """
    acts, label_record, meta_record, metric_record = _records(content, spec)
    meta, n = _meta(meta_record, spec)
    device_seconds = _metrics(metric_record, n)

    specs = spec.codec.array_specs(n, spec.activation_shape)
    for key, array in acts.items():
        _check_declared(array, specs[key], f"activations[{key!r}]")
    label_array = label_record[LABELS_ARRAY_KEY]
    labels_dtype = _check_declared_labels(label_array, n)

    arrays = {
        key: _read_npy(array, specs[key], f"activations[{key!r}]") for key, array in acts.items()
    }
    labels = _read_npy(
        label_array, ArraySpec(labels_dtype, (n,), n * labels_dtype.itemsize), "labels['labels']"
    )
    batch = _validated(EncodedBatch(arrays=arrays, meta=meta), spec)
    return Upload(
        batch=batch,
        labels=_checked_labels(labels, spec.num_classes),
        num_samples=n,
        device_seconds=device_seconds,
    )


def _short(value: object, limit: int = 80) -> str:
    """A repr of a value from the wire, bounded in size and work whatever the value."""
    if isinstance(value, str | bytes):
        text = repr(value[: limit + 1])
    elif isinstance(value, list | tuple):
        items = ", ".join(_short(v, limit) for v in value[:8])
        text = f"[{items}{', ...' if len(value) > 8 else ''}]"
    else:
        try:
            text = repr(value)
        except ValueError:  # an int too long to print
            text = f"<a {type(value).__name__} too long to print>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_int64(value: object) -> bool:
    return is_int(value) and _INT64_MIN <= value <= _INT64_MAX  # type: ignore[operator]


def _small_meta_value(value: object) -> bool:
    """Whether a meta value is of the size codec metadata has (it checks the meaning)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _is_int64(value)
    if isinstance(value, str | bytes):
        return len(value) <= _META_TEXT_MAX
    if isinstance(value, list):
        return len(value) <= MAX_NDIM and all(_small_meta_value(v) for v in value)
    return isinstance(value, float | bool)


def _records(
    content: RecordDict, spec: UploadSpec
) -> tuple[ArrayRecord, ArrayRecord, ConfigRecord, MetricRecord]:
    """Step 1: the four records, of the right types, unshared, with the right array keys."""
    if not isinstance(content, RecordDict):
        raise UploadRefused("structure", f"expected a RecordDict, got {type(content).__name__}")
    keys = list(content.keys())
    missing = [k for k in _RECORD_TYPES if k not in keys]
    if missing:
        raise UploadRefused(
            "missing-record", f"reply lacks the record(s) {missing}; it holds {_short(keys)}"
        )
    extra = [k for k in keys if k not in _RECORD_TYPES]
    if extra:
        raise UploadRefused(
            "structure",
            f"expected only the records {list(_RECORD_TYPES)}, got extra {_short(extra)}",
        )
    for key, kind in _RECORD_TYPES.items():
        if not isinstance(content[key], kind):
            raise UploadRefused(
                "structure",
                f"record '{key}': expected a {kind.__name__}, got {type(content[key]).__name__}",
            )
    records = [content[k] for k in _RECORD_TYPES]
    if len({id(r) for r in records}) != len(records):
        raise UploadRefused("structure", "expected four distinct records, got one record shared")
    acts, labels = content[ACTIVATIONS_KEY], content[LABELS_KEY]
    assert isinstance(acts, ArrayRecord) and isinstance(labels, ArrayRecord)
    want = spec.activation_keys
    if set(acts.keys()) != want:
        raise UploadRefused(
            "structure",
            f"record 'activations' ({spec.codec.name}): expected arrays {sorted(want)}, got "
            f"{_short(sorted(acts.keys()))}",
        )
    if list(labels.keys()) != [LABELS_ARRAY_KEY]:
        raise UploadRefused(
            "structure",
            f"record 'labels': expected one array ['labels'], got {_short(list(labels.keys()))}",
        )
    if any(a is b for a in acts.values() for b in labels.values()):
        raise UploadRefused("structure", "expected distinct arrays, got one array shared")
    meta, metrics = content[META_KEY], content[METRICS_KEY]
    assert isinstance(meta, ConfigRecord) and isinstance(metrics, MetricRecord)
    return acts, labels, meta, metrics


def _meta(record: ConfigRecord, spec: UploadSpec) -> tuple[dict[str, Any], int]:
    """Step 2: fingerprint, codec name, capped sample count and activation shape."""
    fields = dict(record)
    fingerprint = fields.pop(FINGERPRINT_KEY, None)
    if fingerprint != spec.fingerprint:
        shown = fingerprint[:16] + "..." if isinstance(fingerprint, str) else _short(fingerprint)
        raise UploadRefused(
            "fingerprint",
            f"meta['{FINGERPRINT_KEY}']: expected the server's front {spec.fingerprint[:16]}..., "
            f"got {shown}: activations come from another front",
        )
    name = fields.get("codec")
    if name != spec.codec.name:
        raise UploadRefused(
            "codec", f"meta['codec']: expected {spec.codec.name!r}, got {_short(name)}"
        )
    for key, item in fields.items():
        if not _small_meta_value(item):
            raise UploadRefused(
                "codec",
                f"meta[{_short(key)}]: expected an int64, a str of at most {_META_TEXT_MAX} "
                f"characters or a list of at most {MAX_NDIM} such values, got {_short(item)}",
            )
    value = fields.get("num_samples")
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise UploadRefused(
            "codec", f"meta['num_samples']: expected an int >= 1, got {_short(value)}"
        )
    n = int(value)
    if n > spec.max_samples:
        raise UploadRefused(
            "too-large",
            f"meta['num_samples']: expected at most {spec.max_samples}, got {_short(n)}",
        )
    shape = fields.get("sample_shape")
    if not isinstance(shape, list) or not all(is_int(d) for d in shape):
        raise UploadRefused(
            "codec", f"meta['sample_shape']: expected a list of ints, got {_short(shape)}"
        )
    if tuple(int(d) for d in shape) != spec.activation_shape:
        raise UploadRefused(
            "shape",
            f"meta['sample_shape']: expected {list(spec.activation_shape)}, got {_short(shape)}",
        )
    # ConfigRecord lists come back as lists; the codec checks the remaining keys and values.
    return {k: list(v) if isinstance(v, list) else v for k, v in fields.items()}, n


def _metrics(record: MetricRecord, n: int) -> float:
    """Step 2: num-examples == n, known keys only, device seconds finite and >= 0."""
    extra = sorted(set(record.keys()) - {NUM_EXAMPLES_KEY, *SECONDS_KEYS})
    if extra:
        raise UploadRefused(
            "metrics",
            f"record 'metrics': expected keys among {[NUM_EXAMPLES_KEY, *SECONDS_KEYS]}, got "
            f"extra {_short(extra)}",
        )
    claimed = record.get(NUM_EXAMPLES_KEY)
    if not is_int(claimed) or claimed != n:
        raise UploadRefused(
            "metrics",
            f"metrics['{NUM_EXAMPLES_KEY}']: expected {n} (an int), got {_short(claimed)}",
        )
    total = 0.0
    for key in SECONDS_KEYS:
        value = record.get(key, 0.0)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise UploadRefused(
                "metrics", f"metrics['{key}']: expected a number, got {_short(value)}"
            )
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond float range
            seconds = math.inf
        if not (math.isfinite(seconds) and seconds >= 0):
            raise UploadRefused(
                "metrics", f"metrics['{key}']: expected finite seconds >= 0, got {_short(value)}"
            )
        total += seconds
    if not math.isfinite(total):
        raise UploadRefused("metrics", f"metrics: expected finite total seconds, got {total!r}")
    return total


def _declared_shape(array: object, where: str) -> tuple[int, ...]:
    """An Array's declared shape, checked to be a short tuple of non-negative ints."""
    if not isinstance(array, Array):
        raise UploadRefused("structure", f"{where}: expected an Array, got {type(array).__name__}")
    if array.stype != SType.NUMPY:
        raise UploadRefused(
            "bad-array", f"{where}: expected stype {SType.NUMPY!r}, got {_short(array.stype)}"
        )
    shape = array.shape
    if (
        not isinstance(shape, tuple | list)
        or len(shape) > MAX_NDIM
        or not all(_is_int64(d) and d >= 0 for d in shape)
    ):
        raise UploadRefused(
            "bad-array",
            f"{where}: expected a shape of at most {MAX_NDIM} int64 >= 0, got {_short(shape)}",
        )
    if not isinstance(array.data, bytes):
        raise UploadRefused(
            "bad-array", f"{where}: expected bytes, got {type(array.data).__name__}"
        )
    return tuple(int(d) for d in shape)


def _check_size(nbytes: int, limit: int, array: Array, where: str) -> None:
    if nbytes > limit:
        raise UploadRefused(
            "too-large",
            f"{where}: expected at most {limit} bytes, got declared shape {_short(array.shape)} "
            f"({nbytes} bytes)",
        )
    if len(array.data) > limit + _NPY_HEADER_MAX:
        raise UploadRefused(
            "too-large",
            f"{where}: expected at most {limit + _NPY_HEADER_MAX} bytes of .npy data, got "
            f"{len(array.data)}",
        )


def _check_declared(array: object, want: ArraySpec, where: str) -> None:
    """Step 3 for a payload array: declared stype, dtype and shape as the codec lays them out."""
    shape = _declared_shape(array, where)
    assert isinstance(array, Array)
    _check_size(math.prod(shape) * want.dtype.itemsize, want.max_nbytes, array, where)
    if array.dtype != want.dtype.name:
        raise UploadRefused(
            "bad-array", f"{where}: expected dtype {want.dtype.name}, got {_short(array.dtype)}"
        )
    if want.shape is None:
        if len(shape) != 1 or shape[0] < 1:
            raise UploadRefused(
                "bad-array", f"{where}: expected a non-empty 1-D array, got shape {shape}"
            )
    elif shape != want.shape:
        raise UploadRefused("bad-array", f"{where}: expected shape {want.shape}, got {shape}")


def _check_declared_labels(array: object, n: int) -> np.dtype[Any]:
    """Step 3 for the labels: an integer dtype and shape ``(n,)``; returns the dtype."""
    where = "labels['labels']"
    shape = _declared_shape(array, where)
    assert isinstance(array, Array)
    dtype = _LABEL_DTYPES.get(array.dtype) if isinstance(array.dtype, str) else None
    itemsize = dtype.itemsize if dtype is not None else 1
    _check_size(math.prod(shape) * itemsize, n * _LABEL_ITEMSIZE_MAX, array, where)
    if dtype is None or shape != (n,):
        raise UploadRefused(
            "labels",
            f"{where}: expected {n} integers (shape ({n},), an int or uint dtype), got dtype "
            f"{_short(array.dtype)} shape {shape}",
        )
    return dtype


def _read_npy(array: Array, want: ArraySpec, where: str) -> np.ndarray:
    """Step 4: parse the ``.npy`` header without numpy.load, view the data in place.

    The declared dtype and shape (already checked) must match the header's exactly, and the
    data must hold exactly their bytes, so nothing is allocated from a header's claims.
    """
    data = array.data
    fp = io.BytesIO(data)
    try:
        # A header needing numpy's Python 2 fix-up warns; no writer of uploads produces one.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            version = np.lib.format.read_magic(fp)
            read_header = _NPY_VERSIONS.get(version)
            if read_header is None:
                raise ValueError(f"expected .npy format version 1.0 or 2.0, got {version}")
            shape, fortran_order, dtype = read_header(fp, max_header_size=_NPY_HEADER_MAX)
    except Exception as exc:  # foreign bytes: anything numpy raises means "not an .npy array"
        raise UploadRefused(
            "bad-array",
            f"{where}: expected .npy data, got an unreadable header ({type(exc).__name__}: "
            f"{_short(str(exc), 160)})",
        ) from exc
    declared = tuple(int(d) for d in array.shape)
    if dtype != want.dtype or tuple(shape) != declared or fortran_order:
        raise UploadRefused(
            "bad-array",
            f"{where}: expected a C-order .npy header for {want.dtype} {declared}, got "
            f"{_short(dtype)} {_short(shape)} fortran_order={fortran_order!r}",
        )
    offset = fp.tell()
    count = math.prod(declared)
    if len(data) - offset != count * dtype.itemsize:
        raise UploadRefused(
            "bad-array",
            f"{where}: expected {count * dtype.itemsize} data bytes after the header, got "
            f"{len(data) - offset}",
        )
    assert want.shape is None or declared == want.shape
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(declared)


def _validated(batch: EncodedBatch, spec: UploadSpec) -> EncodedBatch:
    """Step 5: the codec's full check with the value bound; the batch in plain form."""
    try:
        return spec.codec.validate(batch, max_abs_value=spec.max_abs_value)
    except PayloadValueError as err:
        raise UploadRefused("values", f"activations: {err}") from err
    except CodecError as err:
        raise UploadRefused("codec", f"activations: {err}") from err
    except Exception as err:  # foreign bytes: the codec's checks should leave nothing else
        raise UploadRefused(
            "codec", f"activations: unreadable payload ({type(err).__name__}: {_short(str(err))})"
        ) from err


def _checked_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Step 6: every label in ``[0, num_classes)``, as int64 (range checked in its own dtype)."""
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise UploadRefused(
            "labels", f"labels: expected values in [0, {num_classes}), got min {lo}, max {hi}"
        )
    return labels.astype(np.int64)
