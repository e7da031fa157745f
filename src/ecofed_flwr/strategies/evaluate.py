"""Centralized test evaluation of EcoFed's classifier (front + back) on an app's own data."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from flwr.app import ArrayRecord, MetricRecord
from torch.utils.data import DataLoader, Dataset

from ecofed_flwr import defaults
from ecofed_flwr.clients.dropin import local_data_from
from ecofed_flwr.data.torch_data import Normalization
from ecofed_flwr.models import SplitModel, run_front
from ecofed_flwr.trainer import evaluate_back, resolve_device


def make_evaluate_fn(
    split: SplitModel,
    test_data: Dataset[Any] | DataLoader[Any],
    device: str = defaults.DEVICE,
    normalization: Normalization | None = None,
    image_key: str | None = None,
    label_key: str | None = None,
    batch_size: int = defaults.FRONT_BATCH_SIZE,
) -> Callable[[int, ArrayRecord], MetricRecord]:
    """An ``evaluate_fn`` for EcoFed's strategies: the back's weights on the app's test set.

    A Flower app's own ``evaluate_fn`` loads the arrays into its own model; EcoFed's strategies
    pass the back's weights only, and the classifier is ``back(front(x))``. This factory
    prepares the test set once for the split's front (as
    :func:`~ecofed_flwr.clients.local_data_from` prepares a device's data), runs the frozen
    front over it once, and returns a function that loads the arrays into a copy of the back
    and evaluates it in eval mode (BatchNorm with running statistics, no dropout).

    Parameters
    ----------
    split : SplitModel
        The server's split (the one given to ``from_split``).
    test_data : Dataset | DataLoader
        The app's test set, read like a device's data (see
        :func:`~ecofed_flwr.data.torch_data.prepare_torch_data`: uint8 or [0, 1] images, the
        app's torchvision ``Normalize`` undone).
    device : str (default: ``defaults.DEVICE``)
        Where the back is evaluated (``auto``: CUDA when available).
    normalization : tuple[Sequence[float], Sequence[float]], optional
        ``(mean, std)`` of the app's own normalisation, when it is not a torchvision
        ``Normalize`` in the data set's transform.
    image_key, label_key : str, optional
        Keys of dict samples (Hugging Face style).
    batch_size : int (default: ``defaults.FRONT_BATCH_SIZE``)
        Forward batch size of the front.

    Returns
    -------
    Callable[[int, ArrayRecord], MetricRecord]
        ``evaluate_fn(server_round, arrays)`` returning ``accuracy`` and ``loss`` (mean
        cross-entropy) on the whole test set.
    """
    test = local_data_from(
        test_data, split, normalization=normalization, image_key=image_key, label_key=label_key
    )
    activations = run_front(split.front, test.images, batch_size)
    targets = torch.as_tensor(test.labels, dtype=torch.int64)
    back = copy.deepcopy(split.back).to(resolve_device(device))

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        back.load_state_dict(arrays.to_torch_state_dict())
        loss, accuracy = evaluate_back(back, activations, targets)
        return MetricRecord({"accuracy": accuracy, "loss": loss})

    return evaluate_fn
