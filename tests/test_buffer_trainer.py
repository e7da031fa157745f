"""Replay buffer, refresh schedules, replay selection, back-end trainer and ledger."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ecofed_flwr.buffer import (
    PeriodicRefresh,
    RefreshOnce,
    RefreshOnStall,
    ReplayBuffer,
    make_refresh_policy,
    select_replay,
)
from ecofed_flwr.codec import make_codec
from ecofed_flwr.ledger import BandwidthModel, Ledger
from ecofed_flwr.trainer import BackTrainer, TrainerConfig, evaluate_back, fedavg_states


def _client_data(seed: int, n: int = 120, classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Activations of a learnable task: a class-dependent mean plus noise, shape (n, 8, 2, 2)."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).normal(size=(classes, 8, 2, 2)).astype(np.float32)
    labels = rng.integers(0, classes, size=n)
    x = centers[labels] + 0.5 * rng.normal(size=(n, 8, 2, 2)).astype(np.float32)
    return x, labels.astype(np.int64)


def _filled_buffer(codec_name: str = "u8", clients: int = 4) -> ReplayBuffer:
    codec = make_codec(codec_name)
    buffer = ReplayBuffer(codec)
    for c in range(clients):
        x, y = _client_data(c)
        buffer.put(f"c{c}", codec.encode(x), y, round=1)
    return buffer


def test_buffer_keeps_encoded_bytes_and_replaces_on_refresh() -> None:
    codec = make_codec("u4+zstd")
    buffer = ReplayBuffer(codec)
    x, y = _client_data(0)
    batch = codec.encode(x)
    buffer.put("a", batch, y, round=1)
    entry = buffer.get("a")
    # Stored still quantized: packed 4-bit codes, not floats.
    assert entry.batch.arrays["codes"].dtype == np.uint8
    assert buffer.nbytes == entry.batch.nbytes + y.nbytes
    assert buffer.nbytes < x.nbytes / 4
    torch.testing.assert_close(buffer.decode("a"), torch.from_numpy(codec.decode(batch)))
    x2, y2 = _client_data(1, n=50)
    buffer.put("a", codec.encode(x2), y2, round=3)
    assert buffer.num_samples() == 50 and buffer.get("a").round == 3 and len(buffer) == 1
    with pytest.raises(ValueError, match="labels"):
        buffer.put("b", codec.encode(x2), y2[:10], round=3)
    assert "b" not in buffer and buffer.num_samples() == 50


def test_iter_batches_mixes_clients_and_covers_every_sample_once() -> None:
    buffer = _filled_buffer()
    seen_labels = []
    sizes = []
    for x, y in buffer.iter_batches(["c0", "c1", "c1"], 32, np.random.default_rng(0)):
        assert x.dtype == torch.float32 and x.shape[1:] == (8, 2, 2) and len(x) == len(y)
        sizes.append(len(y))
        seen_labels.append(y)
    assert sum(sizes) == 240  # c1 listed twice but read once
    all_y = torch.cat(seen_labels).sort().values
    expected = torch.from_numpy(np.concatenate([buffer.get("c0").labels, buffer.get("c1").labels]))
    assert torch.equal(all_y, expected.sort().values)


def test_paper_schedule_p2_over_six_rounds() -> None:
    policy = PeriodicRefresh(2)
    buffer = ReplayBuffer(make_codec("paper"))
    schedule = [policy.needs_upload(r, "c0", buffer) for r in range(1, 7)]
    # Refresh on the first round and every other round after it; replay in between.
    assert schedule == [True, False, True, False, True, False]
    assert [PeriodicRefresh(3).needs_upload(r, "c", buffer) for r in range(1, 7)] == [
        True,
        False,
        False,
        True,
        False,
        False,
    ]


def test_refresh_once_and_on_stall() -> None:
    buffer = _filled_buffer(clients=1)
    once = RefreshOnce()
    assert once.needs_upload(1, "new", buffer) and not once.needs_upload(9, "c0", buffer)
    stall = RefreshOnStall(patience=2, min_delta=0.01)
    for r, acc in enumerate([0.5, 0.6, 0.6, 0.605], start=1):
        stall.observe(r, acc)
    # Rounds 3 and 4 brought no 0.01 gain: round 5 refreshes every sampled client.
    assert stall.needs_upload(5, "c0", buffer)
    assert not stall.needs_upload(6, "c0", buffer)
    assert make_refresh_policy("every:2").period == 2  # type: ignore[attr-defined]
    assert isinstance(make_refresh_policy("once"), RefreshOnce)
    for bad in ("every:0", "sometimes", "every:x"):
        with pytest.raises(ValueError):
            make_refresh_policy(bad)


def test_replay_selection() -> None:
    buffer = _filled_buffer(clients=3)
    rng = np.random.default_rng(0)
    picks = select_replay("paper", 20, ["zz"], buffer, rng)
    assert len(picks) == 20 and set(picks) <= {"c0", "c1", "c2"} and len(set(picks)) > 1
    assert select_replay("sampled", 5, ["c2", "x", "c0"], buffer, rng) == ["c2", "c0"]
    assert select_replay("paper", 3, [], ReplayBuffer(make_codec("u8")), rng) == []
    with pytest.raises(ValueError, match="selection"):
        select_replay("other", 1, [], buffer, rng)


def _back() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(32, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4)
    )


@pytest.mark.parametrize("mode", ["copies", "pooled"])
def test_trainer_modes_lower_the_loss(mode: str) -> None:
    buffer = _filled_buffer()
    trainer = BackTrainer(
        _back(), TrainerConfig(mode=mode, learning_rate=0.05, batch_size=10, device="cpu")
    )
    x_test, y_test = _client_data(42, n=400)
    xt, yt = torch.from_numpy(x_test), torch.from_numpy(y_test)
    loss0, acc0 = evaluate_back(trainer.back, xt, yt)
    for r in range(1, 4):
        stats = trainer.train_round(buffer, buffer.clients(), r)
        assert stats.samples == 480 and stats.steps == 48
    loss1, acc1 = evaluate_back(trainer.back, xt, yt)
    assert loss1 < 0.5 * loss0
    assert acc1 > 0.9 > acc0


def test_trainer_is_deterministic_for_a_seed() -> None:
    states = []
    for _ in range(2):
        trainer = BackTrainer(_back(), TrainerConfig(mode="copies", device="cpu", seed=5))
        trainer.train_round(_filled_buffer(), ["c0", "c1"], 1)
        states.append({k: v.detach().cpu().numpy() for k, v in trainer.back.state_dict().items()})
    for k in states[0]:
        np.testing.assert_array_equal(states[0][k], states[1][k])


def test_copies_mode_is_fedavg_of_per_client_copies() -> None:
    buffer = _filled_buffer(clients=2)
    config = TrainerConfig(mode="copies", learning_rate=0.05, device="cpu", seed=1)
    trainer = BackTrainer(_back(), config)
    trainer.train_round(buffer, ["c0", "c1"], 1)
    # The same computation written out by hand: copy, SGD over the client's shuffled samples
    # (one shared batch-order stream, as the trainer draws it), then a sample-weighted mean.
    import copy

    start = _back()
    rng = np.random.default_rng([config.seed, 1])
    states = []
    for client in ("c0", "c1"):
        local = copy.deepcopy(start).train()
        opt = torch.optim.SGD(local.parameters(), lr=0.05, momentum=0.9)
        order = rng.permutation(buffer.get(client).num_samples)
        for b in range(0, len(order), config.batch_size):
            rows = np.sort(order[b : b + config.batch_size])
            x = buffer.decode(client, rows)
            y = torch.from_numpy(buffer.get(client).labels[rows])
            opt.zero_grad()
            nn.functional.cross_entropy(local(x), y).backward()
            opt.step()
        states.append(local.state_dict())
    expected = fedavg_states(states, [120, 120])
    for name, value in trainer.back.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=1e-5, atol=1e-6)
    # And it is not what one pooled model would have learned.
    pooled = BackTrainer(_back(), TrainerConfig(mode="pooled", learning_rate=0.05, device="cpu"))
    pooled.train_round(buffer, ["c0", "c1"], 1)
    assert not torch.allclose(pooled.back.state_dict()["1.weight"], expected["1.weight"])


def test_fedavg_weights_and_integer_buffers() -> None:
    a = {"w": torch.tensor([0.0, 0.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([4.0, 8.0]), "n": torch.tensor(9)}
    avg = fedavg_states([a, b], [3, 1])
    torch.testing.assert_close(avg["w"], torch.tensor([1.0, 2.0]))
    assert int(avg["n"]) == 3
    with pytest.raises(ValueError):
        fedavg_states([a], [0])


def test_trainer_config_validation() -> None:
    with pytest.raises(ValueError, match="mode"):
        TrainerConfig(mode="fast")
    with pytest.raises(ValueError, match="batch_size"):
        TrainerConfig(batch_size=0)
    with pytest.raises(ValueError, match="learning_rate"):
        TrainerConfig(learning_rate=-1.0)


def test_ledger_sums_and_bandwidth_model() -> None:
    ledger = Ledger()
    ledger.add(1, "a", "up", "activations", 1_000_000)
    ledger.add(1, "a", "up", "labels", 500)
    ledger.add(1, "a", "down", "control", 100)
    ledger.add(2, "b", "up", "activations", 250_000)
    assert ledger.total("up") == 1_250_500
    assert ledger.total("up", "activations", round=1) == 1_000_000
    assert ledger.by_round()[1] == {
        "up": 1_000_500,
        "up_activations": 1_000_000,
        "up_labels": 500,
        "down": 100,
        "down_control": 100,
    }
    model = BandwidthModel(uplink_mbps=8.0, downlink_mbps=80.0, latency_s=0.1)
    assert model.seconds(1_000_000, "up") == pytest.approx(1.0 + 0.1)
    # Client a, round 1: two upload messages and one download message.
    expected = (1_000_500 * 8 / 8e6 + 2 * 0.1) + (100 * 8 / 80e6 + 0.1)
    assert model.client_round_seconds(ledger, 1, "a") == pytest.approx(expected)
    with pytest.raises(ValueError, match="purpose"):
        ledger.add(1, "a", "up", "gossip", 1)
    with pytest.raises(ValueError, match="bandwidths"):
        BandwidthModel(uplink_mbps=0)
