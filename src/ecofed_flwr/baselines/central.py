"""The central references of a comparison: the clients' pooled training data, no federation.

``central`` trains the whole model; ``central-frozen`` the back alone on fp32 activations of
the frozen front. Both get, round by round, the SGD updates of the federated protocol they
are a reference for (see :data:`~ecofed_flwr.baselines.contenders.CENTRAL_PROTOCOLS`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from logging import INFO

import numpy as np
import torch
from flwr.supercore import log
from torch.nn import functional as F

from ecofed_flwr.baselines.contenders import clients_per_round
from ecofed_flwr.baselines.fl import full_model, score_kept, validation_set
from ecofed_flwr.baselines.report import BestKeeper, Outcome, RoundLog
from ecofed_flwr.baselines.sampling import client_name, client_splits, sample_partitions
from ecofed_flwr.baselines.training import (
    LocalTraining,
    channels_last,
    initial_split,
    trainable_copy,
)
from ecofed_flwr.batching import split_batches
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.models import run_front
from ecofed_flwr.schedule import make_lr_schedule
from ecofed_flwr.trainer import evaluate_back

__all__ = ["run_central"]


def run_central(cfg: EcoFedConfig, num_clients: int, frozen: bool, budget: str) -> Outcome:
    """Train on the pooled training rows of every client, round by round.

    Each round gets the SGD updates of the federated protocol it is a reference for
    (``budget``): ``"sampled"`` (``central``, like ``fl``): the training rows of the round's
    sampled clients times ``local-epochs``; ``"seen"`` (``central-frozen``, like
    ``ecofed-best``, which replays every buffered upload each round): the rows of every
    client sampled so far. Samples are drawn from seeded passes over the pool and cut into
    batches like every other protocol's (:func:`~ecofed_flwr.batching.split_batches`).
    ``frozen`` trains the back alone on the frozen front's fp32 activations.
    """
    if budget not in ("sampled", "seen"):
        raise ValueError(f"budget must be 'sampled' or 'seen', got {budget!r}")
    split = initial_split(cfg)
    n = num_clients
    parts = client_splits(cfg, n)
    images = torch.cat([train.images for train, _ in parts.values()])
    labels = torch.as_tensor(
        np.concatenate([np.asarray(train.labels) for train, _ in parts.values()]),
        dtype=torch.int64,
    )
    val_images, val_labels = validation_set(cfg, n)
    if frozen:
        # The back alone, on fp32 activations of the frozen front (computed once).
        model = trainable_copy(split.back)
        images = run_front(split.front, images, cfg.front_batch_size)
        if len(val_labels):
            val_images = run_front(split.front, val_images, cfg.front_batch_size)
    else:
        model = full_model(split)
    training = LocalTraining.from_config(cfg)
    schedule = make_lr_schedule(cfg.lr_schedule)
    optimizer = training.optimizer(model.parameters())
    k = clients_per_round(n, cfg.fraction_train, cfg.min_train_nodes)
    sizes = [len(parts[client_name(i)][0].labels) for i in range(n)]
    stream = _sample_stream(len(labels), cfg.seed)
    keeper = BestKeeper()
    seen: set[int] = set()
    logs = []
    for server_round in range(1, cfg.num_server_rounds + 1):
        start, cpu_start = time.perf_counter(), time.thread_time()
        sampled = sample_partitions(n, k, cfg.seed, server_round)
        seen.update(sampled)
        if budget == "sampled":
            samples = training.local_epochs * sum(sizes[i] for i in sampled)
        else:
            samples = training.local_epochs * sum(sizes[i] for i in seen)
        rate = training.for_round(schedule, server_round, cfg.num_server_rounds).learning_rate
        for group in optimizer.param_groups:
            group["lr"] = rate
        order = torch.from_numpy(np.fromiter((next(stream) for _ in range(samples)), np.int64))
        model.train()
        steps = 0
        with training.random_draws(server_round, "central"):
            for index in split_batches(order, training.batch_size):
                loss = F.cross_entropy(model(channels_last(images[index])), labels[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                steps += 1
        seconds = time.thread_time() - cpu_start
        val_loss, val_accuracy = (
            evaluate_back(model, val_images, val_labels) if len(val_labels) else (None, None)
        )
        keeper.offer(server_round, val_accuracy, model.state_dict())
        logs.append(
            RoundLog(
                round=server_round,
                val_accuracy=val_accuracy,
                val_loss=val_loss,
                device_seconds={},
                server_seconds=seconds,
                server_train_seconds=seconds,
                server_steps=steps,
                server_batch_size=training.batch_size,
                wall_seconds=time.perf_counter() - start,
                extra={"train_samples": samples},
            )
        )
        log(
            INFO,
            "[central ROUND %d] val accuracy %s | %d steps | %.1f s",
            server_round,
            "-" if val_accuracy is None else f"{val_accuracy:.4f}",
            steps,
            seconds,
        )
    return logs, score_kept(cfg, keeper, split=split if frozen else None, model=model)


def _sample_stream(num_samples: int, seed: int) -> Iterator[int]:
    """Indices of seeded passes over ``num_samples`` samples, one pass after another."""
    epoch = 0
    while True:
        yield from np.random.default_rng([seed, 7, epoch]).permutation(num_samples).tolist()
        epoch += 1
