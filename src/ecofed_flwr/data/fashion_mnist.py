"""Fashion-MNIST from local idx files (optionally gzip-compressed), and the idx reader.

Only numpy is needed: this is the offline default of :func:`~ecofed_flwr.data.load_dataset`.
"""

from __future__ import annotations

import functools
import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ecofed_flwr import defaults

from .datasets import ArrayDataset
from .errors import DataError

__all__ = [
    "DEFAULT_FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR_ENV",
    "fashion_mnist_dir",
    "load_fashion_mnist",
    "read_idx_images",
    "read_idx_labels",
]

DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_DIR_ENV = defaults.FASHION_MNIST_DIR_ENV
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
