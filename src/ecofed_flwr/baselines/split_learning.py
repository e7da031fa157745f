"""DNN-partitioning FL simulated in one process: the round shared by vanilla and local-loss DPFL.

Both baselines train the front on the devices and the back on the server, step by step, and
average both halves every round. They differ only in what a step does (the ``step`` hook):
vanilla DPFL sends the gradient of the activations back down, local-loss DPFL trains the
front on a local auxiliary loss and sends nothing down.

Every transfer is a Flower message built from the real tensors (:class:`~.wire.Link`) and
recorded in a Ledger with its serialized size; the receiving side then uses the tensors it
decodes from that message, so what is counted is what is used. Device compute is timed apart
from server compute, on the thread count of the process (the harness sets it).
"""

from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord
from torch import Tensor, nn
from torch.nn import functional as F

from ecofed_flwr.baselines.training import LocalTraining, channels_last
from ecofed_flwr.baselines.wire import Link
from ecofed_flwr.data import LocalData
from ecofed_flwr.ledger import Ledger
from ecofed_flwr.models import SplitModel
from ecofed_flwr.protocol import ACTIVATIONS_KEY, LABELS_KEY, label_dtype
from ecofed_flwr.trainer import evaluate_back

GRADIENTS_KEY = "gradients"
FRONT_KEY = "front"
CONFIG_KEY = "config"
METRICS_KEY = "metrics"


@dataclass(frozen=True)
class SplitRoundStats:
    """What one round of a split-learning protocol did.

    Attributes
    ----------
    round : int
    clients : list[str]
        The round's sampled clients, in the order they were served.
    samples : int
        Training samples seen (over all clients and local epochs).
    train_loss : float
        Mean loss of the server's back-end on the uploaded activations.
    device_seconds : dict[str, float]
        Measured device compute per client (forward, backward and optimiser steps).
    server_seconds : dict[str, float]
        Measured server compute per client (its back-end copy's steps).
    server_steps : dict[str, int]
        Server SGD steps per client (for a server-speed model).
    aggregate_seconds : float
        Server time to average the fronts, heads and backs.
    """

    round: int
    clients: list[str]
    samples: int
    train_loss: float
    device_seconds: dict[str, float]
    server_seconds: dict[str, float]
    server_steps: dict[str, int]
    aggregate_seconds: float


@dataclass
class Session:
    """One client's part of a round: its modules, optimisers, link and clocks."""

    client: str
    link: Link
    device: dict[str, nn.Module]
    back: nn.Module
    device_optimizer: torch.optim.Optimizer
    server_optimizer: torch.optim.Optimizer
    device_seconds: float = 0.0
    server_seconds: float = 0.0
    server_steps: int = 0
    loss_sum: float = 0.0
    samples: int = 0

    @contextmanager
    def device_compute(self) -> Iterator[None]:
        """Time the block as device compute (this thread's CPU time: load cannot bend it)."""
        start = time.thread_time()
        try:
            yield
        finally:
            self.device_seconds += time.thread_time() - start

    @contextmanager
    def server_compute(self) -> Iterator[None]:
        """Time the block as server compute spent on this client (thread CPU time)."""
        start = time.thread_time()
        try:
            yield
        finally:
            self.server_seconds += time.thread_time() - start


def flower_fedavg(states: list[dict[str, Tensor]], weights: list[int]) -> dict[str, Tensor]:
    """Sample-weighted average of state dicts, rounded exactly as Flower's ``FedAvg`` rounds.

    Flower multiplies each array by its weight factor and adds the products in order, in the
    arrays' own precision; the same arithmetic here keeps a split-learning run on the same
    float path as classic FL's (training amplifies any rounding difference into a different
    run). Integer buffers (BatchNorm's step counters) are averaged and truncated, as
    ``load_state_dict`` does with Flower's average.
    """
    total = float(sum(weights))
    factors = [w / total for w in weights]
    averaged: dict[str, Tensor] = {}
    for name, first in states[0].items():
        if first.is_floating_point():
            acc = first * factors[0]
            for state, factor in zip(states[1:], factors[1:], strict=True):
                acc += state[name] * factor
        else:
            mean = sum(s[name].double() * f for s, f in zip(states, factors, strict=True))
            acc = torch.as_tensor(mean).to(first.dtype)
        averaged[name] = acc
    return averaged


def _state_record(module: nn.Module) -> ArrayRecord:
    return ArrayRecord({k: v.detach().cpu() for k, v in module.state_dict().items()})


def _tensor_record(key: str, tensor: Tensor) -> ArrayRecord:
    return ArrayRecord({key: Array(tensor.detach().cpu().contiguous().numpy())})


class SplitLearning(ABC):
    """Base of the split-learning baselines: a round loop with a ``step`` hook.

    Each round, for every sampled client: the server sends the device modules (front, and
    a head where the protocol has one); the device and the server run ``step`` on every
    local batch, each with its own copy of the modules; the device returns its modules.
    Then fronts, heads and back copies are averaged weighted by sample count (SplitFed v1).

    Parameters
    ----------
    split : SplitModel
        The model and cut; its front and back are copied (made trainable), not changed.
    training : LocalTraining
        Optimiser, batch size and local epochs, for the device and the server alike.
    ledger : Ledger, optional
        Where every message's bytes are recorded (a new one by default).
    """

    name: ClassVar[str] = "split"
    #: Whether a device waits for the server in the middle of its work (for the time model).
    server_blocks_device: ClassVar[bool] = False

    def __init__(
        self,
        split: SplitModel,
        training: LocalTraining,
        ledger: Ledger | None = None,
    ) -> None:
        self.training = training
        self.ledger = ledger if ledger is not None else Ledger()
        self.num_classes = split.num_classes
        self.label_dtype = label_dtype(split.num_classes)
        front = copy.deepcopy(split.front.layers)
        self.device_modules: dict[str, nn.Module] = {
            FRONT_KEY: front,
            **self.extra_device_modules(split),
        }
        self.back = copy.deepcopy(split.back)
        for module in (*self.device_modules.values(), self.back):
            # Channels-last, like every other contender's compute.
            module.to(memory_format=torch.channels_last)
            module.requires_grad_(True)

    @property
    def front(self) -> nn.Module:
        """The global front (device half)."""
        return self.device_modules[FRONT_KEY]

    def extra_device_modules(self, split: SplitModel) -> dict[str, nn.Module]:
        """Modules the devices train besides the front (none by default)."""
        return {}

    @abstractmethod
    def step(self, session: Session, server_round: int, x: Tensor, y: Tensor) -> None:
        """One local step of ``session`` on the batch ``(x, y)``, messages included."""

    # ------------------------------------------------------------------ round

    def train_round(
        self,
        server_round: int,
        clients: Mapping[str, LocalData],
        training: LocalTraining | None = None,
    ) -> SplitRoundStats:
        """Train one round on ``clients`` (name to local data) and average the halves.

        ``training`` replaces the engine's settings for this round (e.g. a scheduled
        learning rate); the batches of a client depend only on the seed, round and client.
        """
        if training is not None:
            self.training = training
        device_states: dict[str, list[dict[str, Tensor]]] = {k: [] for k in self.device_modules}
        back_states: list[dict[str, Tensor]] = []
        weights: list[int] = []
        sessions: list[Session] = []
        for client, data in clients.items():
            session = self._open(server_round, client)
            labels = torch.as_tensor(np.asarray(data.labels), dtype=torch.int64)
            with self.training.random_draws(server_round, client):
                for index in self.training.batches(len(labels), server_round, client):
                    self.step(session, server_round, data.images[index], labels[index])
            received = self._close(server_round, session, len(labels))
            for key, state in received.items():
                device_states[key].append(state)
            back_states.append(session.back.state_dict())
            weights.append(len(labels))
            sessions.append(session)
        start = time.thread_time()
        if weights:
            for key, module in self.device_modules.items():
                module.load_state_dict(flower_fedavg(device_states[key], weights))
            self.back.load_state_dict(flower_fedavg(back_states, weights))
        aggregate_seconds = time.thread_time() - start
        samples = sum(s.samples for s in sessions)
        return SplitRoundStats(
            round=server_round,
            clients=list(clients),
            samples=samples,
            train_loss=sum(s.loss_sum for s in sessions) / samples if samples else float("nan"),
            device_seconds={s.client: s.device_seconds for s in sessions},
            server_seconds={s.client: s.server_seconds for s in sessions},
            server_steps={s.client: s.server_steps for s in sessions},
            aggregate_seconds=aggregate_seconds,
        )

    def _open(self, server_round: int, client: str) -> Session:
        link = Link(self.ledger, client, f"train.{self.name}")
        config = ConfigRecord(
            {
                "server-round": server_round,
                "learning-rate": self.training.learning_rate,
                "batch-size": self.training.batch_size,
                "local-epochs": self.training.local_epochs,
            }
        )
        message = link.down(
            server_round,
            {**{k: _state_record(m) for k, m in self.device_modules.items()}, CONFIG_KEY: config},
        )
        # The device starts from what it received, loaded into its own copy of the modules.
        device: dict[str, nn.Module] = {}
        for key, module in self.device_modules.items():
            local = copy.deepcopy(module).train()
            local.load_state_dict(message.content.array_records[key].to_torch_state_dict())
            device[key] = local
        back = copy.deepcopy(self.back).train()
        params = [p for m in device.values() for p in m.parameters()]
        return Session(
            client=client,
            link=link,
            device=device,
            back=back,
            device_optimizer=self.training.optimizer(params),
            server_optimizer=self.training.optimizer(back.parameters()),
        )

    def _close(
        self, server_round: int, session: Session, num_examples: int
    ) -> dict[str, dict[str, Tensor]]:
        metrics = MetricRecord(
            {"num-examples": num_examples, "train-seconds": session.device_seconds}
        )
        message = session.link.up(
            server_round,
            {**{k: _state_record(m) for k, m in session.device.items()}, METRICS_KEY: metrics},
        )
        # The server averages what it received.
        return {k: message.content.array_records[k].to_torch_state_dict() for k in session.device}

    # ------------------------------------------------------------------ helpers for steps

    def upload(self, session: Session, server_round: int, activations: Tensor, y: Tensor) -> Tensor:
        """Send fp32 activations and labels up; return the activations the server decodes."""
        labels = ArrayRecord({"labels": Array(y.numpy().astype(self.label_dtype))})
        message = session.link.up(
            server_round,
            {ACTIVATIONS_KEY: _tensor_record(ACTIVATIONS_KEY, activations), LABELS_KEY: labels},
        )
        arrays = message.content.array_records[ACTIVATIONS_KEY]
        return torch.from_numpy(arrays[ACTIVATIONS_KEY].numpy())

    def send_gradient(self, session: Session, server_round: int, gradient: Tensor) -> Tensor:
        """Send the fp32 gradient of the activations down; return what the device decodes."""
        message = session.link.down(
            server_round, {GRADIENTS_KEY: _tensor_record(GRADIENTS_KEY, gradient)}
        )
        return torch.from_numpy(message.content.array_records[GRADIENTS_KEY][GRADIENTS_KEY].numpy())

    def server_step(self, session: Session, activations: Tensor, y: Tensor) -> Tensor:
        """One SGD step of the session's back copy on received activations; their gradient."""
        with session.server_compute():
            activations.requires_grad_(True)
            loss = F.cross_entropy(session.back(channels_last(activations)), y)
            session.server_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            session.server_optimizer.step()
        session.loss_sum += float(loss.detach()) * len(y)
        session.samples += len(y)
        session.server_steps += 1
        if activations.grad is None:
            raise RuntimeError("the back-end produced no gradient for its input")
        return activations.grad

    # ------------------------------------------------------------------ evaluation

    def model(self) -> nn.Module:
        """The global model for inference: front then back (a head is only for training)."""
        return nn.Sequential(self.front, self.back)

    def evaluate(self, images: Tensor, labels: Tensor) -> tuple[float, float]:
        """Mean cross-entropy and accuracy of the global model on ``images``."""
        return evaluate_back(self.model(), images, labels)
