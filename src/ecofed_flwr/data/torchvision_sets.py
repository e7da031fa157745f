"""torchvision's classic image data sets, read from files already on disk (never downloaded).

Each supported data set is described as data (:data:`TORCHVISION_SETS`): how torchvision
selects a split and which folder it expects under the root, so the error for missing files
can say exactly what to put where.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .arrays import to_class_labels, to_uint8_images
from .datasets import ArrayDataset
from .errors import DataError

__all__ = ["TORCHVISION_SETS", "TorchvisionSet", "load_torchvision"]


@dataclass(frozen=True)
class TorchvisionSet:
    """How to open one ``torchvision.datasets`` class offline.

    Parameters
    ----------
    split_argument : {"train", "split"}
        ``"train"``: the class takes ``train=True/False``; ``"split"``: it takes
        ``split="<name>"``.
    splits : tuple of str
        Splits that carry class labels.
    files : str
        What torchvision reads under the root, shown when it is missing.
    num_classes : int
        Number of classes.
    """

    split_argument: Literal["train", "split"]
    splits: tuple[str, ...]
    files: str
    num_classes: int = 10


_TRAIN_TEST = ("train", "test")
TORCHVISION_SETS: dict[str, TorchvisionSet] = {
    "MNIST": TorchvisionSet("train", _TRAIN_TEST, "MNIST/raw/*-idx?-ubyte"),
    "FashionMNIST": TorchvisionSet("train", _TRAIN_TEST, "FashionMNIST/raw/*-idx?-ubyte"),
    "KMNIST": TorchvisionSet("train", _TRAIN_TEST, "KMNIST/raw/*-idx?-ubyte"),
    "CIFAR10": TorchvisionSet("train", _TRAIN_TEST, "cifar-10-batches-py/"),
    "CIFAR100": TorchvisionSet("train", _TRAIN_TEST, "cifar-100-python/", 100),
    "SVHN": TorchvisionSet("split", ("train", "test", "extra"), "{split}_32x32.mat"),
    "STL10": TorchvisionSet("split", _TRAIN_TEST, "stl10_binary/"),
}


def _lookup(name: str) -> str:
    by_lower = {key.lower(): key for key in TORCHVISION_SETS}
    key = by_lower.get(name.strip().lower())
    if key is None:
        raise DataError(
            f"unsupported torchvision data set {name!r}; supported: {', '.join(TORCHVISION_SETS)}"
        )
    return key


def load_torchvision(name: str, root: str | Path, split: str = "train") -> ArrayDataset:
    """Load a torchvision data set from files under ``root``, with ``download=False``.

    Parameters
    ----------
    name : str
        A key of :data:`TORCHVISION_SETS` (any case), e.g. ``"CIFAR10"``.
    root : str or pathlib.Path
        The folder passed to torchvision as ``root``.
    split : str, default "train"
        One of the data set's labelled splits (``"train"``, ``"test"``; SVHN also
        ``"extra"``).

    Returns
    -------
    ArrayDataset
        uint8 images and int64 labels, named ``"torchvision:<name>:<split>"``.

    Raises
    ------
    DataError
        For an unsupported name or split, when torchvision does not find its files (the
        message names the root, the files expected there and how to fetch them on a machine
        with internet), or when torchvision needs a package that is missing (SVHN reads
        ``.mat`` files with scipy).
    """
    key = _lookup(name)
    entry = TORCHVISION_SETS[key]
    if split not in entry.splits:
        raise DataError(
            f"torchvision {key} has no labelled split {split!r}; valid: {list(entry.splits)}"
        )
    folder = Path(root).expanduser()
    try:
        from torchvision import datasets as tv_datasets
    except ImportError as exc:  # pragma: no cover - torchvision is a dependency
        raise DataError("torchvision data sets need the torchvision package") from exc
    split_kwargs: dict[str, Any] = (
        {"train": split == "train"} if entry.split_argument == "train" else {"split": split}
    )
    try:
        dataset = getattr(tv_datasets, key)(root=str(folder), download=False, **split_kwargs)
    except ImportError as exc:
        raise DataError(f"torchvision {key} needs a package that is missing: {exc}") from exc
    except (RuntimeError, OSError) as exc:
        expected = folder / entry.files.format(split=split)
        raise DataError(
            f"torchvision {key} ({split}) was not found under root {folder}: torchvision "
            f"expects {expected} ({exc}). Nothing is downloaded at run time; to get the files, "
            f"run `torchvision.datasets.{key}(root='{folder}', download=True)` on a machine "
            "with internet and copy the folder here, then pass "
            f"dataset='torchvision:{key}:{folder}'"
        ) from exc
    what = f"torchvision:{key}:{split}"
    images = to_uint8_images(np.asarray(dataset.data), what)
    raw_labels = getattr(dataset, "targets", None)
    if raw_labels is None:
        raw_labels = dataset.labels
    labels = to_class_labels(np.asarray(raw_labels), what, count=len(images))
    return ArrayDataset(images=images, labels=labels, num_classes=entry.num_classes, name=what)
