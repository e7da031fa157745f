"""A user's own data by name: npz archives, image folders, torchvision roots; quiet labels."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ecofed_flwr.data import (
    DATASET_NAMES,
    DataError,
    load_dataset,
    load_fashion_mnist,
    load_image_folder,
    load_npz,
    load_torchvision,
    to_class_labels,
    to_uint8_images,
)

RNG = np.random.default_rng(0)


def _images(n: int, shape: tuple[int, ...] = (8, 8, 3)) -> np.ndarray:
    return RNG.integers(0, 256, size=(n, *shape), dtype=np.uint8)


# --------------------------------------------------------------------------- arrays


def test_layouts_and_dtypes_become_uint8_channels_last() -> None:
    nhwc = _images(4)
    assert to_uint8_images(nhwc, "x") is nhwc  # already in form: no copy
    assert np.array_equal(to_uint8_images(nhwc.transpose(0, 3, 1, 2), "x"), nhwc)
    grey = _images(4, (8, 8))
    assert np.array_equal(to_uint8_images(grey[:, None], "x"), grey)  # (N, 1, H, W)
    assert np.array_equal(to_uint8_images(grey[..., None], "x"), grey)  # (N, H, W, 1)
    rgba = np.concatenate([nhwc, np.full((4, 8, 8, 1), 255, np.uint8)], axis=-1)
    assert np.array_equal(to_uint8_images(rgba, "x"), nhwc)
    assert np.array_equal(to_uint8_images(nhwc.astype(np.float32) / 255.0, "x"), nhwc)
    assert np.array_equal(to_uint8_images(nhwc.astype(np.int64), "x"), nhwc)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 8), np.uint8), r"shape \(N, H, W\)"),
        (np.zeros((0, 8, 8), np.uint8), "no images"),
        (np.zeros((2, 8, 8, 5), np.uint8), "neither axis 1 nor axis 3"),
        (np.zeros((2, 3, 8, 3), np.uint8), "both axis 1 and axis 3"),
        (np.full((2, 8, 8), 1.5, np.float32), r"must lie in \[0, 1\], found \[1.5, 1.5\]"),
        (np.full((2, 8, 8), np.nan, np.float32), "NaN"),
        (np.full((2, 8, 8), 256, np.int32), r"0..255, found \[256, 256\]"),
        (np.zeros((2, 8, 8), np.bool_), "dtype bool"),
    ],
)
def test_bad_images_name_the_array_and_the_problem(images: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        to_uint8_images(images, "my.npz: x_train")
    assert "my.npz: x_train" in str(info.value)


def test_labels_are_checked_and_copied() -> None:
    column = np.array([[1], [0], [2]], dtype=np.uint8)
    out = to_class_labels(column, "y")
    assert out.dtype == np.int64 and out.tolist() == [1, 0, 2] and out.flags.writeable
    with pytest.raises(DataError, match=r"integer class indices, got dtype float32.*astype"):
        to_class_labels(np.zeros(3, np.float32), "y")
    with pytest.raises(DataError, match="labels must be >= 0, found -1"):
        to_class_labels(np.array([0, -1]), "y")
    with pytest.raises(DataError, match="2 labels for 3 images"):
        to_class_labels(np.array([0, 1]), "y", count=3)
    with pytest.raises(DataError, match=r"shape \(N,\) or \(N, 1\)"):
        to_class_labels(np.zeros((2, 2), np.int64), "y")


# --------------------------------------------------------------------------- npz


def _write_npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_npz_round_trip_in_every_layout(tmp_path: Path) -> None:
    x_train, x_test = _images(12), _images(5)
    y_train, y_test = np.arange(12) % 3, np.array([0, 1, 2, 3, 0])  # class 3 only in test
    file = _write_npz(
        tmp_path / "rgb.npz",
        x_train=x_train.transpose(0, 3, 1, 2),  # channels-first
        y_train=y_train[:, None],  # Keras-style (N, 1)
        x_test=x_test.astype(np.float64) / 255.0,  # float in [0, 1]
        y_test=y_test,
    )
    train = load_npz(file, "train")
    assert np.array_equal(train.images, x_train) and train.labels.tolist() == y_train.tolist()
    assert train.num_classes == 4 and train.name == f"npz:{file}:train"
    test = load_dataset(f"npz:{file}", "test")
    assert np.array_equal(test.images, x_test) and test.num_classes == 4
    assert len(load_dataset(f"npz:{file}", "train", num_samples=6, seed=1)) == 6

    grey = _write_npz(
        tmp_path / "grey.npz",
        x_train=_images(4, (8, 8)),
        y_train=np.zeros(4, np.int64),
        x_test=_images(2, (8, 8)),
        y_test=np.zeros(2, np.int64),
        num_classes=np.array(7),
    )
    assert load_npz(grey).num_classes == 7 and load_npz(grey).images.shape == (4, 8, 8)


def _valid_arrays() -> dict[str, np.ndarray]:
    return {
        "x_train": _images(4),
        "y_train": np.array([0, 1, 0, 1]),
        "x_test": _images(2),
        "y_test": np.array([1, 0]),
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"y_test": None}, r"missing array\(s\) y_test; found \['x_test', 'x_train', 'y_train'\]"),
        ({"y_train": np.array([0.0, 1.0, 0.0, 1.0])}, "y_train: labels must be integer"),
        ({"y_train": np.array([0, 1, 0])}, "y_train: 3 labels for 4 images"),
        ({"y_test": np.array([-1, 0])}, "y_test: labels must be >= 0"),
        ({"num_classes": np.array(1)}, r"labels must lie in \[0, 1\)"),
        ({"num_classes": np.array([2.0])}, "'num_classes' must be one integer"),
        ({"x_train": np.zeros((4, 8, 8, 2), np.uint8)}, "x_train: cannot tell the layout"),
        ({"x_train": np.array([None] * 4, dtype=object)}, "cannot read array 'x_train'"),
    ],
)
def test_npz_errors_name_what_is_wrong(tmp_path: Path, change: dict, message: str) -> None:
    arrays = {**_valid_arrays(), **change}
    file = _write_npz(tmp_path / "bad.npz", **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(DataError, match=message):
        load_npz(file, "train")


def test_npz_file_problems(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"npz:{tmp_path / 'missing.npz'}")
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    with pytest.raises(DataError, match="cannot read it as an .npz archive"):
        load_npz(text)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DataError, match="holds one array"):
        load_npz(single)
    with pytest.raises(DataError, match="unknown npz split 'validation'"):
        load_npz(_write_npz(tmp_path / "ok.npz", **_valid_arrays()), "validation")


# --------------------------------------------------------------------------- image folder


def _save_png(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(path)


def test_image_folder_reads_classes_in_sorted_order(tmp_path: Path) -> None:
    rgb = _images(3)
    grey = _images(1, (8, 8))[0]
    _save_png(tmp_path / "train" / "dog" / "b.png", rgb[0])
    _save_png(tmp_path / "train" / "dog" / "a.png", rgb[1])
    _save_png(tmp_path / "train" / "cat" / "x.PNG", grey)  # grey among colour: repeated
    _save_png(tmp_path / "train" / "cat" / "p.png", rgb[2], mode="P")  # palette -> RGB
    (tmp_path / "train" / "cat" / "notes.txt").write_text("skipped")
    (tmp_path / "train" / "empty_class").mkdir()
    _save_png(tmp_path / "test" / "dog" / "t.png", grey)
    train = load_image_folder(tmp_path, "train")
    assert train.num_classes == 3 and train.labels.tolist() == [0, 0, 1, 1]  # cat, dog
    assert train.images.shape == (4, 8, 8, 3)
    assert np.array_equal(train.images[1], np.repeat(grey[..., None], 3, axis=2))
    assert np.array_equal(train.images[2], rgb[1]) and np.array_equal(train.images[3], rgb[0])
    test = load_dataset(f"folder:{tmp_path}", "test")
    assert test.images.shape == (1, 8, 8) and test.labels.tolist() == [1]
    assert test.name == f"folder:{tmp_path}:test"


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no 'train' sub-folder; expected .*/train/<class>"):
        load_image_folder(tmp_path)
    _save_png(tmp_path / "train" / "a" / "0.png", _images(1)[0])
    with pytest.raises(DataError, match=r"no 'test' sub-folder \(found \['train'\]\)"):
        load_image_folder(tmp_path, "test")
    _save_png(tmp_path / "test" / "zebra" / "0.png", _images(1)[0])
    with pytest.raises(DataError, match="class 'zebra' is not among the classes"):
        load_image_folder(tmp_path, "test")
    _save_png(tmp_path / "train" / "a" / "1.png", _images(1, (9, 8, 3))[0])
    with pytest.raises(DataError, match=r"1.png: image size 8x9 differs from 8x8 of .*0.png"):
        load_image_folder(tmp_path)
    (tmp_path / "train" / "a" / "1.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="1.png: cannot read the image"):
        load_image_folder(tmp_path)
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(tmp_path / "train" / "a" / "1.png")
    with pytest.raises(DataError, match="more than 8 bits per channel"):
        load_image_folder(tmp_path)


# --------------------------------------------------------------------------- torchvision


def _write_idx(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    magic = 2051 if array.ndim == 3 else 2049
    path.write_bytes(struct.pack(f">{array.ndim + 1}I", magic, *array.shape) + array.tobytes())


def test_torchvision_reads_files_already_on_disk(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    images, labels = _images(6, (28, 28)), np.array([3, 1, 4, 1, 5, 9], np.uint8)
    for prefix, n in (("train", 6), ("t10k", 2)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images[:n])
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels[:n])
    train = load_dataset(f"torchvision:mnist:{tmp_path}")
    assert np.array_equal(train.images, images) and train.labels.tolist() == labels.tolist()
    assert train.num_classes == 10 and train.name == "torchvision:MNIST:train"
    test = load_dataset("torchvision:MNIST", "test", data_dir=tmp_path)
    assert len(test) == 2


def test_torchvision_missing_files_name_the_root_and_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_dataset(f"torchvision:CIFAR10:{tmp_path}")
    message = str(info.value)
    assert f"not found under root {tmp_path}" in message
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert f"torchvision.datasets.CIFAR10(root='{tmp_path}', download=True)" in message
    assert not any(tmp_path.iterdir())  # nothing downloaded, nothing created
    with pytest.raises(DataError, match="needs the folder holding its files"):
        load_dataset("torchvision:CIFAR10")
    with pytest.raises(DataError, match="unsupported torchvision data set 'ImageNet'"):
        load_torchvision("ImageNet", tmp_path)
    with pytest.raises(DataError, match="no labelled split 'extra'"):
        load_torchvision("CIFAR10", tmp_path, "extra")


# --------------------------------------------------------------------------- names


def test_names_list_every_source_and_arguments_are_checked() -> None:
    assert {"npz:<path>", "folder:<path>", "torchvision:<name>[:<root>]"} <= set(DATASET_NAMES)
    with pytest.raises(DataError, match="valid names: .*npz:<path>.*folder:<path>"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match="lacks its argument; write npz:<path>"):
        load_dataset("npz: ")
    with pytest.raises(DataError, match="'synthetic' takes no ':<argument>'"):
        load_dataset("synthetic:10")


def test_cached_labels_reach_torch_without_a_read_only_warning(tmp_path: Path) -> None:
    for prefix, n in (("train", 4), ("t10k", 3)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", _images(n, (28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8))
    test = load_fashion_mnist("test", data_dir=tmp_path)
    assert test.labels.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.from_numpy(test.labels)
