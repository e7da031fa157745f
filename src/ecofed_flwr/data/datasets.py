"""In-memory image data sets: Fashion-MNIST from local idx files, synthetic data, Hugging Face.

Everything is loaded into one :class:`ArrayDataset` (uint8 images plus int64 labels) so that
partitioning, local splits and model input preparation work the same on every source.
Hugging Face ``datasets`` is imported lazily: the offline defaults (Fashion-MNIST files and
synthetic data) need only numpy.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from .arrays import to_uint8_images
from .errors import DataError

__all__ = [
    "DEFAULT_FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR_ENV",
    "ArrayDataset",
    "load_fashion_mnist",
    "make_synthetic",
    "load_hf_dataset",
    "read_idx_images",
    "read_idx_labels",
    "fashion_mnist_dir",
]

DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_DIR_ENV = "ECOFED_FASHION_MNIST_DIR"
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SYNTHETIC_SPLITS = {"train": 0, "test": 1, "validation": 2}
_SYNTHETIC_DEFAULT_SIZES = {"train": 2000, "test": 500, "validation": 500}
_HUB_CHECK_TIMEOUT_S = 3.0
_TRUE_VALUES = {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True, eq=False)
class ArrayDataset:
    """A labelled image data set held in memory.

    Parameters
    ----------
    images : numpy.ndarray
        ``uint8`` array of shape ``(N, H, W)`` (grey) or ``(N, H, W, C)``.
    labels : numpy.ndarray
        Integer class labels of shape ``(N,)``, in ``[0, num_classes)``; stored as ``int64``.
    num_classes : int
        Number of classes of the task (not only those present in this subset).
    name : str
        Human-readable source name, e.g. ``"fashion_mnist:train"``.

    Raises
    ------
    DataError
        If shapes, dtypes or label values are inconsistent.

    Notes
    -----
    Images returned by :func:`load_fashion_mnist` are read-only because they are shared by a
    cache; labels are always writable (read-only ones are copied); :meth:`subset` returns
    writable copies of both.
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    name: str

    def __post_init__(self) -> None:
        images = self.images
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
            kind = getattr(images, "dtype", type(images).__name__)
            raise DataError(f"{self.name}: images must be a uint8 numpy array, got {kind}")
        if images.ndim not in (3, 4):
            raise DataError(
                f"{self.name}: images must have shape (N, H, W) or (N, H, W, C), got {images.shape}"
            )
        labels = np.asarray(self.labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(
                f"{self.name}: labels must be a 1-D integer array, got dtype {labels.dtype} "
                f"and shape {labels.shape}"
            )
        if labels.dtype != np.int64 or not labels.flags.writeable:
            # A cached, read-only label array would make torch.from_numpy warn downstream;
            # labels are small, so every data set gets its own writable int64 copy.
            labels = labels.astype(np.int64)
            object.__setattr__(self, "labels", labels)
        if len(labels) != len(images):
            raise DataError(f"{self.name}: {len(images)} images but {len(labels)} labels")
        num_classes = self.num_classes
        if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
            raise DataError(f"{self.name}: num_classes must be an int, got {num_classes!r}")
        if num_classes < 1:
            raise DataError(f"{self.name}: num_classes must be >= 1, got {num_classes}")
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise DataError(
                f"{self.name}: labels must lie in [0, {num_classes}), "
                f"found [{labels.min()}, {labels.max()}]"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one image: ``(H, W)`` or ``(H, W, C)``."""
        return tuple(int(s) for s in self.images.shape[1:])

    @property
    def channels(self) -> int:
        """Number of colour channels (1 for ``(N, H, W)`` grey images)."""
        return 1 if self.images.ndim == 3 else int(self.images.shape[-1])

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        """Return the samples at ``indices`` (integer positions or a boolean mask).

        Parameters
        ----------
        indices : numpy.ndarray
            1-D integer positions (any order, repeats allowed) or a boolean mask of length N.

        Returns
        -------
        ArrayDataset
            A new data set with copied arrays and the same ``num_classes`` and ``name``.

        Raises
        ------
        DataError
            If ``indices`` is not 1-D, not integer/boolean, or out of range.
        """
        idx = np.asarray(indices)
        if idx.dtype == np.bool_:
            if idx.shape != (len(self),):
                raise DataError(
                    f"{self.name}: boolean mask of shape {idx.shape} does not match "
                    f"{len(self)} samples"
                )
            idx = np.flatnonzero(idx)
        if idx.size == 0:
            idx = idx.astype(np.int64)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise DataError(
                f"{self.name}: subset indices must be a 1-D integer array, got dtype "
                f"{idx.dtype} and shape {idx.shape}"
            )
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise DataError(
                f"{self.name}: subset indices must lie in [0, {len(self)}), "
                f"found [{idx.min()}, {idx.max()}]"
            )
        return ArrayDataset(
            images=self.images[idx],
            labels=self.labels[idx],
            num_classes=self.num_classes,
            name=self.name,
        )


# --------------------------------------------------------------------------- idx files


def _read_maybe_gzip(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        # gzip reports truncation as EOFError and bad data as BadGzipFile (an OSError).
        raise DataError(
            f"{path}: cannot read the file ({type(exc).__name__}: {exc}); it is missing, "
            "corrupt or truncated"
        ) from exc


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path: str, mtime_ns: int, size: int, kind: str) -> np.ndarray:
    del mtime_ns, size  # part of the cache key only: a rewritten file is read again
    p = Path(path)
    raw = _read_maybe_gzip(p)
    if kind == "images":
        header = 16
        if len(raw) < header:
            raise DataError(
                f"{p}: {len(raw)} bytes is too short for an idx image header ({header} bytes)"
            )
        magic, count, rows, cols = struct.unpack(">IIII", raw[:header])
        if magic != _IDX_IMAGES_MAGIC:
            raise DataError(
                f"{p}: bad magic number {magic}, expected {_IDX_IMAGES_MAGIC} "
                "(idx3 unsigned-byte images); is this an image file?"
            )
        shape: tuple[int, ...] = (count, rows, cols)
    else:
        header = 8
        if len(raw) < header:
            raise DataError(
                f"{p}: {len(raw)} bytes is too short for an idx label header ({header} bytes)"
            )
        magic, count = struct.unpack(">II", raw[:header])
        if magic != _IDX_LABELS_MAGIC:
            raise DataError(
                f"{p}: bad magic number {magic}, expected {_IDX_LABELS_MAGIC} "
                "(idx1 unsigned-byte labels); is this a label file?"
            )
        shape = (count,)
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise DataError(
            f"{p}: the header announces shape {shape} ({expected} bytes with header) but the "
            f"decompressed file has {len(raw)} bytes; it is truncated or corrupt"
        )
    # frombuffer on bytes is read-only, which protects the cached array from callers.
    arr = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
    if kind == "labels":
        arr = arr.astype(np.int64)
        arr.flags.writeable = False
    return arr


def _read_idx(path: str | Path, kind: str) -> np.ndarray:
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise DataError(f"{p}: cannot read the file ({exc})") from exc
    return _read_idx_cached(str(p.resolve()), st.st_mtime_ns, st.st_size, kind)


def read_idx_images(path: str | Path) -> np.ndarray:
    """Read an idx3 unsigned-byte image file (optionally gzip-compressed).

    Parameters
    ----------
    path : str or pathlib.Path
        File such as ``train-images-idx3-ubyte.gz``.

    Returns
    -------
    numpy.ndarray
        Read-only ``uint8`` array of shape ``(count, rows, cols)``.

    Raises
    ------
    DataError
        If the file is missing, not gzip when named ``.gz``, has the wrong magic number
        (2051) or a size that disagrees with its header. The message names the file.
    """
    return _read_idx(path, "images")


def read_idx_labels(path: str | Path) -> np.ndarray:
    """Read an idx1 unsigned-byte label file (optionally gzip-compressed).

    Parameters
    ----------
    path : str or pathlib.Path
        File such as ``train-labels-idx1-ubyte.gz``.

    Returns
    -------
    numpy.ndarray
        Read-only ``int64`` array of shape ``(count,)``.

    Raises
    ------
    DataError
        If the file is missing, corrupt, has the wrong magic number (2049) or a size that
        disagrees with its header.
    """
    return _read_idx(path, "labels")


# --------------------------------------------------------------------------- Fashion-MNIST


def fashion_mnist_dir(data_dir: str | Path | None = None) -> Path:
    """Resolve the Fashion-MNIST folder.

    Parameters
    ----------
    data_dir : str or pathlib.Path, optional
        Explicit folder; wins over everything else.

    Returns
    -------
    pathlib.Path
        ``data_dir``, else ``$ECOFED_FASHION_MNIST_DIR``, else
        :data:`DEFAULT_FASHION_MNIST_DIR`.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(FASHION_MNIST_DIR_ENV)
    return Path(env).expanduser() if env else Path(DEFAULT_FASHION_MNIST_DIR)


def _find_idx_file(folder: Path, stem: str) -> Path | None:
    # Debian ships .gz; people who gunzipped the files by hand should not be turned away.
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def load_fashion_mnist(split: str = "train", data_dir: str | Path | None = None) -> ArrayDataset:
    """Load Fashion-MNIST (28x28 grey, 10 classes) from local idx files.

    Parameters
    ----------
    split : {"train", "test"}
        ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
    data_dir : str or pathlib.Path, optional
        Folder holding the four ``*-idx?-ubyte[.gz]`` files. Defaults to
        ``$ECOFED_FASHION_MNIST_DIR`` or ``/usr/share/datasets/fashion-mnist``.

    Returns
    -------
    ArrayDataset
        Images ``(N, 28, 28)`` uint8 (read-only, cached per file) and labels 0..9.

    Raises
    ------
    DataError
        If the split is unknown, the files are missing (the message says how to install
        them) or corrupt (the message names the file).
    """
    if split not in _FASHION_FILES:
        raise DataError(
            f"unknown Fashion-MNIST split {split!r}; valid splits: {sorted(_FASHION_FILES)}"
        )
    folder = fashion_mnist_dir(data_dir)
    image_stem, label_stem = _FASHION_FILES[split]
    image_path = _find_idx_file(folder, image_stem)
    label_path = _find_idx_file(folder, label_stem)
    if image_path is None or label_path is None:
        missing = [s for s, p in ((image_stem, image_path), (label_stem, label_path)) if p is None]
        where = "does not exist" if not folder.is_dir() else f"lacks {', '.join(missing)}[.gz]"
        raise DataError(
            f"Fashion-MNIST {split} files not found: folder {folder} {where}. Install them "
            f"with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, files go to "
            f"{DEFAULT_FASHION_MNIST_DIR}), or pass data_dir= (or set "
            f"{FASHION_MNIST_DIR_ENV}) to a folder holding the four idx files"
        )
    images = read_idx_images(image_path)
    labels = read_idx_labels(label_path)
    if len(images) != len(labels):
        raise DataError(
            f"{image_path} holds {len(images)} images but {label_path} holds {len(labels)} labels"
        )
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise DataError(f"{label_path}: label {labels.max()} is out of range 0..9")
    return ArrayDataset(
        images=images,
        labels=labels,
        num_classes=len(FASHION_MNIST_CLASSES),
        name=f"fashion_mnist:{split}",
    )


# --------------------------------------------------------------------------- synthetic


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise DataError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise DataError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def make_synthetic(
    num_samples: int,
    num_classes: int = 10,
    image_size: int = 28,
    channels: int = 1,
    seed: int = 0,
    split: str = "train",
) -> ArrayDataset:
    """Generate a learnable synthetic image classification data set.

    Each class has one fixed, blocky random pattern (drawn from ``seed`` alone, so train
    and test share them); every sample is its class pattern plus Gaussian pixel noise drawn
    from ``(seed, split)``. Classes are balanced (counts differ by at most one) and the
    label order is shuffled. Coarse patterns survive resizing, so the data also suits
    models that upsample their input.

    Parameters
    ----------
    num_samples : int
        Number of images (>= 1).
    num_classes : int, default 10
        Number of classes (>= 1).
    image_size : int, default 28
        Height and width in pixels (>= 2).
    channels : int, default 1
        1 gives ``(N, H, W)`` images, more gives ``(N, H, W, C)``.
    seed : int, default 0
        Non-negative seed; the same seed and split always give the same data.
    split : {"train", "test", "validation"}
        Selects the noise and label stream.

    Returns
    -------
    ArrayDataset
        uint8 images and int64 labels, named ``"synthetic:<split>"``.

    Raises
    ------
    DataError
        On invalid arguments.
    """
    n = _check_int("num_samples", num_samples, 1)
    k = _check_int("num_classes", num_classes, 1)
    size = _check_int("image_size", image_size, 2)
    c = _check_int("channels", channels, 1)
    s = _check_int("seed", seed, 0)
    if split not in _SYNTHETIC_SPLITS:
        raise DataError(
            f"unknown synthetic split {split!r}; valid splits: {sorted(_SYNTHETIC_SPLITS)}"
        )

    pattern_rng = np.random.default_rng(np.random.SeedSequence([s, 0]))
    grid = min(size, 7)
    coarse = pattern_rng.uniform(0.0, 1.0, size=(k, grid, grid, c)).astype(np.float32)
    up = (np.arange(size) * grid) // size  # nearest-neighbour upsampling indices
    patterns = 30.0 + 195.0 * coarse[:, up][:, :, up]  # (k, size, size, c), in [30, 225]

    sample_rng = np.random.default_rng(np.random.SeedSequence([s, 1, _SYNTHETIC_SPLITS[split]]))
    labels = (np.arange(n) % k).astype(np.int64)
    sample_rng.shuffle(labels)
    images = np.empty((n, size, size, c), dtype=np.uint8)
    chunk = 4096  # bounds the float32 temporary for large requests
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        noise = sample_rng.standard_normal((stop - start, size, size, c), dtype=np.float32)
        block = patterns[labels[start:stop]] + 50.0 * noise
        np.clip(block, 0.0, 255.0, out=block)
        images[start:stop] = np.rint(block).astype(np.uint8)
    if c == 1:
        images = images[..., 0]
    return ArrayDataset(images=images, labels=labels, num_classes=k, name=f"synthetic:{split}")


# --------------------------------------------------------------------------- Hugging Face


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
