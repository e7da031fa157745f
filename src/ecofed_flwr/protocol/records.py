"""The EcoFed upload's records on Flower: keys, the request and reply records, the spec.

One exchange per uploading client and refresh: the server sends a message of type
``train.ecofed_upload`` carrying a ConfigRecord; the client replies with

- ``activations`` (ArrayRecord): the encoded batch's arrays (codes, scales, ...);
- ``labels`` (ArrayRecord): one integer array ``labels``;
- ``meta`` (ConfigRecord): the codec metadata and the front's fingerprint;
- ``metrics`` (MetricRecord): ``num-examples`` and measured device seconds.

Only ``.npy`` arrays and scalars cross the wire. :class:`UploadSpec` is what a server
accepts; :func:`ecofed_flwr.protocol.decode_upload` checks every reply against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord

from ecofed_flwr.codec import Codec, EncodedBatch
from ecofed_flwr.handshake import FINGERPRINT_KEY

UPLOAD_ACTION = "ecofed_upload"
UPLOAD_MESSAGE_TYPE = f"train.{UPLOAD_ACTION}"
ACTIVATIONS_KEY = "activations"
LABELS_KEY = "labels"
META_KEY = "meta"
METRICS_KEY = "metrics"
CONFIG_KEY = "config"
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


#: Most dimensions an array of an upload may declare.
MAX_NDIM = 8


def is_int(value: object) -> bool:
    """Whether ``value`` is an integer (Python or NumPy) and not a boolean."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


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
        if not 1 <= len(shape) <= MAX_NDIM or not all(is_int(d) and d >= 1 for d in shape):
            raise ValueError(
                f"activation_shape: expected 1 to {MAX_NDIM} ints >= 1, got {self.activation_shape}"
            )
        object.__setattr__(self, "activation_shape", tuple(int(d) for d in shape))
        for name in ("num_classes", "max_samples"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
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
