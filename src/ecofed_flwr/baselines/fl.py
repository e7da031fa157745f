"""Classic FL through Flower: every device trains the whole model; Flower's ``FedAvg`` averages.

The ClientApp is a standard Message-API client (one ``train`` handler, weights in the
``arrays`` ArrayRecord, metrics with ``num-examples``); the ServerApp runs Flower's own
:class:`~flwr.serverapp.strategy.FedAvg` (only timed, not changed) on a
:class:`~ecofed_flwr.baselines.wire.MeteredGrid`, so the bytes counted are those Flower sends.
The model is the same split model the other protocols use, joined again, every layer
trainable, from the same initial weights.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from torch import nn
from torch.nn import functional as F

from ecofed_flwr.app.task import client_data, test_set
from ecofed_flwr.baselines.report import RoundLog
from ecofed_flwr.baselines.training import (
    LocalTraining,
    channels_last,
    initial_split,
    torch_threads,
    trainable_copy,
)
from ecofed_flwr.baselines.wire import MeteredGrid
from ecofed_flwr.clients import LocalData
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.ledger import Ledger
from ecofed_flwr.models import SplitModel
from ecofed_flwr.protocol import config_value
from ecofed_flwr.trainer import evaluate_back

ARRAYS_KEY = "arrays"  # FedAvg's default arrayrecord_key
CONFIG_KEY = "config"  # FedAvg's default configrecord_key
METRICS_KEY = "metrics"


def full_model(split: SplitModel) -> nn.Module:
    """The whole classifier (front then back), every layer trainable; ``split`` is unchanged."""
    return trainable_copy(nn.Sequential(split.front.layers, split.back))


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
    threads: int = 1,
) -> tuple[float, float]:
    """Local epochs of SGD on the whole model; the mean loss and the compute seconds."""
    labels = torch.as_tensor(np.asarray(data.labels), dtype=torch.int64)
    optimizer = training.optimizer(model.parameters())
    model.train()
    loss_sum, samples = 0.0, 0
    with torch_threads(threads):
        start = time.perf_counter()
        for index in training.batches(len(labels), server_round, client):
            y = labels[index]
            loss = F.cross_entropy(model(channels_last(data.images[index])), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(y)
            samples += len(y)
        seconds = time.perf_counter() - start
    return loss_sum / max(samples, 1), seconds


def fit_reply(
    request: Message, model: nn.Module, num_examples: int, train_loss: float, seconds: float
) -> Message:
    """The reply ``FedAvg`` expects: the trained weights and metrics with ``num-examples``."""
    metrics = MetricRecord(
        {"num-examples": num_examples, "train-loss": train_loss, "train-seconds": seconds}
    )
    content = RecordDict({ARRAYS_KEY: model_arrays(model), METRICS_KEY: metrics})
    return Message(content, reply_to=request)


def make_fl_client_app(cfg: EcoFedConfig, threads: int = 1) -> ClientApp:
    """A ClientApp that trains the whole model on its partition for each ``train`` request.

    Parameters
    ----------
    cfg : EcoFedConfig
        Model, data and optimiser settings (the request's config overrides the optimiser).
    threads : int (default: 1)
        Threads for training (device compute is timed on one core by default).
    """
    app = ClientApp()

    @app.train()
    def train(message: Message, context: Context) -> Message:
        node = context.node_config
        partition_id, num_partitions = int(node["partition-id"]), int(node["num-partitions"])
        data = _cached_data(cfg, partition_id, num_partitions)
        model = _cached_model(cfg)
        model.load_state_dict(message.content.array_records[ARRAYS_KEY].to_torch_state_dict())
        config = message.content.config_records.get(CONFIG_KEY, ConfigRecord())
        training = training_from(config, LocalTraining.from_config(cfg))
        server_round = config_value(config, "server-round", int, 0)
        loss, seconds = train_local(
            model, data, training, server_round, f"client-{partition_id}", threads
        )
        return fit_reply(message, model, len(data.labels), loss, seconds)

    return app


@functools.lru_cache(maxsize=2)
def _cached_data(cfg: EcoFedConfig, partition_id: int, num_partitions: int) -> LocalData:
    # Simulation actors are long-lived: prepare each partition once per process.
    return client_data(cfg, partition_id, num_partitions)


@functools.lru_cache(maxsize=1)
def _cached_model(cfg: EcoFedConfig) -> nn.Module:
    return full_model(initial_split(cfg))


class TimedFedAvg(FedAvg):
    """Flower's ``FedAvg``, unchanged, that also records how long each aggregation takes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aggregate_seconds: dict[int, float] = {}

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        start = time.perf_counter()
        result = super().aggregate_train(server_round, replies)
        self.aggregate_seconds[server_round] = time.perf_counter() - start
        return result


def make_fl_server_app(
    cfg: EcoFedConfig,
    ledger: Ledger,
    on_round: Callable[[RoundLog], None],
    num_nodes: int,
) -> ServerApp:
    """A ServerApp running Flower's FedAvg with central evaluation on the test set.

    Parameters
    ----------
    cfg : EcoFedConfig
        Model, data, rounds, sampling and optimiser settings.
    ledger : Ledger
        Receives the bytes of every message sent and received.
    on_round : Callable[[RoundLog], None]
        Called after each round's evaluation.
    num_nodes : int
        Nodes to wait for before the first round.
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        metered = MeteredGrid(grid, ledger)
        model = full_model(initial_split(cfg))
        images, labels = test_set(cfg)
        strategy = TimedFedAvg(
            fraction_train=cfg.fraction_train,
            fraction_evaluate=0.0,
            min_train_nodes=cfg.min_train_nodes,
            min_available_nodes=max(num_nodes, cfg.min_train_nodes),
        )
        last = time.perf_counter()

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            nonlocal last
            model.load_state_dict(arrays.to_torch_state_dict())
            loss, accuracy = evaluate_back(model, images, labels)
            now = time.perf_counter()
            if server_round > 0:
                replies = metered.reply_metrics.get(server_round, {})
                on_round(
                    RoundLog(
                        round=server_round,
                        accuracy=accuracy,
                        loss=loss,
                        device_seconds={n: m.get("train-seconds", 0.0) for n, m in replies.items()},
                        server_seconds=strategy.aggregate_seconds.get(server_round, 0.0),
                        wall_seconds=now - last,
                    )
                )
            last = now
            return MetricRecord({"accuracy": accuracy, "loss": loss})

        strategy.start(
            grid=metered,
            initial_arrays=model_arrays(model),
            num_rounds=cfg.num_server_rounds,
            timeout=cfg.round_timeout,
            train_config=train_config(LocalTraining.from_config(cfg)),
            evaluate_fn=evaluate,
        )

    return app
