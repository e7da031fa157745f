"""Data for ecofed-flwr: loaders, client partitions and model input preparation.

Offline defaults are Fashion-MNIST from local idx files and a learnable synthetic set;
Hugging Face data sets load through ``datasets`` when the Hub (or a cache) is available.
Importing this package does not import Flower, ``datasets`` or torch's heavier parts
beyond ``torch`` itself (used by :func:`prepare_images`).
"""

from __future__ import annotations

from .datasets import (
    DATASET_NAMES,
    DEFAULT_FASHION_MNIST_DIR,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR_ENV,
    ArrayDataset,
    fashion_mnist_dir,
    load_dataset,
    load_fashion_mnist,
    load_hf_dataset,
    make_synthetic,
    read_idx_images,
    read_idx_labels,
)
from .errors import DataError
from .partition import (
    DEFAULT_ALPHA,
    DEFAULT_CLASSES_PER_PARTITION,
    PARTITIONINGS,
    parse_partitioning,
    partition_indices,
    train_test_split_indices,
)
from .transforms import prepare_images

__all__ = [
    "DATASET_NAMES",
    "DEFAULT_ALPHA",
    "DEFAULT_CLASSES_PER_PARTITION",
    "DEFAULT_FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR_ENV",
    "PARTITIONINGS",
    "ArrayDataset",
    "DataError",
    "fashion_mnist_dir",
    "load_dataset",
    "load_fashion_mnist",
    "load_hf_dataset",
    "make_synthetic",
    "parse_partitioning",
    "partition_indices",
    "prepare_images",
    "read_idx_images",
    "read_idx_labels",
    "train_test_split_indices",
]
