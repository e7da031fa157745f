"""Device-side training shared by the baselines: optimiser settings, batches, trainable copies."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from flwr.app import Context
from flwr.clientapp import ClientApp
from torch import Tensor, nn

from ecofed_flwr.app.task import num_classes_of
from ecofed_flwr.batching import split_batches
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.models import SplitModel, create_split
from ecofed_flwr.schedule import LRSchedule
from ecofed_flwr.trainer import TrainerConfig


@dataclass(frozen=True)
class LocalTraining(TrainerConfig):
    """How a device (or the server, for its half) trains in one round.

    The SGD settings of :class:`~ecofed_flwr.trainer.TrainerConfig` (same names, defaults
    and checks; ``mode``, ``device`` and ``channels_last`` are not used here), plus the
    per-client batch order of the baselines.
    """

    @classmethod
    def from_config(cls, cfg: EcoFedConfig) -> LocalTraining:
        """The optimiser settings of ``cfg`` (the same names as in the run config)."""
        return cls(**dataclasses.asdict(cfg.trainer_config()))

    def batches(self, num_samples: int, server_round: int, client: str) -> Iterator[Tensor]:
        """Index batches of every local epoch; the order depends on round, client and epoch."""
        key = _client_key(client)
        for epoch in range(self.local_epochs):
            rng = np.random.default_rng([self.seed, server_round, key, epoch])
            order = torch.from_numpy(rng.permutation(num_samples))
            # A last batch of one joins the one before (BatchNorm refuses a batch of one).
            yield from split_batches(order, self.batch_size)

    @contextmanager
    def random_draws(self, server_round: int, client: str) -> Iterator[None]:
        """Seed torch's random draws (dropout) of one client's round, and restore them after.

        Every protocol's client-round draws its dropout masks from ``(seed, round, client)``
        alone: a run is reproducible from its settings, whatever ran before it in the
        process, and split learning (front on the device, back on the server, in that order
        per step) draws exactly the masks the whole model draws in FedAvg.
        """
        with torch.random.fork_rng(devices=[]):
            digest = hashlib.sha256(f"{self.seed}/{server_round}/{client}".encode()).digest()
            torch.manual_seed(int.from_bytes(digest[:8], "big") >> 1)
            yield

    def for_round(self, schedule: LRSchedule, server_round: int, num_rounds: int) -> LocalTraining:
        """These settings with the learning rate ``schedule`` gives round ``server_round``.

        One rate per round (at the round's middle): devices get it with the round's request.
        """
        rate = schedule.round_learning_rate(self.learning_rate, server_round, num_rounds, 0.5)
        return dataclasses.replace(self, learning_rate=rate)


def _client_key(client: str) -> int:
    # A digest, not hash(): Python salts string hashes per process.
    return int.from_bytes(hashlib.sha256(client.encode()).digest()[:8], "big")


def initial_split(cfg: EcoFedConfig) -> SplitModel:
    """A new split model of ``cfg``, with its initial weights.

    Not the process's cached one (``ecofed_flwr.app.task.build_split``): the EcoFed server
    trains that one's back in place, so a baseline run after an EcoFed run in the same
    process would start from trained weights.
    """
    return create_split(
        cfg.model, cfg.cut, cfg.weights, num_classes_of(cfg), cfg.input_size, cfg.seed
    )


def trainable_copy(module: nn.Module) -> nn.Module:
    """A channels-last deep copy of ``module``, every parameter trainable, in training mode.

    Every contender trains channels-last (the memory format of the EcoFed server's back and
    of the frozen front), so that measured compute compares like with like.
    """
    clone = copy.deepcopy(module).to(memory_format=torch.channels_last)
    for param in clone.parameters():
        param.requires_grad_(True)
    return clone.train()


def channels_last(x: Tensor) -> Tensor:
    """``x`` in channels-last layout when it is an image batch (faster CPU convolutions)."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` intra-op threads (every contender uses the same count)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def with_torch_threads(app: ClientApp, threads: int) -> ClientApp:
    """Make every call of ``app`` run with ``threads`` torch threads; return ``app``.

    Uses the ClientApp's lifespan hook, so it also holds inside Flower's Ray actors, whose
    thread count would otherwise be torch's default for the actor's process.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")

    @app.lifespan()
    def lifespan(context: Context) -> Iterator[None]:
        with torch_threads(threads):
            yield

    return app
