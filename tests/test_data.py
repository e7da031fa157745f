"""Tests for ecofed_flwr.data: loaders, idx parsing, synthetic data, transforms, partitions."""

from __future__ import annotations

import gzip
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from ecofed_flwr.data import (
    DEFAULT_FASHION_MNIST_DIR,
    PARTITIONINGS,
    ArrayDataset,
    DataError,
    load_dataset,
    load_fashion_mnist,
    load_hf_dataset,
    make_synthetic,
    parse_partitioning,
    partition_indices,
    prepare_images,
    train_test_split_indices,
)
from ecofed_flwr.data import transforms as transforms_module

HAS_FASHION = all(
    (Path(DEFAULT_FASHION_MNIST_DIR) / f).is_file()
    for f in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
)
needs_fashion = pytest.mark.skipif(
    not HAS_FASHION,
    reason=f"Fashion-MNIST idx files not in {DEFAULT_FASHION_MNIST_DIR} "
    "(apt-get install dataset-fashion-mnist)",
)


# --------------------------------------------------------------------------- helpers


def _idx_images(images: np.ndarray, magic: int = 2051) -> bytes:
    n, rows, cols = images.shape
    return struct.pack(">IIII", magic, n, rows, cols) + images.astype(np.uint8).tobytes()


def _idx_labels(labels: np.ndarray, magic: int = 2049) -> bytes:
    return struct.pack(">II", magic, len(labels)) + labels.astype(np.uint8).tobytes()


def _write_fake_fashion(folder: Path, n_train: int = 30, n_test: int = 10) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_images(images)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_labels(labels)))


def _balanced_labels(n_per_class: int = 100, num_classes: int = 10, seed: int = 0) -> np.ndarray:
    labels = np.repeat(np.arange(num_classes), n_per_class)
    np.random.default_rng(seed).shuffle(labels)
    return labels


def _label_skew(labels: np.ndarray, parts: list[np.ndarray]) -> float:
    """Mean total-variation distance between partition and global label distributions."""
    k = int(labels.max()) + 1
    glob = np.bincount(labels, minlength=k) / len(labels)
    dists = [0.5 * np.abs(np.bincount(labels[p], minlength=k) / len(p) - glob).sum() for p in parts]
    return float(np.mean(dists))


# --------------------------------------------------------------------------- Fashion-MNIST


@needs_fashion
def test_real_fashion_mnist_files() -> None:
    train = load_fashion_mnist("train")
    test = load_fashion_mnist("test")
    assert (len(train), len(test)) == (60_000, 10_000)
    for ds in (train, test):
        assert ds.images.shape[1:] == (28, 28) and ds.images.dtype == np.uint8
        assert ds.labels.dtype == np.int64 and ds.num_classes == 10
        assert set(np.unique(ds.labels)) == set(range(10))
    assert (np.bincount(train.labels) == 6000).all()
    assert 20 < train.images.mean() < 120  # real pictures, not zeros or noise

    sub = load_dataset("fashion-mnist", "train", num_samples=1000, seed=3)
    assert len(sub) == 1000 and (np.bincount(sub.labels, minlength=10) == 100).all()
    again = load_dataset("fashion_mnist", "train", num_samples=1000, seed=3)
    assert np.array_equal(sub.labels, again.labels) and np.array_equal(sub.images, again.images)
    other = load_dataset("fashion_mnist", "train", num_samples=1000, seed=4)
    assert not np.array_equal(sub.images, other.images)


def test_fake_idx_folder_via_argument_and_env(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "fm"
    _write_fake_fashion(folder)
    ds = load_fashion_mnist("train", data_dir=folder)
    assert ds.images.shape == (30, 28, 28) and list(ds.labels[:3]) == [0, 1, 2]
    monkeypatch.setenv("ECOFED_FASHION_MNIST_DIR", str(folder))
    assert len(load_fashion_mnist("test")) == 10
    assert len(load_dataset("fashion_mnist", "test", num_samples=5)) == 5
    with pytest.raises(DataError, match="exceeds"):
        load_dataset("fashion_mnist", "test", num_samples=11)


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("bad-magic", gzip.compress(_idx_images(np.zeros((2, 4, 4)), magic=2049)), "magic"),
        ("short-data", gzip.compress(_idx_images(np.zeros((3, 28, 28)))[:-50]), "truncated"),
        ("short-header", gzip.compress(b"\x00\x00\x08"), "too short"),
        ("cut-gzip", gzip.compress(_idx_images(np.ones((5, 28, 28))))[:40], "corrupt"),
        ("not-gzip", b"this is not gzip data at all", "corrupt"),
    ],
)
def test_corrupt_idx_raises(tmp_path: Path, name: str, payload: bytes, message: str) -> None:
    folder = tmp_path / name
    _write_fake_fashion(folder)
    bad = folder / "train-images-idx3-ubyte.gz"
    bad.write_bytes(payload)
    with pytest.raises(DataError, match=message) as info:
        load_fashion_mnist("train", data_dir=folder)
    assert "train-images-idx3-ubyte.gz" in str(info.value)


def test_label_count_mismatch_and_bad_split(tmp_path: Path) -> None:
    folder = tmp_path / "fm"
    _write_fake_fashion(folder)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_labels(np.zeros(7))))
    with pytest.raises(DataError, match="7 labels"):
        load_fashion_mnist("train", data_dir=folder)
    with pytest.raises(DataError, match="split"):
        load_fashion_mnist("validation", data_dir=folder)


def test_missing_folder_message(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_fashion_mnist("train", data_dir=missing)
    msg = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in msg and str(missing) in msg
    assert "data_dir" in msg


# --------------------------------------------------------------------------- synthetic


def test_synthetic_is_learnable_and_deterministic() -> None:
    train = make_synthetic(2000, seed=0)
    test = make_synthetic(500, seed=0, split="test")
    assert train.images.shape == (2000, 28, 28) and train.images.dtype == np.uint8
    assert np.bincount(train.labels).tolist() == [200] * 10
    x_tr = train.images.reshape(len(train), -1).astype(np.float32)
    x_te = test.images.reshape(len(test), -1).astype(np.float32)
    means = np.stack([x_tr[train.labels == c].mean(0) for c in range(10)])
    dist = ((x_te[:, None, :] - means[None]) ** 2).sum(-1)
    accuracy = float((dist.argmin(1) == test.labels).mean())
    assert accuracy > 0.9

    again = make_synthetic(2000, seed=0)
    assert np.array_equal(train.images, again.images)
    assert np.array_equal(train.labels, again.labels)
    assert not np.array_equal(train.images, make_synthetic(2000, seed=1).images)
    assert not np.array_equal(train.images[:500], make_synthetic(500, seed=0, split="test").images)

    rgb = make_synthetic(20, num_classes=3, image_size=32, channels=3, seed=2)
    assert rgb.images.shape == (20, 32, 32, 3) and rgb.num_classes == 3
    assert len(load_dataset("synthetic")) == 2000
    assert len(load_dataset("synthetic", "test")) == 500
    assert len(load_dataset("synthetic", num_samples=64, seed=5)) == 64


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_samples": 0},
        {"num_samples": 10, "num_classes": 0},
        {"num_samples": 10, "seed": -1},
        {"num_samples": 10, "split": "dev"},
        {"num_samples": 10, "image_size": 1},
    ],
)
def test_synthetic_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(DataError):
        make_synthetic(**kwargs)


def test_array_dataset_validation_and_subset() -> None:
    ds = make_synthetic(30, num_classes=3, image_size=8, seed=0)
    sub = ds.subset(np.array([2, 0, 2]))
    assert len(sub) == 3 and np.array_equal(sub.labels, ds.labels[[2, 0, 2]])
    mask = ds.labels == 1
    assert np.array_equal(ds.subset(mask).labels, ds.labels[mask])
    assert len(ds.subset(np.array([], dtype=np.int64))) == 0
    with pytest.raises(DataError):
        ds.subset(np.array([30]))
    with pytest.raises(DataError):
        ds.subset(np.array([0.5]))
    with pytest.raises(DataError):
        ArrayDataset(np.zeros((2, 4, 4), np.float32), np.zeros(2, np.int64), 2, "x")
    with pytest.raises(DataError):
        ArrayDataset(np.zeros((2, 4, 4), np.uint8), np.zeros(3, np.int64), 2, "x")
    with pytest.raises(DataError):
        ArrayDataset(np.zeros((2, 4, 4), np.uint8), np.array([0, 2]), 2, "x")
    coerced = ArrayDataset(np.zeros((2, 4, 4), np.uint8), np.array([0, 1], np.uint8), 2, "x")
    assert coerced.labels.dtype == np.int64


def test_unknown_dataset_name_lists_valid_names() -> None:
    with pytest.raises(DataError, match="fashion_mnist.*synthetic.*hf:"):
        load_dataset("cifar10")


# --------------------------------------------------------------------------- transforms


def test_prepare_images_grey_to_rgb_resize_and_normalise() -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    out = prepare_images(images, 32, 3, (0.5, 0.4, 0.3), (0.5, 0.2, 0.1))
    assert out.shape == (7, 3, 32, 32) and out.dtype == torch.float32
    ref = F.interpolate(
        torch.from_numpy(images).float()[:, None] / 255.0,
        size=(32, 32),
        mode="bilinear",
        align_corners=False,
        antialias=False,
    ).repeat(1, 3, 1, 1)
    ref = (ref - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor(
        [0.5, 0.2, 0.1]
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)

    same = prepare_images(np.array([[[0, 255]]], np.uint8), 1, 1, (0.5,), (0.5,))
    assert same.shape == (1, 1, 1, 1)
    exact = prepare_images(np.array([[[0, 255], [255, 0]]], np.uint8), 2, 1, (0.5,), (0.25,))
    torch.testing.assert_close(exact.flatten(), torch.tensor([-2.0, 2.0, 2.0, -2.0]))


def test_prepare_images_rgb_to_grey_and_chunking(monkeypatch) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, size=(9, 6, 6, 3), dtype=np.uint8)
    grey = prepare_images(rgb, 6, 1, (0.0,), (1.0,))
    expected = torch.from_numpy(rgb.astype(np.float32).mean(-1) / 255.0)[:, None]
    torch.testing.assert_close(grey, expected)
    whole = prepare_images(rgb, 10, 3, (0.5,), (0.5,))
    monkeypatch.setattr(transforms_module, "_CHUNK_ELEMENTS", 700)  # 2 images per chunk
    assert torch.equal(prepare_images(rgb, 10, 3, (0.5,), (0.5,)), whole)
    rgba = np.concatenate([rgb, np.zeros_like(rgb[..., :1])], axis=-1)
    assert torch.equal(prepare_images(rgba, 10, 3, (0.5,), (0.5,)), whole)


@pytest.mark.parametrize(
    ("images", "kwargs"),
    [
        (np.zeros((2, 4, 4), np.float32), {}),
        (np.zeros((4, 4), np.uint8), {}),
        (np.zeros((2, 4, 4, 2), np.uint8), {}),
        (np.zeros((2, 4, 4), np.uint8), {"channels": 2}),
        (np.zeros((2, 4, 4), np.uint8), {"std": (0.5, 0.0, 0.5)}),
        (np.zeros((2, 4, 4), np.uint8), {"mean": (0.5, 0.5)}),
        (np.zeros((2, 4, 4), np.uint8), {"input_size": 0}),
    ],
)
def test_prepare_images_bad_input(images: np.ndarray, kwargs: dict) -> None:
    args = {"input_size": 8, "channels": 3, "mean": (0.5,), "std": (0.5,)} | kwargs
    with pytest.raises(DataError):
        prepare_images(images, **args)


# --------------------------------------------------------------------------- partitions


@pytest.mark.parametrize("scheme", PARTITIONINGS)
def test_partitions_disjoint_covering_deterministic(scheme: str) -> None:
    labels = _balanced_labels()
    parts = partition_indices(labels, 10, scheme, seed=0)
    assert len(parts) == 10
    assert all(p.dtype == np.int64 and np.all(np.diff(p) > 0) for p in parts)
    joined = np.concatenate(parts)
    assert len(joined) == len(np.unique(joined)) == len(labels)  # disjoint and covering
    again = partition_indices(labels, 10, scheme, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = partition_indices(labels, 10, scheme, seed=1)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other, strict=True))
    if scheme == "iid":
        assert {len(p) for p in parts} == {100}


@pytest.mark.parametrize(
    ("num_partitions", "k", "equal"), [(10, 2, True), (20, 5, True), (7, 3, False), (4, 1, False)]
)
def test_shards_respect_classes_per_partition(num_partitions: int, k: int, equal: bool) -> None:
    labels = _balanced_labels()
    parts = partition_indices(labels, num_partitions, "shards", seed=3, classes_per_partition=k)
    assert max(len(np.unique(labels[p])) for p in parts) <= k
    joined = np.concatenate(parts)
    assert len(joined) == len(np.unique(joined))
    expected = len(labels) if num_partitions * k >= 10 else num_partitions * k * 100
    assert len(joined) == expected
    sizes = [len(p) for p in parts]
    if equal:
        assert max(sizes) - min(sizes) <= 1


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(0, 30), min_size=1, max_size=8),
    num_partitions=st.integers(1, 12),
    k=st.integers(1, 4),
    seed=st.integers(0, 1000),
)
def test_shards_property(counts: list[int], num_partitions: int, k: int, seed: int) -> None:
    labels = np.repeat(np.arange(len(counts)), counts)
    present = int((np.array(counts) > 0).sum())
    if len(labels) < num_partitions:
        with pytest.raises(DataError):
            partition_indices(labels, num_partitions, "shards", classes_per_partition=k)
        return
    parts = partition_indices(labels, num_partitions, "shards", seed=seed, classes_per_partition=k)
    joined = np.concatenate(parts)
    assert len(joined) == len(np.unique(joined))
    assert all(len(np.unique(labels[p])) <= k for p in parts)
    if num_partitions * min(k, present) >= present:
        assert len(joined) == len(labels)


def test_dirichlet_small_alpha_is_skewed() -> None:
    labels = _balanced_labels()
    iid = partition_indices(labels, 10, "iid", seed=0)
    skewed = partition_indices(labels, 10, "dirichlet", seed=0, alpha=0.1)
    mild = partition_indices(labels, 10, "dirichlet", seed=0, alpha=100.0)
    # 100 samples per IID partition still deviate by ~0.1 TV from sampling noise alone.
    assert _label_skew(labels, skewed) > 0.4 > 0.2 > _label_skew(labels, iid)
    assert _label_skew(labels, skewed) > _label_skew(labels, mild)
    assert (
        min(
            len(p)
            for p in partition_indices(
                labels, 10, "dirichlet", seed=0, alpha=0.3, min_partition_size=20
            )
        )
        >= 20
    )


def test_dirichlet_gives_up_with_data_error() -> None:
    with pytest.raises(DataError, match="min_partition_size"):
        partition_indices(_balanced_labels(), 10, "dirichlet", alpha=0.01, min_partition_size=90)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_partitions": 0},
        {"num_partitions": 1001},
        {"num_partitions": 2, "scheme": "pathological"},
        {"num_partitions": 2, "scheme": "dirichlet", "alpha": 0.0},
        {"num_partitions": 2, "scheme": "dirichlet", "alpha": -1.0},
        {"num_partitions": 2, "scheme": "dirichlet", "alpha": float("nan")},
        {"num_partitions": 2, "scheme": "shards", "classes_per_partition": 0},
        {"num_partitions": 2, "seed": -3},
        {"num_partitions": 11, "min_partition_size": 100},
        {"num_partitions": 2.0},
    ],
)
def test_partition_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(DataError):
        partition_indices(_balanced_labels(), **kwargs)
    with pytest.raises(DataError):
        partition_indices(np.zeros((4, 2), np.int64), 2)
    with pytest.raises(DataError):
        partition_indices(np.array([0.5, 1.5]), 2)


def test_parse_partitioning() -> None:
    assert parse_partitioning("iid") == {"scheme": "iid"}
    assert parse_partitioning("dirichlet") == {"scheme": "dirichlet", "alpha": 0.5}
    assert parse_partitioning(" Dirichlet:0.1 ") == {"scheme": "dirichlet", "alpha": 0.1}
    assert parse_partitioning("shards") == {"scheme": "shards", "classes_per_partition": 2}
    assert parse_partitioning("shards:5") == {"scheme": "shards", "classes_per_partition": 5}
    labels = _balanced_labels(20)
    assert len(partition_indices(labels, 4, **parse_partitioning("shards:3"))) == 4
    for bad in (
        "",
        "iid:3",
        "dirichlet:",
        "dirichlet:x",
        "dirichlet:0",
        "dirichlet:-1",
        "dirichlet:inf",
        "shards:0",
        "shards:1.5",
        "random",
        "shards:2:3",
    ):
        with pytest.raises(DataError):
            parse_partitioning(bad)


def test_train_test_split_indices() -> None:
    train, test = train_test_split_indices(100, 0.2, seed=7)
    assert (len(train), len(test)) == (80, 20)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(100))
    again = train_test_split_indices(100, 0.2, seed=7)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    assert not np.array_equal(test, train_test_split_indices(100, 0.2, seed=8)[1])
    assert [len(a) for a in train_test_split_indices(3, 0.01, seed=0)] == [2, 1]
    assert [len(a) for a in train_test_split_indices(1, 0.5, seed=0)] == [1, 0]
    assert [len(a) for a in train_test_split_indices(5, 0.0, seed=0)] == [5, 0]
    for bad in ((0, 0.2, 0), (10, 1.0, 0), (10, -0.1, 0), (10, 0.2, -1)):
        with pytest.raises(DataError):
            train_test_split_indices(*bad)


# --------------------------------------------------------------------------- Hugging Face


def test_hf_offline_fails_fast(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(DataError, match="offline"):
        load_hf_dataset("uoft-cs/cifar10", split="train")
    with pytest.raises(DataError, match="uoft-cs/cifar10"):
        load_dataset("hf:uoft-cs/cifar10", split="test")
    assert time.monotonic() - start < 10.0


def test_hf_conversion_of_an_in_memory_dataset() -> None:
    import datasets as hf

    from ecofed_flwr.data.huggingface import _hf_to_array_dataset

    rng = np.random.default_rng(0)
    rgb = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(5)]
    ds = hf.Dataset.from_dict(
        {"img": rgb, "label": [0, 1, 2, 1, 0]},
        features=hf.Features({"img": hf.Image(), "label": hf.ClassLabel(num_classes=4)}),
    )
    out = _hf_to_array_dataset(ds, "hf:test", None, None)
    assert out.images.shape == (5, 8, 8, 3) and np.array_equal(out.images, np.stack(rgb))
    assert out.labels.tolist() == [0, 1, 2, 1, 0] and out.num_classes == 4
    with pytest.raises(DataError, match="label column"):
        _hf_to_array_dataset(ds, "hf:test", None, "missing")
