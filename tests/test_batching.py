"""A trailing batch of one sample: merged into the batch before it, everywhere the same way.

BatchNorm on a 1x1 (or flat) feature refuses a training batch of one; before the shared
rule, a pass whose row count left a remainder of one stopped the run with a torch error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ecofed_flwr.baselines.training import LocalTraining
from ecofed_flwr.batching import batch_bounds, num_batches, split_batches
from ecofed_flwr.buffer import ReplayBuffer
from ecofed_flwr.codec import make_codec
from ecofed_flwr.trainer import BackTrainer, TrainerConfig


@pytest.mark.parametrize(
    ("n", "batch", "sizes"),
    [
        (0, 4, []),
        (1, 4, []),  # nothing to merge a lone sample with: no step
        (2, 4, [2]),
        (8, 4, [4, 4]),
        (9, 4, [4, 5]),  # 4 + 4 + 1: the one joins the batch before it
        (10, 4, [4, 4, 2]),
        (129, 128, [129]),
        (225, 32, [32] * 6 + [33]),
        (11, 10, [11]),
    ],
)
def test_batch_bounds_never_leave_a_batch_of_one(n: int, batch: int, sizes: list[int]) -> None:
    bounds = batch_bounds(n, batch)
    assert [b - a for a, b in bounds] == sizes
    assert num_batches(n, batch) == len(sizes)
    if n > 1:  # contiguous and covering every row exactly once
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(prev[1] == nxt[0] for prev, nxt in zip(bounds, bounds[1:], strict=False))
    order = np.random.default_rng(0).permutation(n)
    assert [len(b) for b in split_batches(order, batch)] == sizes
    with pytest.raises(ValueError, match="batch_size"):
        batch_bounds(n, 0)


def _bn_back() -> nn.Module:
    # BatchNorm on a 1x1 map: exactly what refuses a training batch of one.
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(8, 16, 2), nn.BatchNorm2d(16), nn.ReLU(), nn.Flatten(), nn.Linear(16, 4)
    )


def _buffer(sizes: list[int]) -> ReplayBuffer:
    codec = make_codec("fp32")
    buffer = ReplayBuffer(codec)
    rng = np.random.default_rng(0)
    for i, n in enumerate(sizes):
        x = rng.normal(size=(n, 8, 2, 2)).astype(np.float32)
        buffer.put(f"c{i}", codec.encode(x), rng.integers(0, 4, n), round=1)
    return buffer


@pytest.mark.parametrize(
    ("mode", "sizes", "batch", "steps"),
    [
        ("pooled", [43, 43, 43], 128, 1),  # 129 pooled rows at batch 128 (the new user's run)
        ("copies", [11, 21, 10], 10, 1 + 2 + 1),  # per-client rows 11 and 21 end in one
    ],
)
def test_the_trainer_merges_a_trailing_sample_instead_of_failing(
    mode: str, sizes: list[int], batch: int, steps: int
) -> None:
    buffer = _buffer(sizes)
    trainer = BackTrainer(
        _bn_back(), TrainerConfig(mode=mode, batch_size=batch, device="cpu", learning_rate=0.01)
    )
    stats = trainer.train_round(buffer, buffer.clients(), 1)
    assert stats.samples == sum(sizes) and stats.steps == steps
    assert all(torch.isfinite(v).all() for v in trainer.back.state_dict().values())
    batches = [
        len(y) for _, y in buffer.iter_batches(buffer.clients(), batch, np.random.default_rng(0))
    ]
    assert 1 not in batches and sum(batches) == sum(sizes)


def test_baseline_batches_cover_every_row_without_a_batch_of_one() -> None:
    training = LocalTraining(batch_size=32, local_epochs=2)
    batches = list(training.batches(225, 3, "client-1"))
    assert [len(b) for b in batches] == ([32] * 6 + [33]) * 2
    for epoch in (batches[:7], batches[7:]):
        assert sorted(torch.cat(epoch).tolist()) == list(range(225))
    # And a BatchNorm model trains through every one of them.
    model, x = _bn_back().train(), torch.randn(225, 8, 2, 2)
    for index in batches:
        model(x[index]).sum().backward()
