"""EcoFed strategy: frozen-front activation uploads, a replay buffer and server-side training."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from logging import INFO, WARNING

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy
from flwr.serverapp.strategy.strategy_utils import sample_nodes
from flwr.supercore import log
from torch import nn

from ecofed_flwr.buffer import (
    REPLAY_SELECTIONS,
    RefreshPolicy,
    ReplayBuffer,
    make_refresh_policy,
    select_replay,
)
from ecofed_flwr.codec import CodecError, EncodedBatch, make_codec
from ecofed_flwr.ledger import Ledger
from ecofed_flwr.protocol import (
    ACTIVATIONS_KEY,
    CONFIG_KEY,
    LABELS_KEY,
    META_KEY,
    METRICS_KEY,
    UPLOAD_MESSAGE_TYPE,
    config_value,
    records_to_encoded,
    split_reply_bytes,
    wire_nbytes,
)
from ecofed_flwr.trainer import BackTrainer, TrainerConfig

RoundCallback = Callable[["RoundReport"], None]


class ReplyError(ValueError):
    """An upload reply that cannot be used; the message names the node and the reason."""


@dataclass
class RoundReport:
    """What happened in one EcoFed round (one entry of the results' ``rounds`` list)."""

    round: int
    refresh: bool
    sampled: list[str]
    uploaded: list[str]
    refused: dict[str, str]
    slots: list[str]
    samples_uploaded: int
    bytes_up: int
    bytes_down: int
    bytes_up_activations: int
    bytes_up_labels: int
    buffer_bytes: int
    train_loss: float
    train_samples: int
    server_train_seconds: float
    device_seconds: dict[str, float]
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """Plain-JSON form of the report."""
        out = dict(self.__dict__)
        out.update(self.metrics)
        del out["metrics"]
        return out


@dataclass
class _RoundState:
    """What the hooks of one round hand to each other and to the round's report."""

    asked: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    slots: list[str] = field(default_factory=list)
    samples_uploaded: int = 0
    device_seconds: dict[str, float] = field(default_factory=dict)
    train_loss: float = float("nan")
    train_samples: int = 0
    server_train_seconds: float = 0.0


def _state_to_arrays(module: nn.Module) -> ArrayRecord:
    return ArrayRecord({k: v.detach().cpu() for k, v in module.state_dict().items()})


def _arrays_to_state(arrays: ArrayRecord) -> dict[str, torch.Tensor]:
    return arrays.to_torch_state_dict()


class EcoFedStrategy(Strategy):
    """EcoFed: train the server half of a split model on replayed device activations.

    Devices run a frozen, pre-trained front-end forward only and upload its encoded
    activations with their labels; the server keeps them in a replay buffer and trains the
    back-end on them, round after round, without asking for them again and without sending
    any gradient or weight down. Implementation of https://arxiv.org/abs/2304.05495 with the
    extras of ecofed-flwr (codecs, refresh policies, pooled training).

    Parameters
    ----------
    back : nn.Module
        The back-end (server half) to train; ``initial_arrays`` given to :meth:`start` are
        loaded into it.
    fingerprint : str
        Fingerprint of the frozen front every upload must come from.
    activation_shape : tuple[int, ...]
        Shape of one sample's activation at the cut.
    num_classes : int
        Labels must lie in ``[0, num_classes)``.
    codec : str (default: "paper")
        Codec name every upload must use (see :func:`ecofed_flwr.codec.make_codec`).
    refresh : str | RefreshPolicy (default: "every:2")
        Which sampled clients upload in a round: ``"every:P"`` (paper, ``P = 2``),
        ``"once"`` or ``"stall:N"``.
    replay : str (default: "paper")
        How replay slots are filled: ``"paper"`` (a random buffered client per slot) or
        ``"sampled"`` (the round's sampled clients that have entries).
    trainer : TrainerConfig (default: TrainerConfig())
        Server training settings (mode ``"copies"`` is the paper's, ``"pooled"`` ours).
    fraction_train : float (default: 0.2)
        Fraction of connected nodes sampled each round (the paper: 20 of 100).
    min_train_nodes : int (default: 2)
        Minimum number of nodes sampled each round.
    min_available_nodes : int (default: 2)
        Minimum number of connected nodes before a round starts.
    max_samples_per_client : int (default: 1_000_000)
        Larger uploads are refused (protects server memory).
    upload_config : dict, optional
        Extra entries for every upload request's ConfigRecord (e.g. ``front-batch-size``).
    on_round : Callable[[RoundReport], None], optional
        Called after each round (after evaluation) with the round's report.
    seed : int (default: 0)
        Seeds node sampling and replay selection.
    """

    def __init__(
        self,
        back: nn.Module,
        fingerprint: str,
        activation_shape: tuple[int, ...],
        num_classes: int,
        codec: str = "paper",
        refresh: str | RefreshPolicy = "every:2",
        replay: str = "paper",
        trainer: TrainerConfig | None = None,
        fraction_train: float = 0.2,
        min_train_nodes: int = 2,
        min_available_nodes: int = 2,
        max_samples_per_client: int = 1_000_000,
        upload_config: dict[str, int | float | str | bool] | None = None,
        on_round: RoundCallback | None = None,
        seed: int = 0,
    ) -> None:
        if not 0.0 < fraction_train <= 1.0:
            raise ValueError(f"fraction_train must be in (0, 1], got {fraction_train}")
        if min_train_nodes < 1 or min_available_nodes < 1:
            raise ValueError("min_train_nodes and min_available_nodes must be >= 1")
        if replay not in REPLAY_SELECTIONS:
            raise ValueError(f"replay must be one of {REPLAY_SELECTIONS}, got {replay!r}")
        self.codec = make_codec(codec)
        self.refresh = make_refresh_policy(refresh) if isinstance(refresh, str) else refresh
        self.replay = replay
        self.fingerprint = fingerprint
        self.activation_shape = tuple(activation_shape)
        self.num_classes = num_classes
        self.fraction_train = fraction_train
        self.min_train_nodes = min_train_nodes
        self.min_available_nodes = min_available_nodes
        self.max_samples_per_client = max_samples_per_client
        self.upload_config = dict(upload_config or {})
        self.on_round = on_round
        self.seed = seed
        self.trainer = BackTrainer(back, trainer or TrainerConfig())
        self.buffer = ReplayBuffer(self.codec)
        self.ledger = Ledger()
        self.reports: list[RoundReport] = []
        self._rng = np.random.default_rng(seed)
        self._sampled: list[int] = []
        self._round = _RoundState()

    def summary(self) -> None:
        """Log summary configuration of the strategy."""
        cfg = self.trainer.config
        log(INFO, "\t├──> EcoFed front fingerprint: %s", self.fingerprint[:16])
        log(
            INFO,
            "\t├──> Codec: %s | refresh: %s | replay: %s",
            self.codec.name,
            self.refresh.name,
            self.replay,
        )
        log(
            INFO,
            "\t├──> Sampling: fraction %.2f, min %d of min %d available",
            self.fraction_train,
            self.min_train_nodes,
            self.min_available_nodes,
        )
        log(
            INFO,
            "\t└──> Server trainer: %s, lr %g, momentum %g, batch %d, epochs %d on %s",
            cfg.mode,
            cfg.learning_rate,
            cfg.momentum,
            cfg.batch_size,
            cfg.local_epochs,
            self.trainer.device,
        )

    # ------------------------------------------------------------------ hooks

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Sample nodes and ask those the refresh policy names for their activations.

        ``arrays`` is not sent: devices never receive weights in EcoFed.
        """
        num_nodes = int(len(list(grid.get_node_ids())) * self.fraction_train)
        sample_size = max(num_nodes, self.min_train_nodes)
        self._sampled, _ = sample_nodes(grid, self.min_available_nodes, sample_size)
        uploaders = [
            n for n in self._sampled if self.refresh.needs_upload(server_round, str(n), self.buffer)
        ]
        request = ConfigRecord(
            {
                **dict(config),
                **self.upload_config,
                "server-round": server_round,
                "codec": self.codec.name,
                "ecofed-fingerprint": self.fingerprint,
            }
        )
        messages = []
        for node_id in uploaders:
            message = Message(
                content=RecordDict({CONFIG_KEY: request}),
                message_type=UPLOAD_MESSAGE_TYPE,
                dst_node_id=node_id,
            )
            self.ledger.add(server_round, str(node_id), "down", "control", wire_nbytes(message))
            messages.append(message)
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Validate and buffer the uploads, then train the back on this round's slots."""
        uploaded: list[str] = []
        refused: dict[str, str] = {}
        device_seconds: dict[str, float] = {}
        samples = 0
        for reply in replies:
            node = str(reply.metadata.src_node_id)
            sizes = split_reply_bytes(reply)
            self.ledger.add(server_round, node, "up", "activations", sizes.activations)
            self.ledger.add(server_round, node, "up", "labels", sizes.labels)
            self.ledger.add(server_round, node, "up", "control", sizes.control)
            try:
                batch, labels, seconds = self.validate_reply(reply)
            except ReplyError as err:
                refused[node] = str(err)
                log(
                    WARNING,
                    "EcoFed round %d: refused reply of node %s: %s",
                    server_round,
                    node,
                    err,
                )
                continue
            self.buffer.put(node, batch, labels, server_round)
            uploaded.append(node)
            device_seconds[node] = seconds
            samples += len(labels)
        for node in self._round.asked:
            if node not in uploaded and node not in refused:
                refused[node] = "no reply before the timeout"
                log(WARNING, "EcoFed round %d: node %s did not reply", server_round, node)

        free_slots = len(self._sampled) - len(uploaded)
        slots = uploaded + select_replay(
            self.replay,
            free_slots,
            [str(n) for n in self._sampled if str(n) not in uploaded],
            self.buffer,
            self._rng,
        )
        stats = self.trainer.train_round(self.buffer, slots, server_round)
        state = self._round
        state.uploaded, state.refused, state.slots = uploaded, refused, slots
        state.samples_uploaded, state.device_seconds = samples, device_seconds
        state.train_loss, state.train_samples = stats.loss, stats.samples
        state.server_train_seconds = stats.seconds
        metrics = MetricRecord(
            {
                "num-examples": stats.samples,
                "train-loss": stats.loss if stats.samples else 0.0,
                "samples-uploaded": samples,
                "buffer-bytes": self.buffer.nbytes,
            }
        )
        return _state_to_arrays(self.trainer.back), metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """EcoFed evaluates the global model at the server (``evaluate_fn``): no messages."""
        return []

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """No federated evaluation (see :meth:`configure_evaluate`)."""
        return None

    # ------------------------------------------------------------ validation

    def validate_reply(self, reply: Message) -> tuple[EncodedBatch, np.ndarray, float]:
        """Check one upload reply; return its batch, labels and device seconds.

        Raises
        ------
        ReplyError
            When the reply is an error, lacks a record, comes from another front, uses
            another codec, or carries a malformed payload or labels.
        """
        if reply.has_error():
            raise ReplyError(f"client error {reply.error.code}: {reply.error.reason}")
        content = reply.content
        for key, records in (
            (ACTIVATIONS_KEY, content.array_records),
            (LABELS_KEY, content.array_records),
            (META_KEY, content.config_records),
            (METRICS_KEY, content.metric_records),
        ):
            if key not in records:
                raise ReplyError(f"reply lacks the record '{key}'")
        try:
            batch, fingerprint = records_to_encoded(
                content.array_records[ACTIVATIONS_KEY], content.config_records[META_KEY]
            )
        except (ValueError, TypeError) as err:
            raise ReplyError(f"unreadable activations: {err}") from err
        if fingerprint != self.fingerprint:
            raise ReplyError(
                f"front fingerprint {fingerprint[:16] or '(none)'}... differs from the "
                f"server's {self.fingerprint[:16]}...: activations come from another front"
            )
        codec_name = batch.meta.get("codec")
        if codec_name != self.codec.name:
            raise ReplyError(f"codec {codec_name!r} where {self.codec.name!r} was asked for")
        try:
            self.codec.validate(batch)
        except CodecError as err:
            raise ReplyError(f"malformed activations: {err}") from err
        if batch.sample_shape != self.activation_shape:
            raise ReplyError(
                f"activation shape {batch.sample_shape} where {self.activation_shape} was expected"
            )
        n = batch.num_samples
        if not 1 <= n <= self.max_samples_per_client:
            raise ReplyError(f"{n} samples; expected 1 to {self.max_samples_per_client}")
        label_record = content.array_records[LABELS_KEY]
        if list(label_record) != ["labels"]:
            raise ReplyError(f"labels record holds {list(label_record)}, expected ['labels']")
        try:
            labels = label_record["labels"].numpy()
        except (ValueError, TypeError) as err:
            raise ReplyError(f"unreadable labels: {err}") from err
        if labels.dtype.kind not in "iu" or labels.shape != (n,):
            raise ReplyError(
                f"labels must be {n} integers, got dtype {labels.dtype} shape {labels.shape}"
            )
        if n and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ReplyError(
                f"labels outside [0, {self.num_classes}): min {labels.min()}, max {labels.max()}"
            )
        metrics = content.metric_records[METRICS_KEY]
        try:
            seconds = config_value(metrics, "front-seconds", float, 0.0)
            claimed = config_value(metrics, "num-examples", int, -1)
        except ValueError as err:
            raise ReplyError(f"bad metrics: {err}") from err
        if claimed != n:
            raise ReplyError(f"num-examples {claimed} but {n} samples")
        return batch, labels.astype(np.int64), seconds

    # ------------------------------------------------------------ round loop

    def start(
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float = 3600,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None,
    ) -> Result:
        """Run ``num_rounds`` EcoFed rounds and return the final back-end weights.

        Same signature as :meth:`flwr.serverapp.strategy.Strategy.start`. ``initial_arrays``
        (the back's state dict; may be empty to keep the back as built) is loaded into the
        back first. Each round: sample, ask the nodes the refresh policy names for uploads,
        validate and buffer replies, train the back on this round's slots, then call
        ``evaluate_fn(round, arrays)`` (centralized evaluation).
        """
        log(INFO, "Starting %s strategy:", self.__class__.__name__)
        self.summary()
        if len(initial_arrays) > 0:
            self.trainer.back.load_state_dict(_arrays_to_state(initial_arrays))
        train_config = ConfigRecord() if train_config is None else train_config
        result = Result(arrays=_state_to_arrays(self.trainer.back))
        if evaluate_fn:
            res = evaluate_fn(0, result.arrays)
            if res is not None:
                result.evaluate_metrics_serverapp[0] = res
        for current_round in range(1, num_rounds + 1):
            started = time.perf_counter()
            messages = list(self.configure_train(current_round, result.arrays, train_config, grid))
            self._round = _RoundState(asked=[str(m.metadata.dst_node_id) for m in messages])
            replies = grid.send_and_receive(messages, timeout=timeout) if messages else []
            arrays, train_metrics = self.aggregate_train(current_round, replies)
            if arrays is not None:
                result.arrays = arrays
            if train_metrics is not None:
                result.train_metrics_clientapp[current_round] = train_metrics
            eval_metrics: dict[str, float] = {}
            if evaluate_fn:
                res = evaluate_fn(current_round, result.arrays)
                if res is not None:
                    result.evaluate_metrics_serverapp[current_round] = res
                    eval_metrics = {k: float(v) for k, v in res.items()}  # type: ignore[arg-type]
                    if "accuracy" in eval_metrics:
                        self.refresh.observe(current_round, eval_metrics["accuracy"])
            report = self._report(current_round, eval_metrics, time.perf_counter() - started)
            self.reports.append(report)
            log(
                INFO,
                "[ROUND %d/%d] %s accuracy %s | up %s B (activations %s B) | down %s B | "
                "buffer %s B | %.1f s",
                current_round,
                num_rounds,
                "refresh" if report.refresh else "replay ",
                f"{eval_metrics['accuracy']:.4f}" if "accuracy" in eval_metrics else "n/a",
                f"{report.bytes_up:,}",
                f"{report.bytes_up_activations:,}",
                f"{report.bytes_down:,}",
                f"{report.buffer_bytes:,}",
                report.seconds,
            )
            if self.on_round:
                self.on_round(report)
        return result

    def _report(self, server_round: int, metrics: dict[str, float], seconds: float) -> RoundReport:
        state, ledger = self._round, self.ledger
        return RoundReport(
            round=server_round,
            refresh=bool(state.asked),
            sampled=[str(n) for n in self._sampled],
            uploaded=state.uploaded,
            refused=state.refused,
            slots=state.slots,
            samples_uploaded=state.samples_uploaded,
            bytes_up=ledger.total("up", round=server_round),
            bytes_down=ledger.total("down", round=server_round),
            bytes_up_activations=ledger.total("up", "activations", round=server_round),
            bytes_up_labels=ledger.total("up", "labels", round=server_round),
            buffer_bytes=self.buffer.nbytes,
            train_loss=state.train_loss,
            train_samples=state.train_samples,
            server_train_seconds=state.server_train_seconds,
            device_seconds=state.device_seconds,
            seconds=seconds,
            metrics=metrics,
        )
