"""Image classification sets from the Hugging Face Hub (or its local cache).

``datasets`` is imported only when a Hub set is loaded; offline, the load fails within a few
seconds instead of retrying the network.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import numpy as np

from .arrays import to_uint8_images
from .datasets import ArrayDataset
from .errors import DataError

__all__ = ["load_hf_dataset"]

_HUB_CHECK_TIMEOUT_S = 3.0
_TRUE_VALUES = {"1", "ON", "YES", "TRUE"}


def _hf_offline_reason() -> str | None:
    """Why the Hub must not be contacted, or None when it looks reachable."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in _TRUE_VALUES:
            return f"offline mode is on ({var}={os.environ[var]})"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    result: list[bool] = []

    def probe() -> None:
        # Name resolution has no timeout of its own, hence the thread and the join below.
        import socket

        try:
            with socket.create_connection((host, port), timeout=_HUB_CHECK_TIMEOUT_S):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(_HUB_CHECK_TIMEOUT_S + 0.5)
    if result and result[0]:
        return None
    # Without this check `datasets` retries for about 25 s before giving up.
    return f"the Hub at {host}:{port} cannot be reached"


@contextlib.contextmanager
def _hf_forced_offline(enabled: bool) -> Iterator[None]:
    """Force `datasets` / `huggingface_hub` into offline mode for one call.

    Both libraries read HF_*_OFFLINE once at import, so an environment variable set later
    (or an unreachable Hub) would otherwise not stop their network retries. Not
    thread-safe: it flips module globals for the duration of the block.
    """
    if not enabled:
        yield
        return
    import datasets.config as hf_config
    import huggingface_hub.constants as hub_constants

    targets: list[tuple[Any, str]] = [
        (hf_config, "HF_HUB_OFFLINE"),
        (hf_config, "HF_DATASETS_OFFLINE"),
        (hub_constants, "HF_HUB_OFFLINE"),
    ]
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr in targets if hasattr(obj, attr)]
    try:
        for obj, attr, _ in saved:
            setattr(obj, attr, True)
        yield
    finally:
        for obj, attr, value in saved:
            setattr(obj, attr, value)


_IMAGE_KEYS = ("image", "img", "pixel_values", "images")
_LABEL_KEYS = ("label", "labels", "fine_label", "coarse_label", "target")


def _to_uint8_image_batch(batch: Any, name: str, key: str) -> np.ndarray:
    arrs = [np.asarray(x) for x in batch]
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1:
        raise DataError(
            f"{name}: images in column {key!r} have different shapes {sorted(shapes)[:4]}; "
            "only fixed-size images are supported"
        )
    return to_uint8_images(np.stack(arrs), f"{name}: column {key!r}")


def _hf_to_array_dataset(
    ds: Any, name: str, image_key: str | None, label_key: str | None
) -> ArrayDataset:
    """Convert a Hugging Face ``datasets.Dataset`` into an :class:`ArrayDataset`."""
    import datasets as hf_datasets

    features = ds.features
    columns = list(features)
    if image_key is None:
        image_key = next(
            (c for c in columns if isinstance(features[c], hf_datasets.Image)),
            next((c for c in _IMAGE_KEYS if c in columns), None),
        )
    if label_key is None:
        label_key = next(
            (c for c in columns if isinstance(features[c], hf_datasets.ClassLabel)),
            next((c for c in _LABEL_KEYS if c in columns), None),
        )
    for role, key in (("image", image_key), ("label", label_key)):
        if key is None or key not in columns:
            raise DataError(
                f"{name}: cannot find the {role} column (got {key!r}); columns are {columns}. "
                f"Pass {role}_key="
            )
    assert image_key is not None and label_key is not None
    if len(ds) == 0:
        raise DataError(f"{name}: the split is empty")

    image_parts: list[np.ndarray] = []
    label_parts: list[np.ndarray] = []
    numpy_ds = ds.select_columns([image_key, label_key]).with_format("numpy")
    for batch in numpy_ds.iter(batch_size=1024):
        image_parts.append(_to_uint8_image_batch(batch[image_key], name, image_key))
        label_parts.append(np.asarray(batch[label_key]))
    if len({p.shape[1:] for p in image_parts}) != 1:
        raise DataError(f"{name}: images do not all have the same shape")
    images = np.concatenate(image_parts)
    labels = np.concatenate(label_parts)
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{name}: label column {label_key!r} is {labels.dtype}, expected integer classes"
        )
    label_feature = features[label_key]
    if isinstance(label_feature, hf_datasets.ClassLabel):
        num_classes = int(label_feature.num_classes)
    else:
        num_classes = int(labels.max()) + 1
    return ArrayDataset(images=images, labels=labels, num_classes=num_classes, name=name)


def load_hf_dataset(
    name: str,
    split: str = "train",
    image_key: str | None = None,
    label_key: str | None = None,
) -> ArrayDataset:
    """Load an image classification data set from the Hugging Face Hub (or its cache).

    Parameters
    ----------
    name : str
        Hub name, e.g. ``"uoft-cs/cifar10"`` or ``"zalando-datasets/fashion_mnist"``.
    split : str, default "train"
        Split name on the Hub (``"train"``, ``"test"``, ...).
    image_key, label_key : str, optional
        Column names; by default the first ``Image`` / ``ClassLabel`` feature, else a
        common name (``image``, ``img`` / ``label``, ``fine_label``...).

    Returns
    -------
    ArrayDataset
        uint8 images, int64 labels, named ``"hf:<name>:<split>"``.

    Raises
    ------
    DataError
        Quickly (within a few seconds) when offline and the data set is not cached, when
        ``datasets`` is missing, or when the columns cannot be converted.

    Notes
    -----
    With ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` set, or when the Hub does not answer
    a 3 s connection probe, the load runs in offline mode so a local cache still works.
    """
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"Hugging Face data set name must be a non-empty string, got {name!r}")
    name = name.strip()
    try:
        import datasets as hf_datasets
    except ImportError as exc:  # pragma: no cover - datasets is a dependency of flwr-datasets
        raise DataError(
            "loading Hugging Face data sets needs the `datasets` package "
            "(pip install flwr-datasets)"
        ) from exc
    offline_reason = _hf_offline_reason()
    try:
        with _hf_forced_offline(offline_reason is not None):
            ds = hf_datasets.load_dataset(name, split=split)
    except Exception as exc:
        # datasets raises ConnectionError, FileNotFoundError, ValueError, DatasetNotFoundError...
        why = (
            f"{offline_reason} and it is not in the local Hugging Face cache"
            if offline_reason
            else "the download or preparation failed"
        )
        raise DataError(
            f"cannot load Hugging Face data set {name!r} (split {split!r}): {why} "
            f"[{type(exc).__name__}: {exc}]. Offline, use 'fashion_mnist' or 'synthetic'"
        ) from exc
    if not isinstance(ds, hf_datasets.Dataset):
        raise DataError(f"{name!r} split {split!r} did not give a single Dataset ({type(ds)})")
    return _hf_to_array_dataset(ds, f"hf:{name}:{split}", image_key, label_key)
