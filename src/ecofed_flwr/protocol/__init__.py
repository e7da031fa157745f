"""The EcoFed wire protocol on Flower records, shared by the strategies and the clients.

- :mod:`~ecofed_flwr.protocol.records`: the keys and records of the upload exchange,
  :class:`UploadSpec` (what a server accepts) and :class:`Upload` (what it accepted);
- :mod:`~ecofed_flwr.protocol.validation`: :func:`decode_upload`, the single validation
  point of every reply, whichever API carried it;
- :mod:`~ecofed_flwr.protocol.legacy`: the same upload flattened into a ``NumPyClient``'s fit
  result, and rebuilt from it for :func:`decode_upload`.

Bytes on the wire are measured by :mod:`ecofed_flwr.meter`.
"""

from ecofed_flwr.handshake import FINGERPRINT_KEY
from ecofed_flwr.protocol.records import (
    ACTIVATIONS_KEY,
    CONFIG_KEY,
    DEFAULT_MAX_ABS_VALUE,
    LABELS_ARRAY_KEY,
    LABELS_KEY,
    META_KEY,
    METRICS_KEY,
    NUM_EXAMPLES_KEY,
    REFUSAL_CATEGORIES,
    SECONDS_KEYS,
    UPLOAD_ACTION,
    UPLOAD_MESSAGE_TYPE,
    Upload,
    UploadRefused,
    UploadSpec,
    config_value,
    encoded_to_records,
    label_dtype,
)
from ecofed_flwr.protocol.validation import decode_upload

__all__ = [
    "ACTIVATIONS_KEY",
    "CONFIG_KEY",
    "DEFAULT_MAX_ABS_VALUE",
    "FINGERPRINT_KEY",
    "LABELS_ARRAY_KEY",
    "LABELS_KEY",
    "META_KEY",
    "METRICS_KEY",
    "NUM_EXAMPLES_KEY",
    "REFUSAL_CATEGORIES",
    "SECONDS_KEYS",
    "UPLOAD_ACTION",
    "UPLOAD_MESSAGE_TYPE",
    "Upload",
    "UploadRefused",
    "UploadSpec",
    "config_value",
    "decode_upload",
    "encoded_to_records",
    "label_dtype",
]
