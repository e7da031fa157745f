"""Assembly of the EcoFed Flower App from its run config: model, front, data, partitions."""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

from ecofed_flwr.config import ConfigError, EcoFedConfig
from ecofed_flwr.data import (
    ArrayDataset,
    LocalData,
    draw_partition,
    load_dataset,
    parse_partitioning,
    partition_indices,
    prepare_images,
)
from ecofed_flwr.handshake import describe_front
from ecofed_flwr.models import SplitModel, create_split, split_identity


def num_classes_of(cfg: EcoFedConfig) -> int:
    """Classes of the configured data set."""
    return _dataset(cfg.dataset, "test", cfg.data_dir, cfg.seed).num_classes


@functools.lru_cache(maxsize=4)
def _dataset(name: str, split: str, data_dir: str, seed: int) -> ArrayDataset:
    return load_dataset(name, split, data_dir=data_dir or None, seed=seed)


@functools.lru_cache(maxsize=2)
def _split(
    model: str, cut: str, weights: str, num_classes: int, input_size: int, seed: int
) -> SplitModel:
    return create_split(model, cut, weights, num_classes, input_size, seed)


def import_model_module(spec: str) -> None:
    """Import the module ``model-module`` names (once per process), for its registrations.

    ``spec`` is a dotted module name importable where the apps run, or the path of a
    ``.py`` file (absolute, or relative to the working folder). Its top level registers
    the user's model (``register_sequential``/``register_model``), so that the ServerApp
    and every ClientApp, each in its own process, know the model the run config names.

    Raises
    ------
    ConfigError
        If the module cannot be found or raises while it is imported.
    """
    if not spec:
        return
    path = Path(spec).expanduser()
    try:
        if spec.endswith(".py") or path.is_file():
            path = path.resolve()
            name = "ecofed_user_models_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
            if name in sys.modules:
                return
            loader = importlib.util.spec_from_file_location(name, path)
            if loader is None or loader.loader is None or not path.is_file():
                raise FileNotFoundError(f"no Python file at {path}")
            module = importlib.util.module_from_spec(loader)
            sys.modules[name] = module
            try:
                loader.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
        else:
            importlib.import_module(spec)
    except Exception as err:
        raise ConfigError(
            f"model-module {spec!r} could not be imported: {type(err).__name__}: {err}"
        ) from err


def build_split(cfg: EcoFedConfig) -> SplitModel:
    """The split model of ``cfg`` (cached per process: Ray actors are long-lived), after
    importing ``model-module`` (where a user's own model is registered)."""
    import_model_module(cfg.model_module)
    return _split(cfg.model, cfg.cut, cfg.weights, num_classes_of(cfg), cfg.input_size, cfg.seed)


def describe_config(cfg: EcoFedConfig) -> dict[str, str | int]:
    """The handshake description of ``cfg``'s front, without building it or reading data.

    Model, cut, weights and input size are those of :func:`build_split` (after importing
    ``model-module``); the fingerprint is empty: it is known only once the front is built.
    """
    import_model_module(cfg.model_module)
    model, cut, weights, input_size = split_identity(
        cfg.model, cfg.cut, cfg.weights, cfg.input_size
    )
    return describe_front("", model, cut, weights, input_size)


def _prepare(split: SplitModel, data: ArrayDataset) -> torch.Tensor:
    return prepare_images(data.images, split.input_size, split.in_chans, split.mean, split.std)


def client_data(cfg: EcoFedConfig, partition_id: int, num_partitions: int) -> LocalData:
    """Partition ``partition_id`` of the configured training set, ready for the front."""
    if not 0 <= partition_id < num_partitions:
        raise ValueError(f"partition-id {partition_id} outside [0, {num_partitions})")
    train = _dataset(cfg.dataset, "train", cfg.data_dir, cfg.seed)
    if partition_draw(cfg, num_partitions, len(train)) == "with-replacement":
        if not cfg.samples_per_client:
            raise ValueError(
                f"{num_partitions} devices share {len(train)} samples: set samples-per-client "
                "(the size of each partition drawn with replacement)"
            )
        size = min(cfg.samples_per_client, len(train))
        kwargs = parse_partitioning(cfg.partitioning)
        indices = draw_partition(train.labels, partition_id, size, seed=cfg.seed, **kwargs)
    else:
        parts = _partitions(cfg.dataset, cfg.data_dir, cfg.partitioning, num_partitions, cfg.seed)
        indices = parts[partition_id]
        if cfg.samples_per_client:
            indices = indices[: cfg.samples_per_client]
    local = train.subset(indices)
    split = build_split(cfg)
    return LocalData(_prepare(split, local), local.labels, train.num_classes)


def train_size(cfg: EcoFedConfig) -> int:
    """Samples in the configured training set (the devices' partitions are drawn from it)."""
    return len(_dataset(cfg.dataset, "train", cfg.data_dir, cfg.seed))


def partition_draw(cfg: EcoFedConfig, num_partitions: int, num_samples: int) -> str:
    """How the partitions of ``num_partitions`` devices are made: ``cfg.partition_draw``,
    with ``auto`` resolved (disjoint while there are at least as many samples as devices)."""
    if cfg.partition_draw != "auto":
        return cfg.partition_draw
    return "disjoint" if num_partitions <= num_samples else "with-replacement"


@functools.lru_cache(maxsize=4)
def _partitions(
    dataset: str, data_dir: str, partitioning: str, num_partitions: int, seed: int
) -> list[np.ndarray]:
    labels = _dataset(dataset, "train", data_dir, seed).labels
    kwargs = parse_partitioning(partitioning)
    parts = partition_indices(labels, num_partitions, seed=seed, **kwargs)
    # Shuffle within each partition so that a samples-per-client cap keeps the class mix.
    rng = np.random.default_rng(seed)
    return [rng.permutation(p) for p in parts]


def test_set(cfg: EcoFedConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The server's test images (prepared) and labels; ``test-samples`` 0 means all."""
    test = _dataset(cfg.dataset, "test", cfg.data_dir, cfg.seed)
    indices = cfg.test_indices(len(test))
    if indices is not None:
        test = test.subset(indices)
    split = build_split(cfg)
    return _prepare(split, test), torch.from_numpy(np.array(test.labels, dtype=np.int64))
