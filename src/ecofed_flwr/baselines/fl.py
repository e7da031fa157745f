"""Classic FL through Flower: devices train the model (or its back); ``FedAvg`` averages it.

The ClientApp is a standard Message-API client (a ``train`` handler, weights in the
``arrays`` ArrayRecord, metrics with ``num-examples``, plus a ``query`` handler that tells
the server its partition id); the ServerApp runs :class:`SeededFedAvg`, Flower's
:class:`~flwr.serverapp.strategy.FedAvg` with the clients of each round drawn by the
seeded rule every protocol of the harness uses (:mod:`.sampling`), on a
:class:`~ecofed_flwr.baselines.wire.MeteredGrid`, so the bytes counted are those Flower sends.

Two variants (``part``):

- ``"all"`` (protocol ``fl``): the whole model, every layer trainable and exchanged.
- ``"back"`` (protocol ``fl-back``): the front stays frozen at its pre-trained weights on
  every device, which runs it forward at every step; only the back is trained and exchanged.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from logging import INFO
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.common import MessageType
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.supercore import log
from torch import nn
from torch.nn import functional as F

from ecofed_flwr import defaults
from ecofed_flwr.app.task import client_data, test_set
from ecofed_flwr.baselines.report import BestKeeper, RoundLog, TestScore
from ecofed_flwr.baselines.sampling import (
    client_name,
    client_splits,
    sample_partitions,
    split_holdout,
)
from ecofed_flwr.baselines.training import (
    LocalTraining,
    channels_last,
    initial_split,
    trainable_copy,
    with_torch_threads,
)
from ecofed_flwr.baselines.wire import MeteredGrid
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.data import LocalData
from ecofed_flwr.handshake import PARTITION_KEY
from ecofed_flwr.ledger import Ledger
from ecofed_flwr.models import SplitModel, run_front
from ecofed_flwr.nodes import NodeRegistry, wait_for_nodes
from ecofed_flwr.protocol import config_value
from ecofed_flwr.schedule import make_lr_schedule
from ecofed_flwr.server import clients_per_round
from ecofed_flwr.trainer import evaluate_back

ARRAYS_KEY = "arrays"  # FedAvg's default arrayrecord_key
CONFIG_KEY = "config"  # FedAvg's default configrecord_key
METRICS_KEY = "metrics"
INFO_ACTION = "fl_info"
PARTS = ("all", "back")


def _check_part(part: str) -> None:
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")


def full_model(split: SplitModel, part: str = "all") -> nn.Module:
    """The whole classifier (front then back) with the layers ``part`` trains trainable.

    ``part="back"`` keeps the front frozen (no gradients, evaluation mode when training);
    ``split`` itself is unchanged.
    """
    _check_part(part)
    front, back = trainable_copy(split.front.layers), trainable_copy(split.back)
    if part == "back":
        front.requires_grad_(False)
    return nn.Sequential(front, back)


def exchanged(model: nn.Module, part: str = "all") -> nn.Module:
    """The module whose weights a device and the server exchange: all of it, or its back."""
    _check_part(part)
    return model if part == "all" else _stage(model, 1)


def _stage(model: nn.Module, index: int) -> nn.Module:
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"expected the (front, back) nn.Sequential, got {type(model).__name__}")
    stage: nn.Module = model[index]
    return stage


def model_arrays(model: nn.Module) -> ArrayRecord:
    """The model's state dict (parameters and BatchNorm buffers) as an ArrayRecord."""
    return ArrayRecord({k: v.detach().cpu() for k, v in model.state_dict().items()})


def train_config(training: LocalTraining) -> ConfigRecord:
    """The ConfigRecord the server sends with the weights (read back by the client)."""
    return ConfigRecord(
        {
            "learning-rate": training.learning_rate,
            "momentum": training.momentum,
            "weight-decay": training.weight_decay,
            "batch-size": training.batch_size,
            "local-epochs": training.local_epochs,
        }
    )


def training_from(config: ConfigRecord, default: LocalTraining) -> LocalTraining:
    """The local training a request asks for (missing settings keep ``default``'s)."""
    return LocalTraining(
        learning_rate=config_value(config, "learning-rate", float, default.learning_rate),
        momentum=config_value(config, "momentum", float, default.momentum),
        weight_decay=config_value(config, "weight-decay", float, default.weight_decay),
        batch_size=config_value(config, "batch-size", int, default.batch_size),
        local_epochs=config_value(config, "local-epochs", int, default.local_epochs),
        seed=default.seed,
    )


def train_local(
    model: nn.Module,
    data: LocalData,
    training: LocalTraining,
    server_round: int,
    client: str,
    part: str = "all",
) -> tuple[float, float]:
    """Local epochs of SGD on the layers ``part`` names; the mean loss and compute seconds."""
    labels = torch.as_tensor(np.asarray(data.labels), dtype=torch.int64)
    trained = exchanged(model, part)
    optimizer = training.optimizer(trained.parameters())
    model.train()
    if part == "back":
        _stage(model, 0).eval()  # frozen: BatchNorm keeps its pre-trained statistics
    loss_sum, samples = 0.0, 0
    start = time.thread_time()  # compute time of this thread: load cannot bend it
    with training.random_draws(server_round, client):
        for index in training.batches(len(labels), server_round, client):
            y = labels[index]
            loss = F.cross_entropy(model(channels_last(data.images[index])), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(y)
            samples += len(y)
    seconds = time.thread_time() - start
    return loss_sum / max(samples, 1), seconds


def fit_reply(
    request: Message,
    model: nn.Module,
    num_examples: int,
    train_loss: float,
    seconds: float,
    part: str = "all",
) -> Message:
    """The reply ``FedAvg`` expects: the trained weights and metrics with ``num-examples``."""
    metrics = MetricRecord(
        {"num-examples": num_examples, "train-loss": train_loss, "train-seconds": seconds}
    )
    content = RecordDict({ARRAYS_KEY: model_arrays(exchanged(model, part)), METRICS_KEY: metrics})
    return Message(content, reply_to=request)


def make_fl_client_app(cfg: EcoFedConfig, part: str = "all", threads: int = 1) -> ClientApp:
    """A ClientApp that trains the model (or its back) on its partition for each request.

    The device trains on its partition less the rows held out for validation (the same rows
    EcoFed holds out of its uploads, :func:`~.sampling.split_holdout`).

    Parameters
    ----------
    cfg : EcoFedConfig
        Model, data, hold-out and optimiser settings (the request's config overrides the
        optimiser).
    part : str (default: "all")
        ``"all"``: the whole model; ``"back"``: the back only, the front frozen.
    threads : int (default: 1)
        Torch threads of every call (also inside Flower's Ray actors).
    """
    _check_part(part)
    app = ClientApp()

    @app.train()
    def train(message: Message, context: Context) -> Message:
        partition_id, num_partitions = _partition(context)
        data = _cached_train_data(cfg, partition_id, num_partitions)
        model = _cached_model(cfg, part)
        state = message.content.array_records[ARRAYS_KEY].to_torch_state_dict()
        exchanged(model, part).load_state_dict(state)
        config = message.content.config_records.get(CONFIG_KEY, ConfigRecord())
        training = training_from(config, LocalTraining.from_config(cfg))
        server_round = config_value(config, "server-round", int, 0)
        loss, seconds = train_local(
            model, data, training, server_round, client_name(partition_id), part
        )
        return fit_reply(message, model, len(data.labels), loss, seconds, part)

    @app.query(INFO_ACTION)
    def info(message: Message, context: Context) -> Message:
        partition_id, _ = _partition(context)
        record = ConfigRecord({PARTITION_KEY: partition_id})
        return Message(RecordDict({CONFIG_KEY: record}), reply_to=message)

    return with_torch_threads(app, threads)


def _partition(context: Context) -> tuple[int, int]:
    node = context.node_config
    return int(node["partition-id"]), int(node["num-partitions"])


@functools.lru_cache(maxsize=2)
def _cached_train_data(cfg: EcoFedConfig, partition_id: int, num_partitions: int) -> LocalData:
    # Simulation actors are long-lived: prepare each partition once per process.
    data = client_data(cfg, partition_id, num_partitions)
    return split_holdout(data, cfg.validation_fraction, cfg.seed, client_name(partition_id))[0]


@functools.lru_cache(maxsize=2)
def _cached_model(cfg: EcoFedConfig, part: str) -> nn.Module:
    return full_model(initial_split(cfg), part)


class SeededFedAvg(FedAvg):
    """Flower's ``FedAvg`` with seeded sampling by partition id and a learning-rate schedule.

    Each round samples ``clients_per_round`` partitions with the harness's rule
    (:func:`~.sampling.sample_partitions`: the same clients EcoFed samples in that round),
    after asking each node once for its partition id (``query.fl_info``). The learning rate
    sent with a round follows ``lr_schedule`` over ``num_rounds``. Aggregation is
    ``FedAvg``'s own, timed.

    Parameters
    ----------
    seed : int
        Seeds the sampling.
    num_rounds : int
        Rounds of the run (the schedule spans them).
    lr_schedule : str (default: "constant")
        ``"constant"``, ``"cosine"`` or ``"cosine:WARMUP"``.
    **kwargs
        ``FedAvg``'s own settings (``fraction_train``, ``min_train_nodes``, ...).
    """

    def __init__(
        self, seed: int, num_rounds: int, lr_schedule: str = "constant", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.num_rounds = num_rounds
        self.schedule = make_lr_schedule(lr_schedule)
        self.nodes = NodeRegistry(strict=True)  # partition ids, as EcoFed's strategies key them
        self.aggregate_seconds: dict[int, float] = {}
        self.sampled: dict[int, list[int]] = {}  # round -> node ids asked to train

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Sample this round's partitions (seeded) and send them the weights and settings."""
        self._discover(grid, server_round)
        node_of = self.nodes.clients()
        partitions = sorted(node_of, key=int)
        k = clients_per_round(len(partitions), self.fraction_train, self.min_train_nodes)
        picked = sample_partitions(len(partitions), k, self.seed, server_round)
        node_ids = [node_of[partitions[i]] for i in picked]
        self.sampled[server_round] = node_ids
        log(INFO, "configure_train: partitions %s (of %d)", picked, len(partitions))
        config = ConfigRecord(dict(config))
        config["server-round"] = server_round
        base = config_value(config, "learning-rate", float, 0.01)
        config["learning-rate"] = self.schedule.round_learning_rate(
            base, server_round, self.num_rounds, 0.5
        )
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        return self._construct_messages(record, node_ids, MessageType.TRAIN)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """``FedAvg``'s aggregation, timed, of the replies of every sampled node.

        Raises
        ------
        ClientFailure
            If a sampled node sent an error or no reply: in a benchmark a round that
            trained on fewer clients than it sampled is not a data point (``FedAvg`` alone
            would average the rest, or keep the old weights when none answered).
        """
        replies = list(replies)
        _check_replies(server_round, self.sampled.get(server_round, []), replies)
        start = time.thread_time()
        result = super().aggregate_train(server_round, replies)
        self.aggregate_seconds[server_round] = time.thread_time() - start
        return result

    def _discover(self, grid: Grid, server_round: int) -> None:
        """Ask each new node for its partition id (the registry refuses a missing or taken one)."""
        nodes = wait_for_nodes(
            grid.get_node_ids, self.min_available_nodes, defaults.ROUND_TIMEOUT, server_round
        )
        new = self.nodes.connected(nodes)
        if not new:
            return
        messages = [
            grid.create_message(RecordDict(), f"{MessageType.QUERY}.{INFO_ACTION}", n, "0")
            for n in new
        ]
        for reply in grid.send_and_receive(messages, timeout=defaults.ROUND_TIMEOUT):
            if reply.has_error():
                raise RuntimeError(f"node {reply.metadata.src_node_id}: {reply.error.reason}")
            info = reply.content.config_records[CONFIG_KEY]
            self.nodes.admit(reply.metadata.src_node_id, dict(info))


class ClientFailure(RuntimeError):
    """A sampled client failed in a benchmark round (the run is void, not a data point)."""


def _check_replies(server_round: int, sampled: list[int], replies: list[Message]) -> None:
    answered: dict[int, str | None] = {}
    for reply in replies:
        node = reply.metadata.src_node_id
        answered[node] = reply.error.reason if reply.has_error() else None
    problems = [
        f"node {n}: " + ("no reply" if n not in answered else str(answered[n]))
        for n in sampled
        if answered.get(n, "no reply") is not None
    ]
    if problems:
        raise ClientFailure(
            f"round {server_round}: {len(problems)} of {len(sampled)} sampled clients failed "
            f"({'; '.join(p.splitlines()[0][:300] for p in problems)})"
        )


def validation_set(cfg: EcoFedConfig, num_clients: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows every client holds out, pooled (what a federated evaluation would score)."""
    images, labels = [], []
    for _, held in client_splits(cfg, num_clients).values():
        if held is not None:
            images.append(held.images)
            labels.append(torch.as_tensor(np.asarray(held.labels), dtype=torch.int64))
    if not images:
        return torch.zeros(0), torch.zeros(0, dtype=torch.int64)
    return torch.cat(images), torch.cat(labels)


def score_kept(
    cfg: EcoFedConfig,
    keeper: BestKeeper,
    split: SplitModel | None = None,
    model: nn.Module | None = None,
) -> TestScore | None:
    """The kept round's model scored once on the test set.

    With ``split``, the kept state is a back's and the frozen front computes its input;
    otherwise it is ``model``'s (a whole model).
    """
    if keeper.state is None or keeper.round is None:
        return None
    images, labels = test_set(cfg)
    if split is not None:
        scorer = trainable_copy(split.back)
        images = run_front(split.front, images, cfg.front_batch_size)
    elif model is not None:
        scorer = model
    else:
        raise ValueError("scoring the test set needs a split model or a model")
    scorer.load_state_dict(keeper.state)
    loss, accuracy = evaluate_back(scorer, images, labels)
    return TestScore(keeper.round, accuracy, loss)


def make_fl_server_app(
    cfg: EcoFedConfig,
    ledger: Ledger,
    on_round: Callable[[RoundLog], None],
    num_nodes: int,
    part: str = "all",
    on_test: Callable[[TestScore], None] | None = None,
) -> ServerApp:
    """A ServerApp running :class:`SeededFedAvg`; validation every round, the test set once.

    Validation scores the global model on the clients' pooled held-out rows (computed here,
    as a federated evaluation would, and not counted in the bytes). The weights of the
    round validation selects (:class:`~.report.BestKeeper`) are scored once on the test
    set at the end, and the score handed to ``on_test``.

    Parameters
    ----------
    cfg : EcoFedConfig
        Model, data, rounds, sampling, schedule and optimiser settings.
    ledger : Ledger
        Receives the bytes of every message sent and received.
    on_round : Callable[[RoundLog], None]
        Called after each round's evaluation.
    num_nodes : int
        Nodes to wait for before the first round.
    part : str (default: "all")
        What the devices train and exchange: ``"all"`` or ``"back"``.
    """
    _check_part(part)
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        metered = MeteredGrid(grid, ledger)
        model = full_model(initial_split(cfg), part)
        val_images, val_labels = validation_set(cfg, num_nodes)
        keeper = BestKeeper()
        strategy = SeededFedAvg(
            seed=cfg.seed,
            num_rounds=cfg.num_server_rounds,
            lr_schedule=cfg.lr_schedule,
            fraction_train=cfg.fraction_train,
            fraction_evaluate=0.0,
            min_train_nodes=cfg.min_train_nodes,
            min_available_nodes=max(num_nodes, cfg.min_train_nodes),
        )
        last = time.perf_counter()

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            nonlocal last
            if server_round == 0:  # the initial model: nothing to select
                return None
            exchanged(model, part).load_state_dict(arrays.to_torch_state_dict())
            val_loss, val_accuracy = (
                evaluate_back(model, val_images, val_labels) if len(val_labels) else (None, None)
            )
            keeper.offer(server_round, val_accuracy, model.state_dict())
            now = time.perf_counter()
            replies = metered.reply_metrics.get(server_round, {})
            on_round(
                RoundLog(
                    round=server_round,
                    val_accuracy=val_accuracy,
                    val_loss=val_loss,
                    device_seconds={n: m.get("train-seconds", 0.0) for n, m in replies.items()},
                    server_seconds=strategy.aggregate_seconds.get(server_round, 0.0),
                    wall_seconds=now - last,
                )
            )
            last = now
            return None if val_accuracy is None else MetricRecord({"val-accuracy": val_accuracy})

        strategy.start(
            grid=metered,
            initial_arrays=model_arrays(exchanged(model, part)),
            num_rounds=cfg.num_server_rounds,
            timeout=cfg.round_timeout,
            train_config=train_config(LocalTraining.from_config(cfg)),
            evaluate_fn=evaluate,
        )
        score = score_kept(cfg, keeper, model=model)
        if score is not None and on_test is not None:
            on_test(score)

    return app
