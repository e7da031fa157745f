"""EcoFed's device on Flower's legacy API: a NumPyClient that uploads encoded activations.

For apps built on ``ClientApp(client_fn=...)``: ``client_fn`` returns
``EcoFedNumPyClient(split, trainloader, partition_id).to_client()`` where it returned the
app's own NumPyClient. ``fit`` runs the same code as the Message-API handler
(:func:`~ecofed_flwr.clients.upload_content`) and flattens its records into what a
NumPyClient returns (:mod:`ecofed_flwr.legacy_protocol`); the server side is
:class:`~ecofed_flwr.strategies.EcoFedLegacyStrategy`.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from flwr.app import ConfigRecord
from flwr.client import NumPyClient

from ecofed_flwr import defaults
from ecofed_flwr.clients.dropin import TorchData, local_data_from
from ecofed_flwr.clients.ecofed import (
    FrontLike,
    _front_and_description,
    check_request_front,
    upload_content,
)
from ecofed_flwr.codec import Codec, make_codec
from ecofed_flwr.data import LocalData
from ecofed_flwr.data.torch_data import Normalization
from ecofed_flwr.handshake import PARTITION_KEY
from ecofed_flwr.models import SplitModel, run_front
from ecofed_flwr.protocol.legacy import Scalar, fit_result_from_content
from ecofed_flwr.trainer import evaluate_back


class EcoFedNumPyClient(NumPyClient):
    """A NumPyClient that answers EcoFed's upload requests on Flower's legacy API.

    The device runs the frozen front forward over all its samples, encodes the activations
    with the codec the server names and returns them with the labels; it never trains and
    never receives weights.

    Parameters
    ----------
    split : SplitModel | FrozenFront
        The device's split (preferred: its description lets the server name what differs
        from its own front), or only its frozen front.
    data : LocalData | Dataset | DataLoader
        The training samples: prepared ``LocalData``, or the app's own torch data read by
        :func:`~ecofed_flwr.clients.local_data_from` at the first request (needs a
        ``SplitModel``).
    partition_id : int, optional
        The node's partition (``context.node_config["partition-id"]``); the server keys the
        device by it, so sampling is reproducible across runs. Without it the server keys the
        device by Flower's node id.
    codec : Codec | str, optional
        A fixed codec; by default each request names the codec to use.
    batch_size : int (default: ``defaults.FRONT_BATCH_SIZE``, 256)
        Forward batch size of the front (a request's ``front-batch-size`` overrides it).
    normalization : tuple[Sequence[float], Sequence[float]], optional
        ``(mean, std)`` of the app's own normalisation of float images, when it is neither a
        torchvision ``Normalize`` in the data set's transform nor a Hugging Face data set
        (read as stored); see :func:`~ecofed_flwr.clients.local_data_from`.
    image_key, label_key : str, optional
        Keys of dict samples (Hugging Face style).
    """

    def __init__(
        self,
        split: FrontLike,
        data: LocalData | TorchData,
        partition_id: int | None = None,
        codec: Codec | str | None = None,
        batch_size: int = defaults.FRONT_BATCH_SIZE,
        normalization: Normalization | None = None,
        image_key: str | None = None,
        label_key: str | None = None,
    ) -> None:
        if not isinstance(data, LocalData) and not isinstance(split, SplitModel):
            raise TypeError(
                "EcoFedNumPyClient: reading a Dataset or DataLoader needs the SplitModel (its "
                f"input size, channels, mean and std), got a {type(split).__name__}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if partition_id is not None and int(partition_id) < 0:
            raise ValueError(f"partition_id must be >= 0, got {partition_id}")
        self.split = split
        self.data = data
        self.partition_id = None if partition_id is None else int(partition_id)
        self.codec = make_codec(codec) if isinstance(codec, str) else codec
        self.batch_size = batch_size
        self.read_options = {
            "normalization": normalization,
            "image_key": image_key,
            "label_key": label_key,
        }

    def local_data(self) -> LocalData:
        """The training samples, prepared for the front (read once, then kept)."""
        if not isinstance(self.data, LocalData):
            assert isinstance(self.split, SplitModel)
            self.data = local_data_from(self.data, self.split, **self.read_options)  # type: ignore[arg-type]
        return self.data

    def get_properties(self, config: dict[str, Scalar]) -> dict[str, Scalar]:
        """The handshake: the device's front description and ``partition-id`` (-1: unknown)."""
        _, description = _front_and_description(self.split)
        partition = -1 if self.partition_id is None else self.partition_id
        return {**description, PARTITION_KEY: partition}

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
        """Upload: encoded activations and labels of every local sample.

        ``parameters`` is ignored (EcoFed sends no weights down); ``config`` is the upload
        request (codec, the server's front fingerprint, ``front-batch-size``). A request for
        another front is refused before anything is computed.

        Returns
        -------
        tuple[list[np.ndarray], int, dict[str, Scalar]]
            The payload and label arrays, the sample count and the metrics dict laid out as
            :mod:`ecofed_flwr.legacy_protocol` describes.
        """
        request = ConfigRecord(dict(config))
        check_request_front(request, _front_and_description(self.split)[1])  # before the data
        content = upload_content(
            request, self.split, self.local_data(), self.codec, self.batch_size
        )
        return fit_result_from_content(content)

    def evaluate(
        self, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[float, int, dict[str, Scalar]]:
        """Local accuracy of the front and the server's back, when a server sends the back.

        EcoFed evaluates at the server and its strategies send no evaluation requests; a
        strategy that does must send the back's state dict as NDArrays, in its order.

        Raises
        ------
        ValueError
            Without a ``SplitModel``, or when ``parameters`` is not the back's state dict.
        """
        if not isinstance(self.split, SplitModel):
            raise ValueError("evaluate needs the SplitModel (front and back), got a front only")
        back = copy.deepcopy(self.split.back)
        state = back.state_dict()
        shapes = [tuple(v.shape) for v in state.values()]
        got = [tuple(np.shape(p)) for p in parameters]
        if got != shapes:
            raise ValueError(
                f"evaluate expects the back's state dict as {len(shapes)} arrays of shapes "
                f"{shapes[:3]}..., got {len(got)} arrays of shapes {got[:3]}..."
            )
        back.load_state_dict(
            {k: torch.as_tensor(np.asarray(p)) for k, p in zip(state, parameters, strict=True)}
        )
        data = self.local_data()
        activations = run_front(self.split.front, data.images, self.batch_size)
        labels = torch.as_tensor(np.asarray(data.labels, dtype=np.int64))
        loss, accuracy = evaluate_back(back, activations, labels)
        return float(loss), len(labels), {"accuracy": float(accuracy)}
