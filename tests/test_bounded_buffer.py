"""A replay buffer with a memory budget: uploads beyond it are memory-mapped from the run
folder, training sees the same batches, and the process holds no more than the budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from ecofed_flwr.app.server_app import make_server_app
from ecofed_flwr.baselines.loopback import run_loopback
from ecofed_flwr.buffer import ReplayBuffer, entry_name
from ecofed_flwr.checkpoint import Checkpointer
from ecofed_flwr.codec import EncodedBatch, make_codec
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.federation import make_client_app
from ecofed_flwr.lifecycle import BUFFER_MMAP_DIR
from ecofed_flwr.server import EcoFedServer, RoundReport
from ecofed_flwr.trainer import TrainerConfig

SHAPE = (16, 4, 4)  # 256 values: 256 B per sample with u8
CLASSES = 4
CLIENTS = [str(i) for i in range(8)]
SAMPLES = 400  # per client: about 0.8 MB buffered in all, hold-out and rows included
BUDGET = 150_000  # bytes: under a quarter of it


def _data(client: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(client)
    centers = np.random.default_rng(7).normal(size=(CLASSES, *SHAPE)).astype(np.float32)
    labels = rng.integers(0, CLASSES, size=SAMPLES)
    x = centers[labels] + 4.0 * rng.normal(size=(SAMPLES, *SHAPE)).astype(np.float32)
    return x, labels


def _upload(client: str) -> tuple[EncodedBatch, np.ndarray, float]:
    x, y = _data(int(client))
    return make_codec("u8").encode(x), y, 0.0


TEST_X, TEST_Y = (torch.from_numpy(a) for a in _data(99))


def _test_accuracy(back: nn.Module) -> dict[str, float]:
    with torch.no_grad():
        return {"accuracy": float((back(TEST_X).argmax(1) == TEST_Y).float().mean())}


def _server(budget: int = 0, spill_dir: Path | None = None) -> EcoFedServer:
    torch.manual_seed(0)
    back = nn.Sequential(nn.Flatten(), nn.Linear(256, 32), nn.ReLU(), nn.Linear(32, CLASSES))
    server = EcoFedServer(
        back,
        "fp",
        SHAPE,
        CLASSES,
        codec="u8",
        refresh="every:2",  # round 3 replaces the entries of the clients it samples
        replay="all",
        fraction_train=0.5,
        num_rounds=4,
        trainer=TrainerConfig(learning_rate=0.05, batch_size=64, device="cpu"),
        evaluate_fn=_test_accuracy,
    )
    server.buffer.set_memory_budget(budget, spill_dir)
    return server


def _run(server: EcoFedServer, first: int, last: int) -> None:
    for r in range(first, last + 1):
        server.run_round(r, CLIENTS, _upload)


def _reports(server: EcoFedServer) -> list[dict[str, Any]]:
    volatile = RoundReport.TIMINGS
    return [{k: v for k, v in r.to_json().items() if k not in volatile} for r in server.reports]


def _assert_same_training(a: EcoFedServer, b: EcoFedServer) -> None:
    assert _reports(a) == _reports(b)  # losses, validation and test accuracies, bytes
    theirs = b.trainer.back.state_dict()
    for k, v in a.trainer.back.state_dict().items():
        assert torch.equal(v, theirs[k]), k


def test_a_bounded_buffer_trains_exactly_like_an_unbounded_one(tmp_path: Path) -> None:
    unbounded = _server()
    _run(unbounded, 1, 4)
    bounded = _server(BUDGET, tmp_path / "mmap")
    _run(bounded, 1, 4)
    _assert_same_training(unbounded, bounded)

    buffer = bounded.buffer
    total = unbounded.buffer.resident_nbytes
    print(
        f"\nbuffered {total:,} B; budget {BUDGET:,} B: resident {buffer.resident_nbytes:,} B, "
        f"memory-mapped {buffer.mapped_nbytes:,} B; final test accuracy "
        f"{bounded.reports[-1].metrics['accuracy']:.4f} (unbounded "
        f"{unbounded.reports[-1].metrics['accuracy']:.4f})"
    )
    assert total > 3 * BUDGET
    assert 0 < buffer.resident_nbytes <= BUDGET
    assert buffer.resident_nbytes + buffer.mapped_nbytes == total
    assert buffer.nbytes == unbounded.buffer.nbytes  # reported buffer bytes do not change
    # One folder per mapped entry; replaced entries took theirs with them.
    mapped = {entry_name(c, e.round) for c, e in buffer.entries().items() if e.mapped_nbytes}
    assert mapped and {p.name for p in (tmp_path / "mmap").iterdir()} == mapped
    assert any(e.round > 1 for e in buffer.entries().values())


def test_a_checkpoint_restores_into_a_bounded_buffer(tmp_path: Path) -> None:
    unbounded = _server()
    _run(unbounded, 1, 4)
    crashed = _server()
    _run(crashed, 1, 2)
    Checkpointer(tmp_path).save(crashed.state())
    restored = _server(BUDGET, tmp_path / "mmap")
    restored.load_state(Checkpointer(tmp_path).load().state)
    assert 0 < restored.buffer.resident_nbytes <= BUDGET < restored.buffer.mapped_nbytes
    _run(restored, 3, 4)
    _assert_same_training(unbounded, restored)


def test_a_memory_budget_needs_a_folder_and_an_empty_buffer(tmp_path: Path) -> None:
    buffer = ReplayBuffer(make_codec("u8"))
    with pytest.raises(ValueError, match="needs a spill_dir"):
        buffer.set_memory_budget(1000)
    with pytest.raises(ValueError, match=">= 0 bytes, got -1"):
        buffer.set_memory_budget(-1, tmp_path)
    batch, labels, _ = _upload("0")
    buffer.put("0", batch, labels, round=1)
    with pytest.raises(ValueError, match="before the first entry"):
        buffer.set_memory_budget(1000, tmp_path)


# The process's own measure: anonymous resident memory (what a buffer in RAM costs, unlike
# mapped file pages, which the kernel can drop). Run in a fresh process, with glibc told to
# give large freed blocks back at once, so that the figure is the buffer's.
_MEASURE = """
import json, sys
import numpy as np
from ecofed_flwr.buffer import ReplayBuffer
from ecofed_flwr.codec import make_codec

def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024

budget, spill = int(sys.argv[1]), sys.argv[2]
codec = make_codec("u8")
buffer = ReplayBuffer(codec, budget, spill or None)
rng = np.random.default_rng(0)
before = anon()
for client in range(24):  # 24 uploads of 2,000 samples of 16x8x8: about 50 MB in all
    x = rng.normal(size=(2000, 16, 8, 8)).astype(np.float32)
    buffer.put(str(client), codec.encode(x), rng.integers(0, 10, 2000), round=1)
    del x
filled = anon()
seen = sum(len(y) for _, y in buffer.iter_batches(buffer.clients(), 512, rng))
print(json.dumps({
    "buffered": buffer.nbytes, "resident": buffer.resident_nbytes,
    "mapped": buffer.mapped_nbytes, "anon_growth": filled - before,
    "anon_after_pass": anon() - before, "samples_read": seen,
}))
"""


def _measure(budget: int, spill: Path | None) -> dict[str, int]:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(budget), str(spill or "")],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    )  # fmt: skip
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_the_process_holds_no_more_than_the_budget(tmp_path: Path) -> None:
    budget, margin = 10_000_000, 6_000_000  # margin: one upload in flight and its encoding
    bounded = _measure(budget, tmp_path / "mmap")
    unbounded = _measure(0, None)
    print(f"\nunbounded: {unbounded}\nbounded to {budget:,} B: {bounded}")
    assert bounded["samples_read"] == unbounded["samples_read"] == 48_000
    assert bounded["resident"] <= budget < bounded["buffered"] / 4
    assert bounded["anon_growth"] <= budget + margin
    assert bounded["anon_after_pass"] <= budget + margin  # a training pass maps, not copies
    assert unbounded["anon_growth"] >= 0.9 * unbounded["buffered"]


# ------------------------------------------------------------------------------ the app


def _app_run(run_dir: Path, **overrides: object) -> dict[str, Any]:
    base: dict[str, object] = {
        "model": "tiny_cnn",
        "cut": "block1",
        "weights": "random",
        "input-size": 16,
        "dataset": "synthetic",
        "samples-per-client": 60,
        "test-samples": 100,
        "num-server-rounds": 3,
        "refresh": "every:2",
        "codec": "u4",
        "batch-size": 32,
        "output-dir": str(run_dir),
    }
    cfg = EcoFedConfig.from_mapping({**base, **overrides})
    run_loopback(make_server_app(cfg), make_client_app(cfg), 4)
    return dict(json.loads((run_dir / "results.json").read_text()))


def test_buffer_memory_mb_bounds_the_apps_buffer(tmp_path: Path) -> None:
    unbounded = _app_run(tmp_path / "unbounded")
    bounded = _app_run(tmp_path / "bounded", **{"buffer-memory-mb": 0.05})
    volatile = RoundReport.TIMINGS
    for a, b in zip(unbounded["rounds"], bounded["rounds"], strict=True):
        assert {k: v for k, v in a.items() if k not in volatile} == {
            k: v for k, v in b.items() if k not in volatile
        }
    assert bounded["rounds"][-1]["buffer_bytes"] > 2 * 50_000  # more than the budget
    assert list((tmp_path / "bounded" / BUFFER_MMAP_DIR).iterdir())
    assert not (tmp_path / "unbounded" / BUFFER_MMAP_DIR).exists()
