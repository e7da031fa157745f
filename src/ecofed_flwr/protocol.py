"""The EcoFed wire protocol on Flower records, shared by the strategy and the client.

One exchange per uploading client and refresh: the server sends a message of type
``train.ecofed_upload`` carrying a ConfigRecord; the client replies with

- ``activations`` (ArrayRecord): the encoded batch's arrays (codes, scales, ...);
- ``labels`` (ArrayRecord): one integer array ``labels``;
- ``meta`` (ConfigRecord): the codec metadata and the front's fingerprint;
- ``metrics`` (MetricRecord): ``num-examples`` and measured device seconds.

Only ``.npy`` arrays (parsed here, never unpickled) and scalars cross the wire. A server checks
every reply with :func:`decode_upload`, the single validation point: it refuses anything that
is not exactly such a reply, before using or allocating more than the spec allows.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.common.constant import SType
from flwr.supercore.inflatable.inflatable_object import InflatableObject, get_all_nested_objects

from ecofed_flwr.codec import ArraySpec, Codec, CodecError, EncodedBatch, PayloadValueError

UPLOAD_ACTION = "ecofed_upload"
UPLOAD_MESSAGE_TYPE = f"train.{UPLOAD_ACTION}"
ACTIVATIONS_KEY = "activations"
LABELS_KEY = "labels"
META_KEY = "meta"
METRICS_KEY = "metrics"
CONFIG_KEY = "config"
FINGERPRINT_KEY = "ecofed-fingerprint"
LABELS_ARRAY_KEY = "labels"
NUM_EXAMPLES_KEY = "num-examples"
#: Device time an upload may report, in seconds; their sum is :attr:`Upload.device_seconds`.
SECONDS_KEYS = ("front-seconds", "encode-seconds")
#: Default bound on ``|decoded activation|`` (see :class:`UploadSpec`).
DEFAULT_MAX_ABS_VALUE = 1e4

#: Every :attr:`UploadRefused.category`, in the order :func:`decode_upload` checks them.
REFUSAL_CATEGORIES = (
    "missing-record",  # a required record is absent
    "structure",  # extra, shared, wrongly typed records; wrong array keys
    "fingerprint",  # activations from another front (or no fingerprint)
    "codec",  # another codec, malformed codec metadata or payload, corrupt zstd data
    "too-large",  # more samples or bytes than the spec allows
    "shape",  # another activation shape
    "metrics",  # missing, extra or out-of-range metrics, num-examples != samples
    "bad-array",  # not a plain .npy array of the declared dtype and shape
    "values",  # codes or statistics outside the codec's range or the value bound
    "labels",  # labels of the wrong dtype, shape or range
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
_MAX_NDIM = 8
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_META_TEXT_MAX = 256


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


# --------------------------------------------------------------------------------------------
# validation of an upload reply


class UploadRefused(ValueError):
    """An upload reply that :func:`decode_upload` refuses.

    Parameters
    ----------
    category : str
        Short machine-readable reason, one of :data:`REFUSAL_CATEGORIES`.
    message : str
        What was expected and what arrived.
    """

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category


@dataclass(frozen=True)
class UploadSpec:
    """What the server accepts in an upload reply.

    Parameters
    ----------
    codec : Codec
        The codec every upload must use; the reply's ``meta`` must name exactly ``codec.name``.
    fingerprint : str
        Fingerprint of the frozen front every upload must come from.
    activation_shape : tuple[int, ...]
        Shape of one sample's activation at the cut.
    num_classes : int
        Labels must lie in ``[0, num_classes)``.
    max_samples : int
        Largest accepted sample count; together with the codec it bounds every array's bytes
        and the decompressed size of a zstd payload.
    max_abs_value : float (default: 1e4)
        Bound on ``|decoded activation|``: an accepted upload decodes, whole or sliced, to
        finite float32 values within it (for quantizers every value its statistics can
        represent must be; ``math.inf`` asks for finite values only).
    """

    codec: Codec
    fingerprint: str
    activation_shape: tuple[int, ...]
    num_classes: int
    max_samples: int
    max_abs_value: float = DEFAULT_MAX_ABS_VALUE

    def __post_init__(self) -> None:
        if not isinstance(self.codec, Codec):
            raise TypeError(f"codec: expected a Codec, got {type(self.codec).__name__}")
        if not isinstance(self.fingerprint, str):
            raise TypeError(f"fingerprint: expected a str, got {type(self.fingerprint).__name__}")
        shape = tuple(self.activation_shape)
        if not 1 <= len(shape) <= _MAX_NDIM or not all(_is_int(d) and d >= 1 for d in shape):
            raise ValueError(
                f"activation_shape: expected 1 to {_MAX_NDIM} ints >= 1, got "
                f"{self.activation_shape}"
            )
        object.__setattr__(self, "activation_shape", tuple(int(d) for d in shape))
        for name in ("num_classes", "max_samples"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        if not self.max_abs_value > 0:
            raise ValueError(f"max_abs_value: expected a number > 0, got {self.max_abs_value!r}")
        self.codec.array_specs(1, self.activation_shape)  # the codec can lay out this shape

    @property
    def activation_keys(self) -> set[str]:
        """Array keys of the activations record."""
        return set(self.codec.array_specs(1, self.activation_shape))


@dataclass(frozen=True)
class Upload:
    """An accepted upload.

    Attributes
    ----------
    batch : EncodedBatch
        The activations, validated, in the codec's plain form (any zstd stage already undone,
        ``meta["codec"]`` without ``+zstd``): ``codec.decode`` and ``codec.without_lossless``
        take it as is. Its arrays are read-only views of the reply's bytes (or of the
        decompressed codes).
    labels : np.ndarray
        int64 ``(num_samples,)``, each in ``[0, num_classes)``.
    num_samples : int
        Number of samples.
    device_seconds : float
        ``front-seconds + encode-seconds`` as the device reported them (0 for absent ones).
    """

    batch: EncodedBatch
    labels: np.ndarray
    num_samples: int
    device_seconds: float


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


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


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
    return _is_int(value) and _INT64_MIN <= value <= _INT64_MAX  # type: ignore[operator]


def _small_meta_value(value: object) -> bool:
    """Whether a meta value is of the size codec metadata has (it checks the meaning)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _is_int64(value)
    if isinstance(value, str | bytes):
        return len(value) <= _META_TEXT_MAX
    if isinstance(value, list):
        return len(value) <= _MAX_NDIM and all(_small_meta_value(v) for v in value)
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
                f"characters or a list of at most {_MAX_NDIM} such values, got {_short(item)}",
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
    if not isinstance(shape, list) or not all(_is_int(d) for d in shape):
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
    if not _is_int(claimed) or claimed != n:
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
        or len(shape) > _MAX_NDIM
        or not all(_is_int64(d) and d >= 0 for d in shape)
    ):
        raise UploadRefused(
            "bad-array",
            f"{where}: expected a shape of at most {_MAX_NDIM} int64 >= 0, got {_short(shape)}",
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


# --------------------------------------------------------------------------------------------
# bytes on the wire


def wire_nbytes(obj: Message | ArrayRecord | ConfigRecord | MetricRecord) -> int:
    """Bytes Flower transmits for ``obj``: every object of its tree, serialized.

    Flower 1.42 sends a message as a tree of content-addressed objects (message, record dict,
    records, arrays, array chunks), each serialized with a small header and sent once however
    often it occurs; this sums them.
    """
    tree: dict[str, InflatableObject] = get_all_nested_objects(obj)
    return sum(len(node.deflate()) for node in tree.values())


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

    Counted per transmitted object (Flower sends each distinct object once): an object in the
    ``activations`` record's tree counts as activations, one in the ``labels`` tree only as
    labels, everything else as control. Shared or identical records and arrays are thus
    counted once, and the parts always add up to :func:`wire_nbytes`.
    """
    tree: dict[str, InflatableObject] = get_all_nested_objects(reply)
    sizes = {object_id: len(node.deflate()) for object_id, node in tree.items()}
    if reply.has_error():
        return ByteSplit(total=sum(sizes.values()))
    counted: set[str] = set()

    def part(key: str) -> int:
        record = reply.content.get(key)
        if not isinstance(record, ArrayRecord):
            return 0
        ids = set(get_all_nested_objects(record)) & sizes.keys()
        ids -= counted
        counted.update(ids)
        return sum(sizes[i] for i in ids)

    activations = part(ACTIVATIONS_KEY)
    return ByteSplit(total=sum(sizes.values()), activations=activations, labels=part(LABELS_KEY))
