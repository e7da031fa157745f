"""Data set names as used in configuration, and the one loader that resolves them.

A name is ``<source>`` or ``<source>:<argument>``; every source is one entry of a table
(:data:`DATA_SOURCES`), so adding a source is adding a row, not a branch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets import ArrayDataset
from .errors import DataError, check_int
from .fashion_mnist import load_fashion_mnist
from .huggingface import load_hf_dataset
from .local_files import load_image_folder, load_npz
from .synthetic import SYNTHETIC_DEFAULT_SIZES, make_synthetic
from .torchvision_sets import load_torchvision

__all__ = ["DATASET_NAMES", "DATA_SOURCES", "DataRequest", "DataSource", "load_dataset"]


@dataclass(frozen=True)
class DataRequest:
    """What :func:`load_dataset` was asked for, as handed to a source's loader.

    Parameters
    ----------
    argument : str
        The part of the name after the first ``:`` (empty for plain names).
    split : str
        Split to load.
    data_dir : pathlib.Path or None
        Folder given besides the name.
    num_samples : int or None
        Requested size.
    seed : int
        Seed of generated data or of the subset.
    """

    argument: str
    split: str
    data_dir: Path | None
    num_samples: int | None
    seed: int


@dataclass(frozen=True)
class DataSource:
    """One kind of data set name.

    Parameters
    ----------
    usage : str
        How the name is written, shown in help and errors (e.g. ``"npz:<path>"``).
    load : Callable[[DataRequest], ArrayDataset]
        Loads the requested split.
    takes_argument : bool
        Whether the name must carry ``:<argument>`` (a path, a hub name, ...).
    sized : bool, default False
        Whether ``load`` itself makes ``num_samples`` samples (generated data); otherwise a
        class-stratified subset of that size is taken from what it returns.
    """

    usage: str
    load: Callable[[DataRequest], ArrayDataset]
    takes_argument: bool
    sized: bool = False


def _synthetic(request: DataRequest) -> ArrayDataset:
    n = request.num_samples or SYNTHETIC_DEFAULT_SIZES.get(request.split, 500)
    return make_synthetic(n, seed=request.seed, split=request.split)


def _torchvision(request: DataRequest) -> ArrayDataset:
    set_name, _, root = request.argument.partition(":")
    if root:
        return load_torchvision(set_name, root, request.split)
    if request.data_dir is None:
        raise DataError(
            f"torchvision:{set_name} needs the folder holding its files: write "
            f"'torchvision:{set_name}:<root>' or pass data_dir"
        )
    return load_torchvision(set_name, request.data_dir, request.split)


_FASHION_MNIST = DataSource(
    "fashion_mnist", lambda r: load_fashion_mnist(r.split, data_dir=r.data_dir), False
)
DATA_SOURCES: dict[str, DataSource] = {
    "fashion_mnist": _FASHION_MNIST,
    "fashion-mnist": _FASHION_MNIST,
    "synthetic": DataSource("synthetic", _synthetic, False, sized=True),
    "hf": DataSource("hf:<hub name>", lambda r: load_hf_dataset(r.argument, split=r.split), True),
    "npz": DataSource("npz:<path>", lambda r: load_npz(r.argument, r.split), True),
    "folder": DataSource("folder:<path>", lambda r: load_image_folder(r.argument, r.split), True),
    "torchvision": DataSource("torchvision:<name>[:<root>]", _torchvision, True),
}
DATASET_NAMES = tuple(
    source.usage if source.takes_argument else prefix for prefix, source in DATA_SOURCES.items()
)


def _subset_indices(labels: np.ndarray, num_samples: int, seed: int) -> np.ndarray:
    """Class-stratified random subset: per-class quotas by largest remainder, seeded."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (num_samples / len(labels))
    quota = np.floor(exact).astype(np.int64)
    short = num_samples - int(quota.sum())
    if short:
        # Ties broken by a seeded draw so no class is always favoured.
        order = np.lexsort((rng.random(len(classes)), -(exact - quota)))
        quota[order[:short]] += 1
    picked = [
        rng.choice(np.flatnonzero(labels == cls), size=int(q), replace=False)
        for cls, q in zip(classes, quota, strict=True)
        if q
    ]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | Path | None = None,
    num_samples: int | None = None,
    seed: int = 0,
) -> ArrayDataset:
    """Load a data set by name.

    Parameters
    ----------
    name : str
        One of :data:`DATASET_NAMES`:

        - ``"fashion_mnist"`` (alias ``"fashion-mnist"``): local idx files;
        - ``"synthetic"``: generated, learnable data;
        - ``"hf:<hub name>"`` (e.g. ``"hf:uoft-cs/cifar10"``): Hugging Face, online or cached;
        - ``"npz:<path>"``: one archive with ``x_train, y_train, x_test, y_test``
          (see :func:`load_npz`);
        - ``"folder:<path>"``: ``<path>/train/<class>/*.png`` and ``<path>/test/<class>/*.png``
          (see :func:`load_image_folder`);
        - ``"torchvision:<name>[:<root>]"`` (e.g. ``"torchvision:CIFAR10:/data"``): a
          torchvision data set whose files are already under ``<root>``, never downloaded
          (see :func:`load_torchvision`).
    split : str, default "train"
        Split to load.
    data_dir : str or pathlib.Path, optional
        The Fashion-MNIST folder, or the torchvision root when the name gives none; ignored
        by the other sources.
    num_samples : int, optional
        For ``"synthetic"``, the number of samples to generate (default 2000 for train,
        500 otherwise). For the others, keep a class-stratified random subset of this size,
        deterministic for ``seed``, in original order.
    seed : int, default 0
        Seed of the synthetic data or of the subset.

    Returns
    -------
    ArrayDataset

    Raises
    ------
    DataError
        For an unknown name (the message lists valid names), a missing or unexpected
        ``:<argument>``, a bad ``num_samples`` or any loader error.
    """
    if not isinstance(name, str):
        raise DataError(f"data set name must be a string, got {name!r}")
    if num_samples is not None:
        check_int("num_samples", num_samples, 1)
    seed = check_int("seed", seed, 0)
    prefix, colon, argument = name.strip().partition(":")
    source = DATA_SOURCES.get(prefix.lower())
    if source is None:
        raise DataError(f"unknown data set {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    if source.takes_argument and not argument.strip():
        raise DataError(f"data set {name!r} lacks its argument; write {source.usage}")
    if not source.takes_argument and colon:
        raise DataError(f"data set {prefix!r} takes no ':<argument>', got {name!r}")
    folder = Path(data_dir).expanduser() if data_dir is not None else None
    request = DataRequest(argument.strip(), split, folder, num_samples, seed)
    data = source.load(request)
    if source.sized or num_samples is None or num_samples == len(data):
        return data
    if num_samples > len(data):
        raise DataError(f"num_samples={num_samples} exceeds the {len(data)} samples of {data.name}")
    return data.subset(_subset_indices(data.labels, num_samples, seed))
