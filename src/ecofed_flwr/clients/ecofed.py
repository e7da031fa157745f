"""Device side of EcoFed: run the frozen front forward, encode, upload with the labels."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from ecofed_flwr import defaults
from ecofed_flwr.codec import Codec, make_codec
from ecofed_flwr.data import LocalData, check_labels
from ecofed_flwr.handshake import (
    FINGERPRINT_KEY,
    INFO_ACTION,
    INFO_KEY,
    NUM_PARTITIONS_KEY,
    PARTITION_KEY,
    describe_front,
    describe_split,
    front_differences,
)
from ecofed_flwr.models import FrozenFront, SplitModel, run_front
from ecofed_flwr.nodes import is_partition_id
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

#: What a front factory may return: the split (preferred: its description lets the device
#: say what differs from the server's) or only its frozen front.
FrontLike = SplitModel | FrozenFront
FrontFactory = Callable[[Context], FrontLike]
#: What returns a device's training data for a request (see :func:`add_ecofed_handlers`).
LocalDataFn = Callable[[Context], LocalData]
#: What describes a device's front without building it (see :func:`add_ecofed_handlers`).
DescribeFn = Callable[[Context], Mapping[str, str | int]]


class FrontMismatchError(ValueError):
    """The server asked for activations of another front than the device's."""


def _front_and_description(front: FrontLike) -> tuple[FrozenFront, dict[str, str | int]]:
    if isinstance(front, SplitModel):
        return front.front, describe_split(front)
    return front, describe_front(front.fingerprint)


def check_request_front(config: ConfigRecord, description: dict[str, str | int]) -> None:
    """Refuse (before computing anything) a request for another front than the device's."""
    wanted = config.get(FINGERPRINT_KEY)
    if wanted is None:
        return
    if wanted != description[FINGERPRINT_KEY]:
        # An empty fingerprint is no difference to front_differences: name it here.
        diffs = front_differences(dict(config), description) or [
            f"fingerprint: server {str(wanted)[:16] or '(none)'}, device "
            f"{str(description[FINGERPRINT_KEY])[:16]}..."
        ]
        raise FrontMismatchError(
            "the server asked for activations of another front: " + "; ".join(diffs)
        )


def upload_reply(
    message: Message,
    front: FrontLike,
    data: LocalData,
    codec: Codec | None = None,
    batch_size: int = defaults.FRONT_BATCH_SIZE,
) -> Message:
    """Build the reply to an upload request: encoded activations of every local sample.

    Parameters
    ----------
    message : Message
        The server's ``train.ecofed_upload`` request; its config names the codec and the
        front it expects.
    front : SplitModel | FrozenFront
        The device's split (or only its frozen front).
    data : LocalData
        The samples to upload.
    codec : Codec, optional
        A fixed codec; by default the one the request names.
    batch_size : int (default: ``defaults.FRONT_BATCH_SIZE``, 256)
        Forward batch size (the request's ``front-batch-size`` overrides it).
    """
    config = message.content.config_records.get(CONFIG_KEY)
    if config is None:
        raise ValueError(f"the upload request lacks its ConfigRecord '{CONFIG_KEY}'")
    return Message(content=upload_content(config, front, data, codec, batch_size), reply_to=message)


def upload_content(
    config: ConfigRecord,
    front: FrontLike,
    data: LocalData,
    codec: Codec | None = None,
    batch_size: int = defaults.FRONT_BATCH_SIZE,
) -> RecordDict:
    """The content of an upload reply for the request config ``config`` (see
    :func:`upload_reply`); the legacy client sends the same records in its fit result."""
    frozen, description = _front_and_description(front)
    check_request_front(config, description)
    if codec is None:
        name = config.get("codec")
        if not isinstance(name, str):
            raise ValueError(f"the upload request names no codec (config 'codec' = {name!r})")
        codec = make_codec(name)
    batch_size = config_value(config, "front-batch-size", int, batch_size)
    if batch_size < 1:
        raise ValueError(f"front-batch-size must be >= 1, got {batch_size}")
    check_labels(data.labels, data.num_classes)
    # Compute time of this thread (CPU time, not wall-clock): what the device's work cost,
    # not inflated when other processes share the host.
    start = time.thread_time()
    activations = run_front(frozen, data.images, batch_size)
    front_seconds = time.thread_time() - start
    start = time.thread_time()
    encoded = codec.encode(activations)
    encode_seconds = time.thread_time() - start
    arrays, meta = encoded_to_records(encoded, frozen.fingerprint)
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
    return RecordDict(
        {ACTIVATIONS_KEY: arrays, LABELS_KEY: labels, META_KEY: meta, METRICS_KEY: metrics}
    )


def add_ecofed_handlers(
    app: ClientApp,
    front_factory: FrontFactory,
    load_data: LocalDataFn,
    codec: Codec | str | None = None,
    batch_size: int = defaults.FRONT_BATCH_SIZE,
    describe: DescribeFn | None = None,
) -> ClientApp:
    """Register EcoFed's handlers (``train.ecofed_upload``, the handshake
    ``query.ecofed_info``) on an existing ClientApp.

    The app's other handlers stay as they were, so an existing Flower project keeps its own
    ``train``/``evaluate`` functions and gains EcoFed's.

    Parameters
    ----------
    app : ClientApp
        The ClientApp to extend.
    front_factory : Callable[[Context], SplitModel | FrozenFront]
        Returns the device's split or frozen front (cache it: it is called for every
        request).
    load_data : Callable[[Context], LocalData]
        Returns the device's local training data.
    codec : Codec | str, optional
        A fixed codec; by default each request names the codec to use.
    batch_size : int (default: ``defaults.FRONT_BATCH_SIZE``, 256)
        Forward batch size of the front.
    describe : Callable[[Context], Mapping[str, str | int]], optional
        Returns the front's description (``model``, ``cut``, ``weights``, ``input-size``, as
        :func:`~ecofed_flwr.handshake.describe_front` names them) without building it. The
        handshake is then answered from it alone, with an empty fingerprint unless it gives
        one: neither ``front_factory`` nor ``load_data`` is called, and the server checks
        the fingerprint at the first upload. Without it the handshake builds the front
        (``front_factory``) and sends its full description and fingerprint.

    Returns
    -------
    ClientApp
        ``app``, for chaining.
    """
    fixed = make_codec(codec) if isinstance(codec, str) else codec
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    @app.train(UPLOAD_ACTION)
    def ecofed_upload(message: Message, context: Context) -> Message:
        context = assigned_context(message, context)
        front = front_factory(context)
        config = message.content.config_records.get(CONFIG_KEY)
        if config is not None:  # a request for another front is refused before data is read
            check_request_front(config, _front_and_description(front)[1])
        return upload_reply(message, front, load_data(context), fixed, batch_size)

    @app.query(INFO_ACTION)
    def ecofed_info(message: Message, context: Context) -> Message:
        if describe is not None:
            return info_reply(message, context, {**describe_front(""), **describe(context)})
        return info_reply(message, context, front_factory(context))

    return app


def assigned_context(message: Message, context: Context) -> Context:
    """``context`` with the partition the server names in its request, if it names one.

    With run config ``partition-assignment = "server"`` (virtual devices in simulation) the
    upload request carries ``partition-id`` and ``num-partitions``; the device's data loader
    then sees them in its node config, as if they were its own. A request without them
    leaves ``context`` as it is.

    Raises
    ------
    ValueError
        If the request names a partition that is not an int in ``[0, num-partitions)``.
    """
    config = message.content.config_records.get(CONFIG_KEY)
    if config is None or PARTITION_KEY not in config:
        return context
    partition, total = config.get(PARTITION_KEY), config.get(NUM_PARTITIONS_KEY)
    if not (
        isinstance(partition, int)
        and isinstance(total, int)
        and is_partition_id(partition)
        and is_partition_id(total)
        and partition < total
    ):
        raise ValueError(
            f"the upload request names partition {partition!r} of {total!r}; expected ints "
            "with 0 <= partition-id < num-partitions"
        )
    node_config = {**context.node_config, PARTITION_KEY: partition, NUM_PARTITIONS_KEY: total}
    return Context(
        run_id=context.run_id,
        node_id=context.node_id,
        node_config=node_config,
        state=context.state,
        run_config=context.run_config,
    )


def info_reply(
    message: Message, context: Context, front: FrontLike | Mapping[str, str | int]
) -> Message:
    """The reply to the server's handshake: partition id and the device's front description.

    ``front`` is the device's split or frozen front, or its description
    (:func:`~ecofed_flwr.handshake.describe_front`; an empty fingerprint when the front is
    not built).
    """
    if isinstance(front, Mapping):
        description = dict(front)
    else:
        _, description = _front_and_description(front)
    raw = context.node_config.get(PARTITION_KEY, -1)
    try:
        partition = int(raw)
    except (TypeError, ValueError):
        partition = -1
    info = ConfigRecord({**description, PARTITION_KEY: partition})
    return Message(content=RecordDict({INFO_KEY: info}), reply_to=message)
