"""Read an app's own torch Dataset or DataLoader into images ready for a front.

A Flower app already has its data as a ``torch.utils.data.Dataset`` (or a ``DataLoader`` over
one), with its own transform: any channel count and size, tensors from ``ToTensor`` (floats in
[0, 1]), often normalised with ``Normalize(mean, std)``, or uint8 images. EcoFed's front needs
its own preparation (size, channels, mean and std of its pre-training).
:func:`prepare_torch_data` undoes the app's normalisation, brings every image back to uint8
exactly (a ``ToTensor`` float is ``uint8 / 255``) and prepares it with
:func:`~ecofed_flwr.data.prepare_images`, the preparation the EcoFed app uses, so a device
and the server's test evaluation see identical inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .arrays import to_class_labels, to_uint8_images
from .errors import DataError
from .transforms import prepare_images

__all__ = [
    "IMAGE_KEYS",
    "LABEL_KEYS",
    "find_normalization",
    "is_hugging_face_dataset",
    "prepare_torch_data",
]

#: Keys tried, in order, for the image and the label of a dict sample (Hugging Face style).
IMAGE_KEYS = ("img", "image", "pixel_values", "x")
LABEL_KEYS = ("label", "labels", "fine_label", "y")

Normalization = tuple[Sequence[float], Sequence[float]]

# Float images may overshoot [0, 1] by float error after the normalisation is undone.
_TOLERANCE = 0.5 / 255


def find_normalization(data: Dataset[Any] | DataLoader[Any]) -> Normalization | None:
    """The ``(mean, std)`` of a torchvision ``Normalize`` in the data set's transform, if any.

    Looks at ``transform`` and ``transforms`` of the data set (a ``DataLoader``'s
    ``dataset``, through ``Subset``-style ``dataset`` attributes), into ``Compose`` chains,
    for ``torchvision.transforms.Normalize`` or its ``v2`` twin.

    Raises
    ------
    DataError
        When the chain holds more than one ``Normalize``.
    """
    from torchvision import transforms
    from torchvision.transforms import v2

    found: list[Normalization] = []
    seen: set[int] = set()

    def visit(obj: object, depth: int) -> None:
        if obj is None or id(obj) in seen or depth > 8:
            return
        seen.add(id(obj))
        if isinstance(obj, transforms.Normalize | v2.Normalize):
            found.append((tuple(obj.mean), tuple(obj.std)))
            return
        for name in ("transform", "transforms", "dataset"):
            child = getattr(obj, name, None)
            if isinstance(child, list | tuple):
                for item in child:
                    visit(item, depth + 1)
            elif child is not None and not isinstance(child, str | bytes):
                visit(child, depth + 1)

    visit(data.dataset if isinstance(data, DataLoader) else data, 0)
    if len(found) > 1:
        raise DataError(
            f"the data set's transform holds {len(found)} Normalize steps {found}; pass the "
            "one that applies last as normalization=(mean, std)"
        )
    return found[0] if found else None


def is_hugging_face_dataset(data: object) -> bool:
    """Whether ``data`` is a Hugging Face ``datasets.Dataset`` (duck-typed, no import)."""
    return type(data).__module__.split(".")[0] == "datasets" and hasattr(data, "with_format")


def prepare_torch_data(
    data: Dataset[Any] | DataLoader[Any],
    input_size: int,
    channels: int,
    mean: Sequence[float],
    std: Sequence[float],
    normalization: Normalization | None = None,
    image_key: str | None = None,
    label_key: str | None = None,
) -> tuple[torch.Tensor, np.ndarray]:
    """Every sample of an app's data set, prepared for a front, with its label.

    Parameters
    ----------
    data : Dataset | DataLoader
        The app's data set, or a ``DataLoader`` over it. Samples are read from the data set in
        index order (a loader's shuffling, batching and ``drop_last`` do not apply), so the
        same data give the same upload every time. A Hugging Face ``datasets.Dataset`` (as
        Flower's templates load with ``flwr_datasets``) is read as stored, without the
        transform the app set with ``with_transform``/``set_transform``, unless
        ``normalization`` is given: its images are then the original uint8 ones, whatever
        the app's transform normalises them to. A sample is ``(image, label, ...)`` or a
        dict with an image and a label (keys ``image_key`` / ``label_key``, else the first of
        :data:`IMAGE_KEYS` / :data:`LABEL_KEYS` present). An image is a tensor ``(C, H, W)``
        or ``(H, W)``, a NumPy array ``(H, W, C)`` or ``(H, W)``, or a PIL image, with 1, 3 or
        4 channels (alpha is dropped) and any size; uint8 (or integers in 0..255), or floats
        in [0, 1] (``ToTensor``) once the app's normalisation is undone.
    input_size, channels : int
        The front's square input size and channel count.
    mean, std : Sequence[float]
        The front's normalisation.
    normalization : tuple[Sequence[float], Sequence[float]], optional
        ``(mean, std)`` the app's transform applied to its float tensors, undone channel by
        channel (``x * std + mean``) before anything else. By default the one of a torchvision
        ``Normalize`` found in the data set's transform (:func:`find_normalization`), else
        none: float images must then lie in [0, 1].
    image_key, label_key : str, optional
        Keys of dict samples (default: the first of :data:`IMAGE_KEYS`, :data:`LABEL_KEYS`).

    Returns
    -------
    tuple[torch.Tensor, np.ndarray]
        float32 ``(N, channels, input_size, input_size)`` normalised for the front (see
        :func:`~ecofed_flwr.data.prepare_images`: grey/RGB conversion, bilinear resize,
        ``(x - mean) / std``), and int64 labels ``(N,)``.

    Raises
    ------
    DataError
        On an empty data set, samples that are not image-label pairs, images of different
        shapes, or float images outside [0, 1] (the message names the sample and, when the
        range suggests it, the normalisation to pass).
    """
    dataset = data.dataset if isinstance(data, DataLoader) else data
    if normalization is None and is_hugging_face_dataset(dataset):
        # The rows as stored (PIL or uint8 images): the app's with_transform/set_transform,
        # and whatever normalisation it applies, is skipped rather than guessed.
        dataset = dataset.with_format(None)  # type: ignore[attr-defined]
    try:
        size = len(dataset)  # type: ignore[arg-type]
    except TypeError as err:
        raise DataError(
            f"expected a map-style torch Dataset (or a DataLoader over one), got "
            f"{type(dataset).__name__} without a length"
        ) from err
    if size == 0:
        raise DataError("the data set holds no samples")
    undo = normalization if normalization is not None else find_normalization(dataset)
    images, labels = [], []
    for index in range(size):
        image, label = _image_and_label(dataset[index], index, image_key, label_key)
        images.append(_as_array(image, index, undo))
        labels.append(_as_label(label, index))
    shapes = {a.shape for a in images}
    if len(shapes) > 1:
        first = images[0].shape
        odd = next(i for i, a in enumerate(images) if a.shape != first)
        raise DataError(
            f"images must share one shape: sample 0 is {first}, sample {odd} is "
            f"{images[odd].shape}; resize them in the data set's transform"
        )
    batch = to_uint8_images(np.stack(images), "the data set's images")
    prepared = prepare_images(batch, input_size, channels, tuple(mean), tuple(std))
    return prepared, to_class_labels(np.array(labels), "the data set's labels", size)


def _image_and_label(
    sample: object, index: int, image_key: str | None, label_key: str | None
) -> tuple[object, object]:
    if isinstance(sample, Mapping):
        keys = list(sample.keys())
        image = _pick(sample, image_key, IMAGE_KEYS, "image", index, keys)
        label = _pick(sample, label_key, LABEL_KEYS, "label", index, keys)
        return image, label
    if isinstance(sample, tuple | list) and len(sample) >= 2:
        return sample[0], sample[1]
    raise DataError(
        f"sample {index}: expected (image, label) or a dict with an image and a label, got "
        f"{type(sample).__name__}"
    )


def _pick(
    sample: Mapping[Any, Any],
    key: str | None,
    candidates: tuple[str, ...],
    what: str,
    index: int,
    keys: list[Any],
) -> object:
    names = (key,) if key is not None else candidates
    for name in names:
        if name in sample:
            return sample[name]
    raise DataError(
        f"sample {index}: no {what} under {list(names)}; the sample's keys are {keys[:10]} "
        f"(pass {what}_key=...)"
    )


def _as_array(image: object, index: int, undo: Normalization | None) -> np.ndarray:
    """One image as a NumPy array in its own layout, floats back in [0, 1]."""
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        if tensor.is_floating_point() and undo is not None:
            tensor = _unnormalize(tensor, undo, index)
        array = tensor.numpy()
    elif isinstance(image, np.ndarray):
        array = image
    elif hasattr(image, "getbands"):  # a PIL image: HW or HWC, usually uint8
        array = np.asarray(image)
    else:
        raise DataError(
            f"sample {index}: expected an image tensor, array or PIL image, got "
            f"{type(image).__name__}"
        )
    if array.ndim not in (2, 3):
        raise DataError(
            f"sample {index}: expected an image of shape (C, H, W), (H, W, C) or (H, W), got "
            f"{array.shape}"
        )
    if np.issubdtype(array.dtype, np.floating):
        low, high = float(array.min()), float(array.max())
        if not (np.isfinite(low) and np.isfinite(high)):
            raise DataError(f"sample {index}: the image holds NaN or infinite values")
        if low < -_TOLERANCE or high > 1.0 + _TOLERANCE:
            hint = (
                f"after undoing the normalisation (mean {undo[0]}, std {undo[1]}) "
                if undo is not None
                else ""
            )
            raise DataError(
                f"sample {index}: float image values {hint}lie in [{low:.3g}, {high:.3g}], "
                "expected [0, 1] (torchvision ToTensor); if the app normalises its images, pass "
                "normalization=(mean, std) of its Normalize, or give uint8 images"
            )
        array = np.clip(array, 0.0, 1.0)
    return array


def _unnormalize(tensor: torch.Tensor, undo: Normalization, index: int) -> torch.Tensor:
    if tensor.dim() != 3:
        raise DataError(
            f"sample {index}: a normalised image must be (C, H, W), got {tuple(tensor.shape)}"
        )
    channels = tensor.shape[0]
    mean, std = (torch.tensor([float(v) for v in values]) for values in undo)
    if len(mean) not in (1, channels) or len(std) not in (1, channels):
        raise DataError(
            f"sample {index}: normalization has {len(mean)} means and {len(std)} stds for "
            f"{channels} channels"
        )
    return tensor.float() * std.view(-1, 1, 1) + mean.view(-1, 1, 1)


def _as_label(label: object, index: int) -> int:
    value = label
    if isinstance(label, torch.Tensor | np.ndarray):
        count = label.numel() if isinstance(label, torch.Tensor) else label.size
        if count != 1:
            raise DataError(f"sample {index}: expected one label, got shape {tuple(label.shape)}")
        value = label.item()
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise DataError(f"sample {index}: expected an integer label, got {value!r:.40}")
    return int(value)
