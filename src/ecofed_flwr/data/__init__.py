"""Data for ecofed-flwr: loaders, client partitions, model input preparation, a device's data.

Offline defaults are Fashion-MNIST from local idx files and a learnable synthetic set. A
user's own data loads from an ``.npz`` archive, a folder of images per class, or torchvision
files already on disk; Hugging Face data sets load through ``datasets`` when the Hub (or a
cache) is available. :func:`load_dataset` resolves all of them from one name.
Importing this package does not import Flower, ``datasets`` or torch's heavier parts
beyond ``torch`` itself (used by :func:`prepare_images`).
"""

from __future__ import annotations

from .arrays import to_class_labels, to_uint8_images
from .datasets import ArrayDataset
from .errors import DataError
from .fashion_mnist import (
    DEFAULT_FASHION_MNIST_DIR,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR_ENV,
    fashion_mnist_dir,
    load_fashion_mnist,
    read_idx_images,
    read_idx_labels,
)
from .huggingface import load_hf_dataset
from .local import LocalData, check_labels
from .local_files import IMAGE_SUFFIXES, NPZ_KEYS, load_image_folder, load_npz
from .partition import (
    DEFAULT_ALPHA,
    DEFAULT_CLASSES_PER_PARTITION,
    PARTITION_DRAWS,
    PARTITIONINGS,
    draw_partition,
    parse_partitioning,
    partition_indices,
    train_test_split_indices,
)
from .sources import DATA_SOURCES, DATASET_NAMES, DataRequest, DataSource, load_dataset
from .synthetic import make_synthetic
from .torchvision_sets import TORCHVISION_SETS, TorchvisionSet, load_torchvision
from .transforms import prepare_images

__all__ = [
    "DATASET_NAMES",
    "DATA_SOURCES",
    "DEFAULT_ALPHA",
    "DEFAULT_CLASSES_PER_PARTITION",
    "DEFAULT_FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR_ENV",
    "IMAGE_SUFFIXES",
    "NPZ_KEYS",
    "PARTITIONINGS",
    "TORCHVISION_SETS",
    "ArrayDataset",
    "DataError",
    "DataRequest",
    "DataSource",
    "LocalData",
    "TorchvisionSet",
    "check_labels",
    "fashion_mnist_dir",
    "load_dataset",
    "load_fashion_mnist",
    "load_hf_dataset",
    "load_image_folder",
    "load_npz",
    "load_torchvision",
    "make_synthetic",
    "PARTITION_DRAWS",
    "draw_partition",
    "parse_partitioning",
    "partition_indices",
    "prepare_images",
    "read_idx_images",
    "read_idx_labels",
    "to_class_labels",
    "to_uint8_images",
    "train_test_split_indices",
]
