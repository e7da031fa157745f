"""Server-side training of the back-end on replayed activations, and its evaluation."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ecofed_flwr.buffer import ReplayBuffer

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
    mode : str (default: "copies")
        ``"copies"`` (paper): one copy of the global back per client slot, each trained on
        that client's buffer, then averaged weighted by sample count (FedAvg).
        ``"pooled"``: one shared back trained on batches mixed from every slot's buffer.
    learning_rate : float (default: 0.01)
    momentum : float (default: 0.9)
        SGD momentum, reset every round.
    weight_decay : float (default: 0.0)
    batch_size : int (default: 10)
    local_epochs : int (default: 1)
        Passes over each slot's buffered samples per round.
    seed : int (default: 0)
        Seeds the batch order and dropout of each round.
    device : str (default: "auto")
        ``"auto"`` uses CUDA when present, else the CPU.
    channels_last : bool (default: True)
        Keep 4-D activations and conv weights channels-last (faster oneDNN/cuDNN kernels).
    """

    mode: str = "copies"
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 10
    local_epochs: int = 1
    seed: int = 0
    device: str = "auto"
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
        self, buffer: ReplayBuffer, slots: Sequence[str], server_round: int
    ) -> TrainStats:
        """Train on the buffered samples of ``slots`` (one entry per client slot)."""
        start = time.perf_counter()
        if not slots:
            return TrainStats(loss=float("nan"), samples=0, steps=0, seconds=0.0)
        generator = np.random.default_rng([self.config.seed, server_round])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed * 100_003 + server_round)
            if self.config.mode == "pooled":
                loss_sum, samples, steps = self._train(self.back, buffer, slots, generator)
            else:
                loss_sum, samples, steps = 0.0, 0, 0
                states, weights = [], []
                for client in slots:
                    local = copy.deepcopy(self.back)
                    c_loss, c_samples, c_steps = self._train(local, buffer, [client], generator)
                    loss_sum, samples, steps = (
                        loss_sum + c_loss,
                        samples + c_samples,
                        steps + c_steps,
                    )
                    states.append(local.state_dict())
                    weights.append(buffer.get(client).num_samples)
                self.back.load_state_dict(fedavg_states(states, weights))
        return TrainStats(
            loss=loss_sum / max(samples, 1),
            samples=samples,
            steps=steps,
            seconds=time.perf_counter() - start,
        )

    def _train(
        self,
        model: nn.Module,
        buffer: ReplayBuffer,
        clients: Sequence[str],
        generator: np.random.Generator,
    ) -> tuple[float, int, int]:
        cfg = self.config
        # A fresh optimiser each call: momentum is reset every round, as in the paper.
        optimizer = cfg.optimizer(model.parameters())
        model.train()
        loss_sum, samples, steps = 0.0, 0, 0
        for _ in range(cfg.local_epochs):
            for x, y in buffer.iter_batches(clients, cfg.batch_size, generator):
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
                if cfg.channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                loss_sum += float(loss.detach()) * len(y)
                samples += len(y)
                steps += 1
        return loss_sum, samples, steps

    def evaluate(
        self, activations: Tensor, labels: Tensor, batch_size: int = 1000
    ) -> tuple[float, float]:
        """Mean cross-entropy and accuracy of the back on precomputed front activations."""
        return evaluate_back(self.back, activations, labels, batch_size)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The back's state as numpy arrays (for Flower's ArrayRecord and checkpoints)."""
        return {k: v.detach().cpu().numpy() for k, v in self.back.state_dict().items()}


@torch.no_grad()
def run_front(front: nn.Module, images: Tensor, batch_size: int = 500) -> Tensor:
    """Front activations of ``images`` computed in batches (the front is frozen)."""
    outputs = [front(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return torch.cat(outputs) if outputs else torch.zeros(0)


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
