"""A user's own data from local files: one ``.npz`` archive, or a folder of images per class.

Both layouts are fixed and documented below so that a data set can be brought in without
writing code: ``dataset = "npz:/path/data.npz"`` or ``dataset = "folder:/path/images"``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .arrays import to_class_labels, to_uint8_images
from .datasets import ArrayDataset
from .errors import DataError

__all__ = [
    "IMAGE_SUFFIXES",
    "NPZ_KEYS",
    "NPZ_NUM_CLASSES_KEY",
    "load_image_folder",
    "load_npz",
]

NPZ_KEYS: dict[str, tuple[str, str]] = {
    "train": ("x_train", "y_train"),
    "test": ("x_test", "y_test"),
}
NPZ_NUM_CLASSES_KEY = "num_classes"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

_NPZ_EXAMPLE = "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
# 16-bit, 32-bit integer and float images would lose information in an 8-bit conversion.
_WIDE_MODES = ("I", "F", "I;16", "I;16B", "I;16L", "I;16N")
_GREY_MODES = ("1", "L", "LA", "La")


# --------------------------------------------------------------------------- npz


def _npz_array(archive: np.lib.npyio.NpzFile, key: str, file: Path) -> np.ndarray:
    try:
        return np.asarray(archive[key])
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        # Object arrays need pickle, which allow_pickle=False refuses: the safe outcome.
        raise DataError(
            f"{file}: cannot read array {key!r} ({type(exc).__name__}: {exc}); arrays must be "
            "numeric (no Python objects)"
        ) from exc


def _npz_num_classes(archive: np.lib.npyio.NpzFile, file: Path) -> int:
    if NPZ_NUM_CLASSES_KEY in archive.files:
        value = _npz_array(archive, NPZ_NUM_CLASSES_KEY, file)
        if value.size != 1 or not np.issubdtype(value.dtype, np.integer) or value.item() < 1:
            raise DataError(
                f"{file}: {NPZ_NUM_CLASSES_KEY!r} must be one integer >= 1, got "
                f"{value.dtype} array of shape {value.shape} ({value.ravel()[:3].tolist()})"
            )
        return int(value.item())
    # Both splits, so that a class absent from one split still counts.
    highest = [
        to_class_labels(_npz_array(archive, label_key, file), f"{file}: {label_key}").max(
            initial=-1
        )
        for _, label_key in NPZ_KEYS.values()
    ]
    return int(max(highest)) + 1


def load_npz(path: str | Path, split: str = "train") -> ArrayDataset:
    """Load one split of an image classification data set stored in one ``.npz`` archive.

    The archive holds four arrays, named as in Keras' data sets: ``x_train``, ``y_train``,
    ``x_test`` and ``y_test`` (written with, e.g.,
    ``np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)``), and optionally
    ``num_classes`` (one integer).

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.npz`` file.
    split : {"train", "test"}
        Which pair of arrays to load.

    Returns
    -------
    ArrayDataset
        uint8 images and int64 labels, named ``"npz:<path>:<split>"``. The number of classes
        is ``num_classes`` when stored, else the largest label of both splits plus one.

    Raises
    ------
    DataError
        If the file is missing or not an ``.npz`` archive, a key is missing (the message lists
        the keys found), an array holds Python objects, images or labels fail the checks of
        :func:`to_uint8_images` / :func:`to_class_labels`, the counts of images and labels
        differ, or a label is not below ``num_classes``.

    Notes
    -----
    Images may be ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)``, uint8 (or integers in
    0..255) or float in [0, 1]; labels ``(N,)`` or ``(N, 1)`` integers. The archive is read
    with ``allow_pickle=False``, so no code in the file is ever run.
    """
    if split not in NPZ_KEYS:
        raise DataError(f"unknown npz split {split!r}; valid splits: {sorted(NPZ_KEYS)}")
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(
            f"npz file {file} does not exist; expected an archive written by {_NPZ_EXAMPLE}"
        )
    try:
        archive = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{file}: cannot read it as an .npz archive ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(
            f"{file}: holds one array of shape {archive.shape}, expected an .npz archive "
            f"written by {_NPZ_EXAMPLE}"
        )
    with archive:
        required = [key for pair in NPZ_KEYS.values() for key in pair]
        missing = [key for key in required if key not in archive.files]
        if missing:
            raise DataError(
                f"{file}: missing array(s) {', '.join(missing)}; found {sorted(archive.files)}. "
                f"Expected {', '.join(required)}, written by {_NPZ_EXAMPLE}"
            )
        image_key, label_key = NPZ_KEYS[split]
        images = to_uint8_images(_npz_array(archive, image_key, file), f"{file}: {image_key}")
        labels = to_class_labels(
            _npz_array(archive, label_key, file), f"{file}: {label_key}", count=len(images)
        )
        num_classes = _npz_num_classes(archive, file)
    return ArrayDataset(
        images=images, labels=labels, num_classes=num_classes, name=f"npz:{file}:{split}"
    )


# --------------------------------------------------------------------------- image folder


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_image(file: Path) -> np.ndarray:
    """One image file as uint8 ``(H, W)`` (grey) or ``(H, W, 3)`` (colour)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            if image.mode in _WIDE_MODES:
                raise DataError(
                    f"{file}: image mode {image.mode} has more than 8 bits per channel; "
                    "save the images as 8-bit grey or RGB"
                )
            if image.mode in ("L", "RGB"):
                return np.asarray(image, dtype=np.uint8)
            converted = image.convert("L" if image.mode in _GREY_MODES else "RGB")
            return np.asarray(converted, dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{file}: cannot read the image ({type(exc).__name__}: {exc})") from exc


def load_image_folder(path: str | Path, split: str = "train") -> ArrayDataset:
    """Load one split of a folder of images sorted into one sub-folder per class.

    The layout is torchvision's ``ImageFolder`` once per split::

        PATH/train/<class name>/<any name>.png
        PATH/test/<class name>/<any name>.png

    Class indices follow the sorted class folder names of ``PATH/train``, so both splits use
    the same numbering; a test class folder must also exist under ``train`` (it may be
    empty). Files with the suffixes in :data:`IMAGE_SUFFIXES` (any case) are read; other
    files and hidden entries are skipped. Samples are ordered by class, then file name.

    Parameters
    ----------
    path : str or pathlib.Path
        The folder holding ``train`` and ``test``.
    split : str, default "train"
        Sub-folder to load (``"train"``, ``"test"`` or any other present).

    Returns
    -------
    ArrayDataset
        uint8 images (grey ``(N, H, W)`` when every file is grey, else RGB ``(N, H, W, 3)``
        with grey files repeated over three channels) and int64 labels, named
        ``"folder:<path>:<split>"``.

    Raises
    ------
    DataError
        If a folder is missing (the message shows the expected layout), a class folder of
        the split is not a class of ``train``, the split holds no images, a file cannot be
        decoded or has more than 8 bits per channel, or the images differ in size (resize
        them first: one model input size serves all).
    """
    root = Path(path).expanduser()
    layout = f"expected {root}/train/<class>/*.png and {root}/test/<class>/*.png"
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DataError(f"image folder {root} has no 'train' sub-folder; {layout}")
    classes = [p.name for p in _visible_dirs(train_dir)]
    if not classes:
        raise DataError(f"{train_dir} has no class sub-folders; {layout}")
    index = {name: i for i, name in enumerate(classes)}
    split_dir = root / split
    if not split_dir.is_dir():
        present = [p.name for p in _visible_dirs(root)]
        raise DataError(
            f"image folder {root} has no {split!r} sub-folder (found {present}); {layout}"
        )
    images: list[np.ndarray] = []
    labels: list[int] = []
    first: Path | None = None
    for class_dir in _visible_dirs(split_dir):
        if class_dir.name not in index:
            raise DataError(
                f"{class_dir}: class {class_dir.name!r} is not among the classes of "
                f"{train_dir} ({', '.join(classes)})"
            )
        files = sorted(
            p
            for p in class_dir.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        )
        for file in files:
            image = _read_image(file)
            if first is None:
                first = file
            elif image.shape[:2] != images[0].shape[:2]:
                raise DataError(
                    f"{file}: image size {image.shape[1]}x{image.shape[0]} differs from "
                    f"{images[0].shape[1]}x{images[0].shape[0]} of {first}; every image must "
                    "have the same size (resize them first)"
                )
            images.append(image)
            labels.append(index[class_dir.name])
    if not images:
        raise DataError(
            f"{split_dir} holds no images (suffixes {', '.join(IMAGE_SUFFIXES)}); {layout}"
        )
    if any(image.ndim == 3 for image in images):
        images = [np.repeat(im[..., None], 3, axis=2) if im.ndim == 2 else im for im in images]
    return ArrayDataset(
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int64),
        num_classes=len(classes),
        name=f"folder:{root}:{split}",
    )
