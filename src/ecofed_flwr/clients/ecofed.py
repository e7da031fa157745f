"""Device side of EcoFed: run the frozen front forward, encode, upload with the labels."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from ecofed_flwr.codec import Codec, make_codec
from ecofed_flwr.models import FrozenFront
from ecofed_flwr.protocol import (
    ACTIVATIONS_KEY,
    CONFIG_KEY,
    LABELS_KEY,
    META_KEY,
    METRICS_KEY,
    UPLOAD_ACTION,
    config_value,
    encoded_to_records,
    label_dtype,
)
from ecofed_flwr.trainer import run_front


@dataclass(frozen=True)
class LocalData:
    """A device's training data, already prepared as model input.

    Attributes
    ----------
    images : torch.Tensor
        Float inputs ``(N, C, H, W)``, normalised as the front expects.
    labels : np.ndarray
        Integer labels ``(N,)``.
    num_classes : int
        Number of classes of the task.
    """

    images: torch.Tensor
    labels: np.ndarray
    num_classes: int


FrontFactory = Callable[[Context], FrozenFront]
DataLoader = Callable[[Context], LocalData]


def upload_reply(
    message: Message,
    front: FrozenFront,
    data: LocalData,
    codec: Codec | None = None,
    batch_size: int = 256,
) -> Message:
    """Build the reply to an upload request: encoded activations of every local sample.

    Parameters
    ----------
    message : Message
        The server's ``train.ecofed_upload`` request; its config names the codec.
    front : FrozenFront
        The device's frozen front-end.
    data : LocalData
        The samples to upload.
    codec : Codec, optional
        A fixed codec; by default the one the request names.
    batch_size : int (default: 256)
        Forward batch size (the request's ``front-batch-size`` overrides it).
    """
    config = message.content.config_records.get(CONFIG_KEY, ConfigRecord())
    codec = codec or make_codec(str(config.get("codec", "paper")))
    batch_size = config_value(config, "front-batch-size", int, batch_size)
    start = time.perf_counter()
    activations = run_front(front, data.images, batch_size)
    front_seconds = time.perf_counter() - start
    start = time.perf_counter()
    encoded = codec.encode(activations)
    encode_seconds = time.perf_counter() - start
    arrays, meta = encoded_to_records(encoded, front.fingerprint)
    labels = ArrayRecord(
        {"labels": Array(np.ascontiguousarray(data.labels, dtype=label_dtype(data.num_classes)))}
    )
    metrics = MetricRecord(
        {
            "num-examples": len(data.labels),
            "front-seconds": front_seconds,
            "encode-seconds": encode_seconds,
        }
    )
    content = RecordDict(
        {ACTIVATIONS_KEY: arrays, LABELS_KEY: labels, META_KEY: meta, METRICS_KEY: metrics}
    )
    return Message(content=content, reply_to=message)


def add_ecofed_handlers(
    app: ClientApp,
    front_factory: FrontFactory,
    load_data: DataLoader,
    codec: Codec | str | None = None,
    batch_size: int = 256,
) -> ClientApp:
    """Register EcoFed's upload handler (``train.ecofed_upload``) on an existing ClientApp.

    The app's other handlers stay as they were, so an existing Flower project keeps its own
    ``train``/``evaluate`` functions and gains EcoFed's.

    Parameters
    ----------
    app : ClientApp
        The ClientApp to extend.
    front_factory : Callable[[Context], FrozenFront]
        Returns the device's frozen front (cache it: it is called for every request).
    load_data : Callable[[Context], LocalData]
        Returns the device's local training data.
    codec : Codec | str, optional
        A fixed codec; by default each request names the codec to use.
    batch_size : int (default: 256)
        Forward batch size of the front.

    Returns
    -------
    ClientApp
        ``app``, for chaining.
    """
    fixed = make_codec(codec) if isinstance(codec, str) else codec

    @app.train(UPLOAD_ACTION)
    def ecofed_upload(message: Message, context: Context) -> Message:
        return upload_reply(message, front_factory(context), load_data(context), fixed, batch_size)

    return app
