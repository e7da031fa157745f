"""Drop-in device helpers: an existing Flower app's own data, prepared for EcoFed's front.

An app already loads its partition as a torch ``Dataset`` or ``DataLoader`` (any channels,
size and normalisation). :func:`local_data_from` turns it into the :class:`LocalData` the
upload handlers take, prepared exactly as the split's front expects (its input size,
channels, mean and std); :func:`local_data_fn` does so per node from the app's own
``load_data(partition_id, num_partitions)``, for :func:`add_ecofed_handlers`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from flwr.app import Context
from torch.utils.data import DataLoader, Dataset

from ecofed_flwr.clients.ecofed import LocalDataFn
from ecofed_flwr.data import LocalData
from ecofed_flwr.data.torch_data import Normalization, prepare_torch_data
from ecofed_flwr.models import SplitModel

#: What :func:`local_data_from` reads: the app's data set or a loader over it.
TorchData = Dataset[Any] | DataLoader[Any]


def local_data_from(
    data: TorchData | LocalData,
    split: SplitModel,
    num_classes: int | None = None,
    normalization: Normalization | None = None,
    image_key: str | None = None,
    label_key: str | None = None,
) -> LocalData:
    """The device's samples from the app's own ``Dataset`` or ``DataLoader``, ready to upload.

    Parameters
    ----------
    data : Dataset | DataLoader | LocalData
        The app's training data. Samples are read in the data set's index order (a
        loader's shuffling and batching do not apply). Images may be uint8 (tensors
        ``(C, H, W)``, arrays ``(H, W, C)``, PIL images) or float tensors in [0, 1]
        (``ToTensor``), with any channel count (1, 3 or 4) and size. A ``LocalData`` is
        returned as it is.
    split : SplitModel
        The device's split: the same model, cut, weights and input size as the server's.
        Its ``input_size``, ``in_chans``, ``mean`` and ``std`` define the preparation.
    num_classes : int, optional
        Classes of the task (default: ``split.num_classes``).
    normalization : tuple[Sequence[float], Sequence[float]], optional
        ``(mean, std)`` of the app's own ``Normalize``, undone first. By default it is read
        from a torchvision ``Normalize`` in the data set's transform; without one, float
        images must lie in [0, 1] (an error says so, and what range arrived, otherwise).
    image_key, label_key : str, optional
        Keys of dict samples (Hugging Face style); by default ``img``/``image``/... and
        ``label``/``labels``/....

    Returns
    -------
    LocalData
        float32 images ``(N, in_chans, input_size, input_size)`` normalised for the front,
        and their labels.

    Raises
    ------
    ecofed_flwr.data.DataError
        If the data cannot be read as labelled images (the message says which sample and
        why).
    """
    if isinstance(data, LocalData):
        return data
    images, labels = prepare_torch_data(
        data,
        split.input_size,
        split.in_chans,
        split.mean,
        split.std,
        normalization=normalization,
        image_key=image_key,
        label_key=label_key,
    )
    return LocalData(images, labels, num_classes or split.num_classes)


def local_data_fn(
    load_data: Callable[..., Any],
    split: SplitModel,
    *load_args: Any,
    **options: Any,
) -> LocalDataFn:
    """A ``load_data`` for :func:`add_ecofed_handlers` from the app's own data loading.

    Parameters
    ----------
    load_data : Callable[..., Any]
        The app's ``load_data(partition_id, num_partitions, *load_args)``, returning the
        partition's training ``DataLoader`` or ``Dataset``, or a tuple whose first item is
        one (Flower's templates return ``(trainloader, testloader)``).
    split : SplitModel
        The device's split (see :func:`local_data_from`).
    *load_args
        Further positional arguments of ``load_data`` after the partition id and count
        (e.g. the batch size of Flower's template: ``local_data_fn(load_data, split, 32)``;
        the batch size does not change what is uploaded).
    **options
        Passed to :func:`local_data_from` (``num_classes``, ``normalization``, ...).

    Returns
    -------
    Callable[[Context], LocalData]
        Reads ``partition-id`` and ``num-partitions`` from the node config and returns the
        partition's training data, prepared for the front.
    """

    def data(context: Context) -> LocalData:
        node = context.node_config
        try:
            partition_id, num_partitions = int(node["partition-id"]), int(node["num-partitions"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                "the node config needs partition-id and num-partitions (injected in simulation; "
                f"flower-supernode --node-config 'partition-id=0 num-partitions=10'), got {node}"
            ) from err
        loaded = _call_load_data(load_data, partition_id, num_partitions, load_args)
        train = loaded[0] if isinstance(loaded, tuple) else loaded
        return local_data_from(train, split, **options)

    return data


def _call_load_data(
    load_data: Callable[..., Any], partition_id: int, num_partitions: int, extra: tuple[Any, ...]
) -> Any:
    """``load_data(partition_id, num_partitions, *extra)``, or a TypeError saying what to pass."""
    try:
        signature = inspect.signature(load_data)
    except (TypeError, ValueError):  # no signature to read (e.g. a builtin): just call it
        return load_data(partition_id, num_partitions, *extra)
    try:
        signature.bind(partition_id, num_partitions, *extra)
    except TypeError as err:
        params = list(signature.parameters)
        raise TypeError(
            f"local_data_fn calls {getattr(load_data, '__name__', 'load_data')}"
            f"(partition_id, num_partitions, *load_args) with {len(extra)} further argument(s), "
            f"but it takes ({', '.join(params)}): {err}. Pass the rest after the split, e.g. "
            f"local_data_fn(load_data, split, {', '.join(params[2:]) or '...'})"
        ) from err
    return load_data(partition_id, num_partitions, *extra)
