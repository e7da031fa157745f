"""Server-side training of the back-end on replayed activations, and its evaluation."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ecofed_flwr import defaults
from ecofed_flwr.batching import num_batches
from ecofed_flwr.buffer import ReplayBuffer

#: Learning rate as a function of the position in the round (0 at its first step, < 1).
LearningRateAt = Callable[[float], float]

TRAINER_MODES = ("copies", "pooled")


def check_sgd_settings(
    learning_rate: float, momentum: float, weight_decay: float, batch_size: int, local_epochs: int
) -> None:
    """Raise ValueError naming the SGD setting that is out of range."""
    if learning_rate <= 0 or not 0 <= momentum < 1 or weight_decay < 0:
        raise ValueError(
            "need learning_rate > 0, 0 <= momentum < 1, weight_decay >= 0; got "
            f"{learning_rate}, {momentum}, {weight_decay}"
        )
    if batch_size < 1 or local_epochs < 1:
        raise ValueError(
            f"batch_size and local_epochs must be >= 1, got {batch_size}, {local_epochs}"
        )


@dataclass(frozen=True)
class TrainerConfig:
    """Settings of the server-side back-end training.

    Parameters
    ----------
    mode : str (default: "pooled")
        ``"copies"`` (paper): one copy of the global back per client slot, each trained on
        that client's buffer, then averaged weighted by sample count (FedAvg).
        ``"pooled"``: one shared back trained on batches mixed from every slot's buffer.
    learning_rate : float (default: 0.1)
        Base learning rate (a schedule scales it per step, see :meth:`BackTrainer.train_round`).
    momentum : float (default: 0.9)
        SGD momentum, reset every round.
    weight_decay : float (default: 0.0)
    batch_size : int (default: 128)
    local_epochs : int (default: 1)
        Passes over each slot's buffered samples per round.
    seed : int (default: 0)
        Seeds the batch order and dropout of each round.
    device : str (default: "auto")
        ``"auto"`` uses CUDA when present, else the CPU.
    channels_last : bool (default: True)
        Keep 4-D activations and conv weights channels-last (faster oneDNN/cuDNN kernels).
    """

    mode: str = defaults.TRAINER
    learning_rate: float = defaults.LEARNING_RATE
    momentum: float = defaults.MOMENTUM
    weight_decay: float = defaults.WEIGHT_DECAY
    batch_size: int = defaults.BATCH_SIZE
    local_epochs: int = defaults.LOCAL_EPOCHS
    seed: int = defaults.SEED
    device: str = defaults.DEVICE
    channels_last: bool = True

    def __post_init__(self) -> None:
        if self.mode not in TRAINER_MODES:
            raise ValueError(f"trainer mode must be one of {TRAINER_MODES}, got {self.mode!r}")
        check_sgd_settings(
            self.learning_rate, self.momentum, self.weight_decay, self.batch_size, self.local_epochs
        )

    def optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.SGD:
        """A fresh SGD optimiser over ``params`` with these settings."""
        return torch.optim.SGD(
            params, lr=self.learning_rate, momentum=self.momentum, weight_decay=self.weight_decay
        )


@dataclass(frozen=True)
class TrainStats:
    """What one round of server training did."""

    loss: float
    samples: int
    steps: int
    seconds: float
    skipped_steps: int = 0
    last_learning_rate: float = float("nan")
    #: CPU time of the training thread: unlike ``seconds``, not inflated by other processes
    #: on a busy host (with one torch thread it is the whole compute).
    cpu_seconds: float = 0.0


def resolve_device(name: str) -> torch.device:
    """``auto`` becomes CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def fedavg_states(states: Sequence[dict[str, Tensor]], weights: Sequence[int]) -> dict[str, Tensor]:
    """Weighted average of state dicts; integer buffers (BatchNorm counters) take the first."""
    if not states or len(states) != len(weights) or sum(weights) <= 0:
        raise ValueError("need one positive weight per state dict and at least one state dict")
    total = float(sum(weights))
    averaged: dict[str, Tensor] = {}
    for name, first in states[0].items():
        if first.is_floating_point():
            acc = torch.zeros_like(first)
            for state, w in zip(states, weights, strict=True):
                acc.add_(state[name], alpha=w / total)
            averaged[name] = acc
        else:
            averaged[name] = first.clone()
    return averaged


@dataclass
class _Run:
    """Running totals of one training pass."""

    loss_sum: float = 0.0
    samples: int = 0
    steps: int = 0
    skipped: int = 0
    last_lr: float = float("nan")

    def add(self, other: _Run) -> None:
        self.loss_sum += other.loss_sum
        self.samples += other.samples
        self.steps += other.steps
        self.skipped += other.skipped
        self.last_lr = other.last_lr


class BackTrainer:
    """Trains the global back-end on buffered activations, one round at a time.

    Parameters
    ----------
    back : nn.Module
        The global back-end; it is moved to the trainer's device and updated in place.
    config : TrainerConfig
        Optimiser and mode settings.
    """

    def __init__(self, back: nn.Module, config: TrainerConfig) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.back = back.to(self.device)
        if config.channels_last:
            self.back.to(memory_format=torch.channels_last)

    def train_round(
        self,
        buffer: ReplayBuffer,
        slots: Sequence[str],
        server_round: int,
        learning_rate_at: LearningRateAt | None = None,
    ) -> TrainStats:
        """Train on the buffered samples of ``slots`` (one entry per client slot).

        ``learning_rate_at(f)`` gives the learning rate of the step at fraction ``f`` of this
        round's steps (default: the configured rate throughout). Batch order and dropout come
        from ``(seed, server_round)`` only, so a round is reproducible on its own (and after a
        resume). A step whose loss is not finite is skipped (counted in ``skipped_steps``).
        """
        start, cpu_start = time.perf_counter(), time.thread_time()
        if not slots:
            return TrainStats(loss=float("nan"), samples=0, steps=0, seconds=0.0)
        lr_at = learning_rate_at or (lambda _: self.config.learning_rate)
        generator = np.random.default_rng([self.config.seed, server_round])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed * 100_003 + server_round)
            if self.config.mode == "pooled":
                run = self._train(self.back, buffer, slots, generator, lr_at)
            else:
                run = _Run()
                states, weights = [], []
                for client in slots:
                    local = copy.deepcopy(self.back)
                    run.add(self._train(local, buffer, [client], generator, lr_at))
                    states.append(local.state_dict())
                    weights.append(buffer.get(client).num_samples)
                self.back.load_state_dict(fedavg_states(states, weights))
        return TrainStats(
            loss=run.loss_sum / run.samples if run.samples else float("nan"),
            samples=run.samples,
            steps=run.steps,
            seconds=time.perf_counter() - start,
            skipped_steps=run.skipped,
            last_learning_rate=run.last_lr,
            cpu_seconds=time.thread_time() - cpu_start,
        )

    def _train(
        self,
        model: nn.Module,
        buffer: ReplayBuffer,
        clients: Sequence[str],
        generator: np.random.Generator,
        lr_at: LearningRateAt,
    ) -> _Run:
        cfg = self.config
        # A fresh optimiser each call: momentum is reset every round, as in the paper.
        optimizer = cfg.optimizer(model.parameters())
        model.train()
        run = _Run()
        total = cfg.local_epochs * num_batches(
            buffer.num_samples(list(dict.fromkeys(clients))), cfg.batch_size
        )
        for _ in range(cfg.local_epochs):
            for x, y in buffer.iter_batches(clients, cfg.batch_size, generator):
                run.last_lr = lr_at((run.steps + run.skipped + 0.5) / max(total, 1))
                for group in optimizer.param_groups:
                    group["lr"] = run.last_lr
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
                if cfg.channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(x), y)
                if not torch.isfinite(loss):
                    # A guard, not a substitute for validating uploads: never step on NaN/inf.
                    run.skipped += 1
                    continue
                loss.backward()
                optimizer.step()
                run.loss_sum += float(loss.detach()) * len(y)
                run.samples += len(y)
                run.steps += 1
        return run


@torch.no_grad()
def evaluate_back(
    back: nn.Module, activations: Tensor, labels: Tensor, batch_size: int = 1000
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``back`` (eval mode) on front activations."""
    back.eval()
    device = next(back.parameters()).device
    loss_sum, correct = 0.0, 0
    for start in range(0, len(labels), batch_size):
        x = activations[start : start + batch_size].to(device)
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        y = labels[start : start + batch_size].to(device)
        logits = back(x)
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
    n = max(len(labels), 1)
    return loss_sum / n, correct / n
