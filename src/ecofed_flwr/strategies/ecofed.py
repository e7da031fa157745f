"""EcoFed strategy (Message API): a thin Flower adapter around :class:`EcoFedServer`."""

from __future__ import annotations

import difflib
import inspect
import re
import time
from collections.abc import Callable, Iterable, Mapping
from logging import ERROR, INFO, WARNING
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy
from flwr.supercore import log
from torch import nn

from ecofed_flwr import defaults
from ecofed_flwr.buffer import RefreshPolicy
from ecofed_flwr.codec import EncodedBatch
from ecofed_flwr.handshake import (
    FINGERPRINT_KEY,
    INFO_KEY,
    INFO_MESSAGE_TYPE,
    PARTITION_KEY,
    describe_front,
    describe_split,
    front_differences,
)
from ecofed_flwr.ledger import Ledger
from ecofed_flwr.models import SplitModel
from ecofed_flwr.protocol import (
    CONFIG_KEY,
    UPLOAD_MESSAGE_TYPE,
    UploadRefused,
    UploadSpec,
    decode_upload,
    split_reply_bytes,
    wire_nbytes,
)
from ecofed_flwr.schedule import LRSchedule
from ecofed_flwr.server import EcoFedServer, RoundReport, UploadNotExpected
from ecofed_flwr.trainer import TrainerConfig

RoundCallback = Callable[[RoundReport], None]
FlowerEvaluateFn = Callable[[int, ArrayRecord], MetricRecord | None]


class ReplyError(ValueError):
    """An upload reply that cannot be used; the message names the node and the reason."""


class NoUploadError(RuntimeError):
    """A run ended without a single accepted upload: nothing was trained."""


def _state_to_arrays(state: Mapping[str, torch.Tensor]) -> ArrayRecord:
    return ArrayRecord({k: v.detach().cpu() for k, v in state.items()})


#: Settings of Flower's FedAvg (both APIs) that EcoFed takes under another name.
FLOWER_RENAMED = {
    "fraction_fit": "fraction_train",
    "min_fit_clients": "min_train_nodes",
    "min_available_clients": "min_available_nodes",
}
_NO_DEVICE_EVAL = "EcoFed evaluates at the server (hold-out and evaluate_fn), never on devices"
_NO_DEVICE_TRAINING = (
    "devices do not train: the server's learning_rate, lr_schedule, batch_size and "
    "local_epochs replace the app's"
)
#: Settings of Flower's FedAvg (both APIs) that EcoFed does not use, and what replaces them.
FLOWER_UNUSED = {
    "fraction_evaluate": _NO_DEVICE_EVAL,
    "min_evaluate_clients": _NO_DEVICE_EVAL,
    "min_evaluate_nodes": _NO_DEVICE_EVAL,
    "on_evaluate_config_fn": _NO_DEVICE_EVAL,
    "evaluate_metrics_aggregation_fn": _NO_DEVICE_EVAL,
    "evaluate_metrics_aggr_fn": _NO_DEVICE_EVAL,
    "on_fit_config_fn": _NO_DEVICE_TRAINING,
    "fit_metrics_aggregation_fn": "uploads carry no training metrics; rounds log the server's",
    "train_metrics_aggr_fn": "uploads carry no training metrics; rounds log the server's",
    "initial_parameters": "the back starts from the split's weights (the app's model is "
    "another model: its weights do not fit the back)",
    "accept_failures": "a failed device is always left out of the round and logged",
    "inplace": "not applicable: EcoFed averages no device weights",
    "arrayrecord_key": "not applicable: EcoFed's messages have their own records",
    "configrecord_key": "not applicable: EcoFed's messages have their own records",
    "weighted_by_key": "not applicable: EcoFed averages no device weights",
}


def split_settings(owner: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The keyword settings of a ``from_split``, checked, as ``EcoFedStrategy`` takes them.

    ``trainer="copies"`` becomes ``mode="copies"``; Flower's FedAvg names are renamed
    (:data:`FLOWER_RENAMED`); FedAvg settings EcoFed does not use (:data:`FLOWER_UNUSED`)
    are dropped with one warning that names each and what replaces it.

    Raises
    ------
    TypeError
        For an unknown setting: names ``owner`` and the closest known setting.
    """
    settings = dict(settings)
    if isinstance(settings.get("trainer"), str):  # the docs' trainer="copies"
        settings["mode"] = settings.pop("trainer")
    for flower, ours in FLOWER_RENAMED.items():
        if flower in settings:
            if ours in settings:
                raise TypeError(f"{owner}() got both {flower!r} and {ours!r}; give {ours!r}")
            settings[ours] = settings.pop(flower)
    unused = {k: settings.pop(k) for k in list(settings) if k in FLOWER_UNUSED}
    known = (
        set(inspect.signature(EcoFedStrategy.__init__).parameters)
        - {"self", "back", "fingerprint", "activation_shape", "num_classes", "front_description"}
    ) | (set(TrainerConfig.__dataclass_fields__) - {"seed"})
    unknown = sorted(set(settings) - known)
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(known | set(FLOWER_RENAMED)), n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise TypeError(
            f"{owner}() got unknown setting(s) {', '.join(hints)}; "
            f"known: {', '.join(sorted(known))}"
        )
    if unused:
        log(
            WARNING,
            "%s: the app's settings EcoFed does not use: %s",
            owner,
            "; ".join(f"{k} ({FLOWER_UNUSED[k]})" for k in sorted(unused)),
        )
    return settings


class EcoFedStrategy(Strategy):
    """EcoFed: train the server half of a split model on replayed device activations.

    Devices run a frozen, pre-trained front-end forward only and upload its encoded
    activations with their labels; the server keeps them in a replay buffer and trains the
    back-end on them, round after round, without asking for them again and without sending
    any gradient or weight down (https://arxiv.org/abs/2304.05495). The round's logic lives in
    :class:`~ecofed_flwr.server.EcoFedServer` (``self.server``); this class turns it into
    Flower messages, measures their bytes and validates the replies.

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
    codec : str (default: ``defaults.CODEC``, "u4")
        Codec every upload must use (see :func:`ecofed_flwr.codec.make_codec`).
    refresh : str | RefreshPolicy (default: "once")
        Which sampled clients upload in a round: ``"every:P"`` (paper: ``every:2``),
        ``"once"`` or ``"stall:N"``.
    replay : str (default: "all")
        What the server trains on besides the round's uploads: ``"all"``, ``"paper"`` or
        ``"sampled"`` (see :class:`~ecofed_flwr.server.EcoFedServer`).
    trainer : TrainerConfig, optional
        Server training settings (default: ``TrainerConfig(seed=seed)``: pooled, lr 0.1,
        batch 128).
    lr_schedule : str | LRSchedule (default: "cosine")
        Learning-rate schedule over the run's server steps.
    validation_fraction : float (default: 0.1)
        Fraction of each upload held out for validation and model selection.
    keep : str (default: "best")
        The result is the back with the best validation accuracy (``"best"``) or the last.
    fraction_train : float (default: 1.0)
        Fraction of connected nodes sampled each round.
    min_train_nodes : int (default: 2)
        Minimum number of nodes sampled each round.
    min_available_nodes : int (default: 2)
        Connected nodes to wait for before the first round.
    max_samples_per_client : int (default: 1_000_000)
        Larger uploads are refused (protects server memory).
    upload_config : dict, optional
        Extra entries for every upload request's ConfigRecord (e.g. ``front-batch-size``).
    front_description : Mapping, optional
        Model, cut, weights and input size of the server's front (see
        :func:`ecofed_flwr.handshake.describe_front`), so that a device with another front
        is told what differs.
    on_round : Callable[[RoundReport], None], optional
        Called after each round (and round 0) with its report.
    seed : int (default: 0)
        Seeds sampling, replay selection, the hold-out and training.
    """

    def __init__(
        self,
        back: nn.Module,
        fingerprint: str,
        activation_shape: tuple[int, ...],
        num_classes: int,
        codec: str = defaults.CODEC,
        refresh: str | RefreshPolicy = defaults.REFRESH,
        replay: str = defaults.REPLAY,
        trainer: TrainerConfig | None = None,
        lr_schedule: str | LRSchedule = defaults.LR_SCHEDULE,
        validation_fraction: float = defaults.VALIDATION_FRACTION,
        keep: str = defaults.KEEP,
        fraction_train: float = defaults.FRACTION_TRAIN,
        min_train_nodes: int = defaults.MIN_TRAIN_NODES,
        min_available_nodes: int = defaults.MIN_AVAILABLE_NODES,
        max_samples_per_client: int = defaults.MAX_SAMPLES_PER_CLIENT,
        upload_config: dict[str, int | float | str | bool] | None = None,
        front_description: Mapping[str, str | int] | None = None,
        on_round: RoundCallback | None = None,
        seed: int = defaults.SEED,
    ) -> None:
        if min_available_nodes < 1:
            raise ValueError(f"min_available_nodes must be >= 1, got {min_available_nodes}")
        if max_samples_per_client < 1:
            raise ValueError(f"max_samples_per_client must be >= 1, got {max_samples_per_client}")
        self.server = EcoFedServer(
            back=back,
            fingerprint=fingerprint,
            activation_shape=activation_shape,
            num_classes=num_classes,
            codec=codec,
            refresh=refresh,
            replay=replay,
            trainer=trainer or TrainerConfig(seed=seed),
            lr_schedule=lr_schedule,
            validation_fraction=validation_fraction,
            keep=keep,
            fraction_train=fraction_train,
            min_train_nodes=min_train_nodes,
            seed=seed,
        )
        self.min_available_nodes = min_available_nodes
        self.upload_spec = UploadSpec(
            codec=self.server.codec,
            fingerprint=fingerprint,
            activation_shape=tuple(activation_shape),
            num_classes=num_classes,
            max_samples=max_samples_per_client,
        )
        self.upload_config = dict(upload_config or {})
        self.front_description = dict(front_description or describe_front(fingerprint))
        self.front_description[FINGERPRINT_KEY] = fingerprint
        self.on_round = on_round
        self.timeout = defaults.ROUND_TIMEOUT
        self._client_of: dict[int, str] = {}
        self._node_of: dict[str, int] = {}
        self._excluded: dict[int, str] = {}
        self._logged_traceback = False  # the first device error is logged in full, once
        self._handshake_seconds = 0.0
        self._recheck_nodes = False
        #: The split of :meth:`from_split` (None when built from its parts).
        self.split: SplitModel | None = None

    @classmethod
    def from_split(cls, split: Any, **settings: Any) -> EcoFedStrategy:
        """An EcoFed strategy for a :class:`~ecofed_flwr.models.SplitModel` (the drop-in).

        ``settings`` are this class's keyword parameters; ``trainer`` may also be given as
        its fields (``learning_rate=0.1, batch_size=128``...) or as its mode
        (``trainer="copies"``). An unknown setting raises a TypeError that names this class
        and the closest known setting (Flower's ``fraction_fit`` -> ``fraction_train``).
        """
        settings = split_settings(cls.__name__ + ".from_split", settings)
        trainer_fields = set(TrainerConfig.__dataclass_fields__)
        trainer_kwargs = {
            k: settings.pop(k) for k in list(settings) if k in trainer_fields - {"seed"}
        }
        if trainer_kwargs:
            if "trainer" in settings:
                raise TypeError(f"give either trainer= or its fields {sorted(trainer_kwargs)}")
            settings["trainer"] = TrainerConfig(
                seed=settings.get("seed", defaults.SEED), **trainer_kwargs
            )
        strategy = cls(
            back=split.back,
            fingerprint=split.fingerprint,
            activation_shape=split.activation_shape,
            num_classes=split.num_classes,
            front_description=describe_split(split),
            **settings,
        )
        strategy.split = split
        return strategy

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

    # ------------------------------------------------------------------ views

    @property
    def ledger(self) -> Ledger:
        """The communication ledger (every message's bytes)."""
        return self.server.ledger

    @property
    def reports(self) -> list[RoundReport]:
        """The reports of the rounds run so far (round 0 first)."""
        return self.server.reports

    @property
    def excluded_nodes(self) -> dict[int, str]:
        """Nodes never asked again, with the reason (e.g. a different front)."""
        return dict(self._excluded)

    def summary(self) -> None:
        """Log summary configuration of the strategy."""
        server, cfg = self.server, self.server.trainer.config
        log(INFO, "\t├──> EcoFed front fingerprint: %s", server.fingerprint[:16])
        log(
            INFO,
            "\t├──> Codec: %s | refresh: %s | replay: %s | validation %.2f, keep %s",
            server.codec.name,
            server.refresh.name,
            server.replay,
            server.validation_fraction,
            server.keep,
        )
        log(
            INFO,
            "\t├──> Sampling: fraction %.2f, min %d, wait for %d nodes",
            server.fraction_train,
            server.min_train_nodes,
            self.min_available_nodes,
        )
        log(
            INFO,
            "\t└──> Server trainer: %s, lr %g (%s), momentum %g, batch %d, epochs %d on %s",
            cfg.mode,
            cfg.learning_rate,
            server.schedule.name,
            cfg.momentum,
            cfg.batch_size,
            cfg.local_epochs,
            server.trainer.device,
        )

    # ------------------------------------------------------------------ hooks

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Sample nodes (seeded, by partition id) and ask those the refresh policy names.

        ``arrays`` is not sent: devices never receive weights in EcoFed.
        """
        self._discover(grid, server_round)
        plan = self.server.begin_round(server_round, list(self._node_of))
        # The handshake with new nodes is part of this round's waiting for devices.
        self.server.current.exchange_seconds, self._handshake_seconds = self._handshake_seconds, 0.0
        request = ConfigRecord(
            {
                **dict(config),
                **self.upload_config,
                **self.front_description,
                "server-round": server_round,
                "codec": self.server.codec.name,
            }
        )
        messages = []
        for client in plan.uploaders:
            message = Message(
                content=RecordDict({CONFIG_KEY: request}),
                message_type=UPLOAD_MESSAGE_TYPE,
                dst_node_id=self._node_of[client],
            )
            self.ledger.add(server_round, client, "down", "control", wire_nbytes(message))
            messages.append(message)
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Validate and buffer the uploads, then train the back on this round's slots."""
        server = self.server
        for reply in replies:
            node = reply.metadata.src_node_id
            client = self._client_of.get(node, f"node-{node}")
            self._record_reply(server_round, client, reply)
            try:
                batch, labels, seconds = self.validate_reply(reply)
                server.accept(client, batch, labels, seconds)
            except (ReplyError, UploadNotExpected, ValueError) as err:
                server.refuse(client, str(err))
                log(WARNING, "EcoFed round %d: refused reply of %s: %s", server_round, client, err)
        stats = server.train()
        metrics = MetricRecord(
            {
                "num-examples": stats.samples,
                "train-loss": stats.loss if stats.samples else 0.0,
                "samples-uploaded": server.current.samples_uploaded,
                "buffer-bytes": server.buffer.nbytes,
            }
        )
        return _state_to_arrays(server.trainer.back.state_dict()), metrics

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

    def _record_reply(self, server_round: int, client: str, reply: Message) -> None:
        """One ledger message per reply, its bytes split by purpose."""
        sizes = split_reply_bytes(reply)
        if reply.has_error() or sizes.activations == 0:
            self.ledger.add(server_round, client, "up", "control", sizes.total)
            return
        self.ledger.add(server_round, client, "up", "activations", sizes.activations)
        self.ledger.add(server_round, client, "up", "labels", sizes.labels, messages=0)
        self.ledger.add(server_round, client, "up", "control", max(sizes.control, 0), messages=0)

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
            if not self._logged_traceback:  # the first device error in full, once per run
                self._logged_traceback = True
                log(
                    ERROR,
                    "EcoFed: first device error (node %s), in full:\n%s",
                    reply.metadata.src_node_id,
                    _ANSI.sub("", reply.error.reason or "(no reason given)"),
                )
            raise ReplyError(
                f"client error {reply.error.code}: {_short_reason(reply.error.reason)}"
            )
        try:
            upload = decode_upload(reply.content, self.upload_spec)
        except UploadRefused as err:
            raise ReplyError(f"{err.category}: {err}") from err
        return upload.batch, upload.labels, upload.device_seconds

    # ------------------------------------------------------------ nodes

    def state_dict(self) -> dict[str, Any]:
        """The adapter's own state for a checkpoint: which node is which client, and the
        nodes never asked again (JSON values; the run's state is ``self.server.state()``)."""
        return {
            "nodes": {str(n): c for n, c in self._client_of.items()},
            "excluded": {str(n): r for n, r in self._excluded.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`. Nodes that are not connected at the next round (a new
        simulation, a restarted SuperLink) are forgotten, and their partitions answer the
        handshake again under their new node ids.

        Raises
        ------
        ValueError
            If ``state`` is not what :meth:`state_dict` produces.
        """
        maps = []
        for key in ("nodes", "excluded"):
            value = state.get(key)
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and k.isdigit() and isinstance(v, str) for k, v in value.items()
            ):
                raise ValueError(
                    f"strategy state: expected '{key}' to map node ids to text, got {value!r}"
                )
            maps.append({int(k): v for k, v in value.items()})
        self._client_of, self._excluded = maps
        self._node_of = {c: n for n, c in self._client_of.items()}
        self._recheck_nodes = True

    def _discover(self, grid: Grid, server_round: int) -> None:
        """Wait for enough nodes, then ask each new one for its partition id and front."""
        started = time.monotonic()
        deadline, said = started + self.timeout, started
        while True:
            nodes = sorted(grid.get_node_ids())
            if len(nodes) >= self.min_available_nodes:
                break
            now = time.monotonic()
            if now > deadline:
                log(
                    WARNING,
                    "EcoFed round %d: only %d of the %d nodes to wait for connected in %.0f s "
                    "(round timeout); going on with them (set min-available-nodes / "
                    "min_available_nodes to the fleet's size)",
                    server_round,
                    len(nodes),
                    self.min_available_nodes,
                    now - started,
                )
                break
            if now >= said:  # at once, then every 30 s
                log(
                    INFO,
                    "EcoFed round %d: waiting for %d nodes, %d connected (up to %.0f s more)",
                    server_round,
                    self.min_available_nodes,
                    len(nodes),
                    deadline - now,
                )
                said = now + 30.0
            time.sleep(1.0)
        if self._recheck_nodes:
            self._recheck_nodes = False
            for node in set(self._client_of) - set(nodes):
                del self._node_of[self._client_of.pop(node)]
            self._excluded = {n: r for n, r in self._excluded.items() if n in nodes}
        new = [n for n in nodes if n not in self._client_of and n not in self._excluded]
        if not new:
            return
        request = ConfigRecord(dict(self.front_description))
        messages = []
        for node in new:
            message = Message(
                content=RecordDict({CONFIG_KEY: request}),
                message_type=INFO_MESSAGE_TYPE,
                dst_node_id=node,
            )
            messages.append(message)
        started = time.perf_counter()
        replies = {
            r.metadata.src_node_id: r for r in grid.send_and_receive(messages, timeout=self.timeout)
        }
        self._handshake_seconds += time.perf_counter() - started
        for message in messages:
            node = message.metadata.dst_node_id
            reply = replies.get(node)
            info = self._read_info(reply)
            client = f"node-{node}"
            partition = info.get(PARTITION_KEY)
            if (
                isinstance(partition, int)
                and partition >= 0
                and str(partition) not in self._node_of
            ):
                client = str(partition)
            self.ledger.add(server_round, client, "down", "control", wire_nbytes(message))
            if reply is not None:
                self.ledger.add(server_round, client, "up", "control", wire_nbytes(reply))
            if info and info.get(FINGERPRINT_KEY) != self.server.fingerprint:
                diffs = front_differences(self.front_description, info)
                reason = f"its front differs from the server's ({'; '.join(diffs)})"
                self._excluded[node] = reason
                log(WARNING, "EcoFed: node %s (%s) is not asked again: %s", node, client, reason)
                continue
            self._client_of[node] = client
            self._node_of[client] = node

    @staticmethod
    def _read_info(reply: Message | None) -> dict[str, Any]:
        """The node's info record, or {} when it did not answer the handshake."""
        if reply is None or reply.has_error():
            return {}
        record = reply.content.config_records.get(INFO_KEY)
        return dict(record) if record is not None else {}

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
        started = time.perf_counter()
        log(INFO, "Starting %s strategy:", self.__class__.__name__)
        self.summary()
        resumed = bool(server.reports)  # a restored server (load_state) goes on after its rounds
        if resumed:
            log(INFO, "EcoFed: resuming after round %d of %d", server.round, num_rounds)
        else:
            self._load_initial(initial_arrays)
        server.num_rounds = num_rounds
        self.timeout = timeout
        train_config = ConfigRecord() if train_config is None else train_config
        self._log_unused_start_settings(train_config, evaluate_config)
        result = Result()
        if evaluate_fn is not None:

            def evaluate_back(back: nn.Module) -> dict[str, float]:
                res = evaluate_fn(server.round, _state_to_arrays(back.state_dict()))
                return {} if res is None else {k: float(v) for k, v in res.items()}  # type: ignore[arg-type]

            server.evaluate_fn = evaluate_back
        if resumed:
            for report in server.reports:
                if report.metrics:
                    result.evaluate_metrics_serverapp[report.round] = MetricRecord(
                        dict(report.metrics)
                    )
        else:
            report = server.evaluate_initial()
            if report.metrics:
                result.evaluate_metrics_serverapp[0] = MetricRecord(dict(report.metrics))
            self._log_round(report, num_rounds)
        for current_round in range(server.round + 1, num_rounds + 1):
            # Devices never receive weights, so no copy of the back is made for the request.
            messages = list(self.configure_train(current_round, ArrayRecord(), train_config, grid))
            exchange_started = time.perf_counter()
            replies = grid.send_and_receive(messages, timeout=timeout) if messages else []
            server.current.exchange_seconds += time.perf_counter() - exchange_started
            _, train_metrics = self.aggregate_train(current_round, replies)
            if train_metrics is not None:
                result.train_metrics_clientapp[current_round] = train_metrics
            server.evaluate()
            report = server.end_round()
            if report.metrics:
                result.evaluate_metrics_serverapp[current_round] = MetricRecord(
                    dict(report.metrics)
                )
            self._log_round(report, num_rounds)
        if not len(server.buffer):
            raise NoUploadError(
                f"no upload was accepted in {num_rounds} round(s): "
                + refusal_summary(server.reports, self._excluded.values())
            )
        result.arrays = _state_to_arrays(server.result_state())
        self._log_summary(time.perf_counter() - started)
        self._log_result_kind()
        return result

    def _log_result_kind(self) -> None:
        """Say what ``Result.arrays`` holds: not the app's model, the back of the split."""
        split = self.split
        what = f"{split.model_name} cut {split.cut}" if split is not None else "the split"
        log(
            INFO,
            "EcoFed: Result.arrays holds the trained back (server half) of %s, not the app's "
            "own model: the classifier is back(front(x)); save both halves with "
            "ecofed_flwr.classifier.save_classifier(path, split, result.arrays."
            "to_torch_state_dict(), codec, settings) and reload with load_classifier(path)",
            what,
        )

    def _log_summary(self, seconds: float) -> None:
        """The closing summary, like Flower's strategies print: one line per round."""
        server = self.server
        log(INFO, "")
        log(INFO, "EcoFed run finished %d round(s) in %.2f s", len(server.reports) - 1, seconds)
        log(INFO, "\tround | refresh | val acc | test acc |   bytes up | train samples")
        for r in server.reports:
            log(
                INFO,
                "\t%5d | %7s | %7s | %8s | %10s | %13d%s",
                r.round,
                "yes" if r.refresh else "no",
                _fmt(r.val_accuracy),
                _fmt(r.metrics.get("accuracy")),
                f"{r.bytes_up:,}",
                r.train_samples,
                "  <- kept" if r.round == server.best_round and r.round else "",
            )
        best = server.best_report
        log(
            INFO,
            "\tkept: the back of round %d (val accuracy %s, test accuracy %s); %s B up in all",
            server.best_round,
            _fmt(best.val_accuracy if best else None),
            _fmt(best.metrics.get("accuracy") if best else None),
            f"{server.ledger.total('up'):,}",
        )
        log(INFO, "")

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

    def _log_round(self, report: RoundReport, num_rounds: int) -> None:
        if report.round == 0:
            log(
                INFO,
                "[ROUND 0/%d] untrained back: test accuracy %s",
                num_rounds,
                _fmt(report.metrics.get("accuracy")),
            )
        else:
            log(
                INFO,
                "[ROUND %d/%d] %s val %s | test %s | up %s B (activations %s B) | down %s B | "
                "buffer %s B | lr %.4g | %.1f s (devices %.1f, train %.1f, evaluate %.1f)",
                report.round,
                num_rounds,
                "refresh" if report.refresh else "replay ",
                _fmt(report.val_accuracy),
                _fmt(report.metrics.get("accuracy")),
                f"{report.bytes_up:,}",
                f"{report.bytes_up_activations:,}",
                f"{report.bytes_down:,}",
                f"{report.buffer_bytes:,}",
                report.learning_rate,
                report.seconds,
                report.exchange_seconds,
                report.server_train_seconds,
                report.evaluate_seconds,
            )
        if self.on_round:
            self.on_round(report)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def refusal_summary(reports: Iterable[RoundReport], excluded: Iterable[str] = ()) -> str:
    """Every distinct refusal reason of a run, once, with how often and for which clients.

    One line however many devices failed the same way (the first device error is logged in
    full when it arrives).
    """
    by_reason: dict[str, list[str]] = {}
    for report in reports:
        for client, reason in report.refused.items():
            by_reason.setdefault(_short_reason(reason), []).append(f"{client}@r{report.round}")
    for reason in excluded:
        by_reason.setdefault("excluded: " + _short_reason(reason), []).append("-")
    if not by_reason:
        return "no device was asked or answered"
    parts = []
    for reason, where in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(where[:5]) + (", ..." if len(where) > 5 else "")
        parts.append(f"{len(where)}x {reason} ({shown})")
    return "; ".join(parts)


def _short_reason(reason: str | None, limit: int = 300) -> str:
    """A device's error in one line: its last non-empty line (simulation sends whole Ray
    tracebacks, with colour codes), at most ``limit`` characters."""
    lines = [line.strip() for line in _ANSI.sub("", reason or "").splitlines() if line.strip()]
    text = lines[-1] if lines else "(no reason given)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
