"""EcoFed strategy (Message API): a thin Flower adapter around :class:`EcoFedServer`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from logging import WARNING
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy
from flwr.supercore import log
from torch import nn

from ecofed_flwr import defaults
from ecofed_flwr.codec import EncodedBatch
from ecofed_flwr.handshake import INFO_KEY, INFO_MESSAGE_TYPE, NUM_PARTITIONS_KEY, PARTITION_KEY
from ecofed_flwr.nodes import PARTITION_ASSIGNMENTS, wait_for_nodes
from ecofed_flwr.protocol import CONFIG_KEY, UPLOAD_MESSAGE_TYPE, UploadRefused, decode_upload
from ecofed_flwr.round_log import refusal_summary
from ecofed_flwr.server import NoUploadError, RoundPlan
from ecofed_flwr.strategies.base import EcoFedAdapter, RoundCallback, exchange
from ecofed_flwr.strategies.settings import FLOWER_RENAMED, FLOWER_UNUSED, split_settings

__all__ = [
    "FLOWER_RENAMED",
    "FLOWER_UNUSED",
    "EcoFedStrategy",
    "FlowerEvaluateFn",
    "NoUploadError",
    "ReplyError",
    "RoundCallback",
    "refusal_summary",
    "split_settings",
]

FlowerEvaluateFn = Callable[[int, ArrayRecord], MetricRecord | None]


class ReplyError(ValueError):
    """An upload reply that cannot be used; the message names the node and the reason."""


def state_to_arrays(state: Mapping[str, torch.Tensor]) -> ArrayRecord:
    """A state dict as the ArrayRecord Flower carries (tensors detached, on the CPU)."""
    return ArrayRecord({k: v.detach().cpu() for k, v in state.items()})


class EcoFedStrategy(EcoFedAdapter, Strategy):
    """EcoFed: train the server half of a split model on replayed device activations.

    Devices run a frozen, pre-trained front-end forward only and upload its encoded
    activations with their labels; the server keeps them in a replay buffer and trains the
    back-end on them, round after round, without asking for them again and without sending
    any gradient or weight down (https://arxiv.org/abs/2304.05495). The round's logic lives in
    :class:`~ecofed_flwr.server.EcoFedServer` (``self.server``); this class turns it into
    Flower messages, measures their bytes and validates the replies. Its parameters are those
    of :class:`~ecofed_flwr.strategies.base.EcoFedAdapter` (``back``, ``fingerprint``,
    ``activation_shape``, ``num_classes``, then ``codec``, ``refresh``, ``replay``,
    ``trainer``, ``lr_schedule``, ``validation_fraction``, ``keep``, ``fraction_train``,
    ``min_train_nodes``, ``min_available_nodes``, ``max_samples_per_client``,
    ``upload_config``, ``front_description``, ``on_round``, ``seed``), and:

    Parameters
    ----------
    partition_assignment : str (default: ``defaults.PARTITION_ASSIGNMENT``, "node")
        ``"node"``: a device's partition is its own (node config ``partition-id``), learnt
        once per node by a handshake. ``"server"``: the server samples partition ids and
        names one in each upload request, sent to any free connected node (virtual devices
        in simulation): no handshake, and a round asks only the nodes it samples.
    num_partitions : int (default: 0)
        With ``"server"``: partitions to sample from (0: one per connected node).
    """

    def __init__(
        self,
        *args: Any,
        partition_assignment: str = defaults.PARTITION_ASSIGNMENT,
        num_partitions: int = 0,
        **kwargs: Any,
    ) -> None:
        if partition_assignment not in PARTITION_ASSIGNMENTS:
            raise ValueError(
                f"partition_assignment must be one of {PARTITION_ASSIGNMENTS}, got "
                f"{partition_assignment!r}"
            )
        if num_partitions < 0:
            raise ValueError(f"num_partitions must be >= 0, got {num_partitions}")
        super().__init__(*args, **kwargs)
        self.partition_assignment = partition_assignment
        self.num_partitions = num_partitions
        self._total = 0  # partitions sampled from in the round in progress (server-assigned)

    def _log_unused_start_settings(
        self, train_config: ConfigRecord, evaluate_config: ConfigRecord | None
    ) -> None:
        """Say once, by name, what of the app's ``start`` settings EcoFed does not use."""
        trainer = self.server.trainer.config
        if train_config:
            log(
                WARNING,
                "EcoFed: train_config %s reaches the devices with each upload request, but "
                "devices do not train: the server trains the back with learning_rate %g "
                "(%s schedule), batch_size %d, local_epochs %d, momentum %g (from_split's "
                "settings)",
                sorted(train_config),
                trainer.learning_rate,
                self.server.schedule.name,
                trainer.batch_size,
                trainer.local_epochs,
                trainer.momentum,
            )
        if evaluate_config:
            log(
                WARNING,
                "EcoFed: evaluate_config %s is not used: EcoFed evaluates at the server "
                "(validation hold-out and evaluate_fn), never on devices",
                sorted(evaluate_config),
            )

    # ------------------------------------------------------------------ hooks

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Sample nodes (seeded, by partition id) and ask those the refresh policy names.

        ``arrays`` is not sent: devices never receive weights in EcoFed.
        """
        if self.partition_assignment == "server":
            plan, named = self._assign(grid, server_round), True
        else:
            handshake_seconds = self._discover(grid, server_round)
            plan, named = self.server.begin_round(server_round, list(self.nodes.clients())), False
            # The handshake with new nodes is part of this round's waiting for devices.
            self.server.current.exchange_seconds = handshake_seconds
        base = self.upload_request(server_round, config)
        request = ConfigRecord(base)
        messages = []
        for client in plan.uploaders:
            if named:
                request = ConfigRecord(
                    {**base, PARTITION_KEY: int(client), NUM_PARTITIONS_KEY: self._total}
                )
            message = Message(
                content=RecordDict({CONFIG_KEY: request}),
                message_type=UPLOAD_MESSAGE_TYPE,
                dst_node_id=self.nodes.node_of(client),
            )
            self.meter.book(server_round, client, "down", message)
            messages.append(message)
        return messages

    def _assign(self, grid: Grid, server_round: int) -> RoundPlan:
        """Sample partition ids and give each uploader a free connected node (no handshake)."""
        nodes = wait_for_nodes(
            grid.get_node_ids, self.min_available_nodes, self.timeout, server_round
        )
        self._total = self.num_partitions or len(nodes)
        plan = self.server.begin_round(server_round, [str(i) for i in range(self._total)])
        assigned = self.nodes.assign(plan.uploaders, nodes)
        for client in plan.uploaders:
            if client not in assigned:
                self.server.refuse(client, "no free node to ask (all connected nodes excluded)")
        return RoundPlan(plan.round, plan.sampled, [c for c in plan.uploaders if c in assigned])

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Validate and buffer the uploads, then train the back on this round's slots."""
        server = self.server
        for reply in replies:
            client = self.nodes.client_of(reply.metadata.src_node_id)
            self.meter.book(server_round, client, "up", reply)
            if reply.has_error():
                reason = self.device_error(reply.metadata.src_node_id, reply.error.reason)
                self.take_reply(client, None, f"client error {reply.error.code}: {reason}")
            else:
                self.take_reply(client, reply.content, None)
            refused = server.current.refused.get(client)
            if refused is not None and self.partition_assignment == "server":
                # Virtual devices are interchangeable: a node that failed is not used again.
                self.nodes.exclude(reply.metadata.src_node_id, refused)
        server.train()
        values: dict[str, int | float | list[int] | list[float]] = {**server.train_metrics()}
        return state_to_arrays(server.trainer.back.state_dict()), MetricRecord(values)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """EcoFed evaluates at the server (hold-out and ``evaluate_fn``): no messages."""
        return []

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """No federated evaluation (see :meth:`configure_evaluate`)."""
        return None

    # ------------------------------------------------------------ validation

    def validate_reply(self, reply: Message) -> tuple[EncodedBatch, np.ndarray, float]:
        """Check one upload reply; return its batch, labels and device seconds.

        Every check is :func:`ecofed_flwr.protocol.decode_upload` (the single validation
        point); nothing from the reply's bytes is used before it passes.

        Raises
        ------
        ReplyError
            When the reply is an error reply or is refused (the message says why).
        """
        if reply.has_error():
            reason = self.device_error(reply.metadata.src_node_id, reply.error.reason)
            raise ReplyError(f"client error {reply.error.code}: {reason}")
        try:
            upload = decode_upload(reply.content, self.upload_spec)
        except UploadRefused as err:
            raise ReplyError(f"{err.category}: {err}") from err
        return upload.batch, upload.labels, upload.device_seconds

    # ------------------------------------------------------------ nodes

    def _discover(self, grid: Grid, server_round: int) -> float:
        """Wait for enough nodes, then ask each new one for its partition id and front;
        the seconds the handshake took."""
        nodes = wait_for_nodes(
            grid.get_node_ids, self.min_available_nodes, self.timeout, server_round
        )
        new = self.nodes.connected(nodes)
        if not new:
            return 0.0
        request = ConfigRecord(dict(self.front_description))
        messages = [
            Message(
                content=RecordDict({CONFIG_KEY: request}),
                message_type=INFO_MESSAGE_TYPE,
                dst_node_id=node,
            )
            for node in new
        ]
        started = time.perf_counter()
        replies = {
            r.metadata.src_node_id: r for r in exchange(grid, messages, timeout=self.timeout)
        }
        seconds = time.perf_counter() - started
        for message in messages:
            node = message.metadata.dst_node_id
            reply = replies.get(node)
            self.admit(server_round, node, _read_info(reply), message, reply)
        return seconds

    # ------------------------------------------------------------ round loop

    def start(
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float = 3600,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn: FlowerEvaluateFn | None = None,
    ) -> Result:
        """Run ``num_rounds`` EcoFed rounds and return the kept back's weights.

        Same signature as :meth:`flwr.serverapp.strategy.Strategy.start`. ``initial_arrays``
        (the back's state dict; empty to keep the back as built) is loaded into the back
        first. Each round: sample, ask the nodes the refresh policy names for uploads,
        validate and buffer replies, train the back on this round's slots, validate on the
        hold-out and call ``evaluate_fn(round, arrays)`` (centralized test evaluation,
        reported only). ``Result.arrays`` is the back the run keeps (best by validation
        unless ``keep="last"``). A server that already has rounds (restored with
        :meth:`EcoFedServer.load_state` and :meth:`load_state_dict`: a resumed run) goes on
        after its last round, and ``initial_arrays`` is ignored.

        Raises
        ------
        NoUploadError
            If no upload at all was accepted in the whole run.
        """
        server = self.server
        resumed = self.begin_run(num_rounds)
        if not resumed:
            self._load_initial(initial_arrays)
        self.timeout = timeout
        train_config = ConfigRecord() if train_config is None else train_config
        self._log_unused_start_settings(train_config, evaluate_config)
        result = Result()
        if evaluate_fn is not None:

            def evaluate_back(back: nn.Module) -> dict[str, float]:
                res = evaluate_fn(server.round, state_to_arrays(back.state_dict()))
                return {} if res is None else {k: float(v) for k, v in res.items()}  # type: ignore[arg-type]

            server.evaluate_fn = evaluate_back
        if resumed:
            for report in server.reports:
                if report.metrics:
                    result.evaluate_metrics_serverapp[report.round] = MetricRecord(
                        dict(report.metrics)
                    )
        else:
            report = self.report(server.evaluate_initial())
            if report.metrics:
                result.evaluate_metrics_serverapp[0] = MetricRecord(dict(report.metrics))
        for current_round in range(server.round + 1, num_rounds + 1):
            # Devices never receive weights, so no copy of the back is made for the request.
            messages = list(self.configure_train(current_round, ArrayRecord(), train_config, grid))
            exchange_started = time.perf_counter()
            replies = exchange(grid, messages, timeout=timeout)
            server.current.exchange_seconds += time.perf_counter() - exchange_started
            _, train_metrics = self.aggregate_train(current_round, replies)
            if train_metrics is not None:
                result.train_metrics_clientapp[current_round] = train_metrics
            report = self.report(server.close_round())
            if report.metrics:
                result.evaluate_metrics_serverapp[current_round] = MetricRecord(
                    dict(report.metrics)
                )
        self.finish_run()
        result.arrays = state_to_arrays(server.result_state())
        return result

    def _load_initial(self, initial_arrays: ArrayRecord) -> None:
        if len(initial_arrays) == 0:
            return
        back = self.server.trainer.back
        state = initial_arrays.to_torch_state_dict()
        own = back.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        shapes = [k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape)]
        if missing or unexpected or shapes:
            raise ValueError(
                "initial_arrays must be the state dict of the split's back (the server half), "
                f"not of another model: {len(missing)} missing keys (e.g. {missing[:3]}), "
                f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]}), {len(shapes)} "
                f"shape mismatches (e.g. {sorted(shapes)[:3]}). Pass ArrayRecord() to start from "
                "the split's back as built."
            )
        back.load_state_dict(state)
        self.server.reset_best()


def _read_info(reply: Message | None) -> dict[str, Any]:
    """The node's info record, or {} when it did not answer the handshake."""
    if reply is None or reply.has_error():
        return {}
    record = reply.content.config_records.get(INFO_KEY)
    return dict(record) if record is not None else {}
