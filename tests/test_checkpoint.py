"""Checkpoint and resume: the core server's state on disk, damaged checkpoints, and a real
``ecofed run`` killed with SIGKILL after round 2 and resumed with ``--resume``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from ecofed_flwr.checkpoint import CHECKPOINT_DIR, Checkpointer, CheckpointError
from ecofed_flwr.codec import EncodedBatch, make_codec
from ecofed_flwr.server import EcoFedServer, RoundReport, StateMismatch
from ecofed_flwr.trainer import TrainerConfig

SHAPE = (8, 2, 2)
CLASSES = 4
CLIENTS = [str(i) for i in range(6)]
VOLATILE = ("seconds", "server_train_seconds")  # wall-clock figures differ between runs


def _data(client: int, n: int = 90) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(client)
    centers = np.random.default_rng(7).normal(size=(CLASSES, *SHAPE)).astype(np.float32)
    labels = rng.integers(0, CLASSES, size=n)
    return centers[labels] + 0.6 * rng.normal(size=(n, *SHAPE)).astype(np.float32), labels


def _server(refresh: str = "stall:1", seed: int = 0) -> EcoFedServer:
    torch.manual_seed(0)
    back = nn.Sequential(nn.Flatten(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, CLASSES))
    return EcoFedServer(
        back,
        "fp",
        SHAPE,
        CLASSES,
        codec="u4+zstd",
        refresh=refresh,
        replay="paper",
        fraction_train=0.5,
        num_rounds=6,
        trainer=TrainerConfig(learning_rate=0.1, batch_size=16, device="cpu", seed=seed),
        seed=seed,
        evaluate_fn=lambda back: {"accuracy": 0.5},
    )


def _upload(client: str) -> tuple[EncodedBatch, np.ndarray, float]:
    x, y = _data(int(client))
    return make_codec("u4+zstd").encode(x), y, 0.0


def _rounds(server: EcoFedServer, first: int, last: int) -> None:
    for r in range(first, last + 1):
        server.run_round(r, CLIENTS, _upload)


def _comparable(reports: list[RoundReport]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.to_json().items() if k not in VOLATILE} for r in reports]


def _saved_after(tmp_path: Path, rounds: int, refresh: str = "stall:1") -> EcoFedServer:
    server = _server(refresh)
    server.evaluate_initial()
    _rounds(server, 1, rounds)
    Checkpointer(tmp_path).save(server.state(), {"note": "hello"})
    return server


# ------------------------------------------------------------------------------ core


def test_a_restored_server_goes_on_exactly_like_the_uninterrupted_one(tmp_path: Path) -> None:
    whole = _server()
    whole.evaluate_initial()
    _rounds(whole, 1, 6)

    _saved_after(tmp_path, 3)
    checkpoint = Checkpointer(tmp_path).load()
    assert checkpoint.extra == {"note": "hello"}
    resumed = _server()
    resumed.load_state(checkpoint.state)
    assert resumed.round == 3 and len(resumed.buffer) > 0
    _rounds(resumed, 4, 6)

    assert _comparable(resumed.reports) == _comparable(whole.reports)
    # stall:1 refreshes after a round without a gain: its state came back with the rest.
    assert any(r.refresh and r.round > 1 for r in whole.reports)
    assert resumed.best_round == whole.best_round
    mine = resumed.trainer.back.state_dict()
    for k, v in whole.trainer.back.state_dict().items():
        assert torch.equal(v, mine[k]), k
    for k, v in whole.result_state().items():
        assert torch.equal(v, resumed.result_state()[k]), k
    assert resumed.ledger.to_json() == whole.ledger.to_json()


def test_uploads_are_written_once_and_replaced_ones_deleted(tmp_path: Path) -> None:
    server = _server(refresh="every:2")
    server.evaluate_initial()
    checkpointer = Checkpointer(tmp_path)
    folder = tmp_path / CHECKPOINT_DIR
    _rounds(server, 1, 1)
    checkpointer.save(server.state())
    first = {p.name: p.stat().st_mtime_ns for p in (folder / "buffer").iterdir()}
    assert sorted(first) == sorted(f"00001-c{c}.npz" for c in server.buffer.clients())
    _rounds(server, 2, 2)  # a replay round: no upload, nothing new to write
    checkpointer.save(server.state())
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "buffer").iterdir()} == first
    assert sorted(p.name for p in folder.glob("weights-*")) == ["weights-00002.pt"]
    _rounds(server, 3, 3)  # refresh: the sampled clients' entries are replaced
    checkpointer.save(server.state())
    names = sorted(p.name for p in (folder / "buffer").iterdir())
    expected = sorted(f"{server.buffer.get(c).round:05d}-c{c}.npz" for c in server.buffer.clients())
    assert names == expected and any(n.startswith("00003-") for n in names)
    assert not list(folder.rglob("*.tmp"))


def test_a_crash_before_the_commit_leaves_the_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _saved_after(tmp_path, 2)
    _rounds(server, 3, 3)
    real_replace = os.replace

    def die_at_commit(src: Any, dst: Any) -> None:
        if str(dst).endswith("state.json"):
            raise KeyboardInterrupt("killed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", die_at_commit)
    with pytest.raises(KeyboardInterrupt):
        Checkpointer(tmp_path).save(server.state())
    monkeypatch.setattr(os, "replace", real_replace)
    state = Checkpointer(tmp_path).load().state
    assert state.round == 2
    restored = _server()
    restored.load_state(state)  # every file of round 2 is still there and intact
    assert restored.round == 2


def _damage_npz(folder: Path) -> None:
    path = sorted((folder / "buffer").iterdir())[0]
    path.write_bytes(path.read_bytes()[:-20])


def _object_array_npz(folder: Path) -> None:
    # A well-formed file whose digest matches, but holding a pickled object array.
    state_path = folder / "state.json"
    doc = json.loads(state_path.read_text())
    entry = doc["buffer"][0]
    path = folder / entry["file"]
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["labels"] = np.array([{"x": 1}], dtype=object)
    np.savez(path, **arrays)
    import hashlib

    entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    entry["nbytes"] = path.stat().st_size
    state_path.write_text(json.dumps(doc))


def _edit_state(change: Any) -> Any:
    def edit(folder: Path) -> None:
        doc = json.loads((folder / "state.json").read_text())
        change(doc)
        (folder / "state.json").write_text(json.dumps(doc))

    return edit


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "state.json").write_text("{not json"), "expected a JSON checkpoint"),
        (lambda f: (f / "state.json").unlink(), "does not exist"),
        (_damage_npz, "expected .* bytes"),
        (lambda f: next(f.glob("weights-*")).write_bytes(b"junk"), "expected .* bytes"),
        (_object_array_npz, "plain arrays"),
        (_edit_state(lambda d: d.update(version=7)), "version 1, got .* version 7"),
        (_edit_state(lambda d: d["reports"][1].update(sampled="0")), r"reports\[1\]: sampled"),
        (_edit_state(lambda d: d["ledger"][0].update(direction="sideways")), "ledger record 0"),
        (_edit_state(lambda d: d["buffer"][0].update(file="../x.npz")), "unexpected file name"),
        (_edit_state(lambda d: d["buffer"][0]["meta"].update(group_size=3)), "group_size"),
        (_edit_state(lambda d: d.update(round=-1)), "round must be an int >= 0"),
    ],
)
def test_a_damaged_checkpoint_is_a_clear_error(tmp_path: Path, damage: Any, message: str) -> None:
    _saved_after(tmp_path, 2)
    damage(tmp_path / CHECKPOINT_DIR)
    with pytest.raises(CheckpointError, match=message):
        checkpoint = Checkpointer(tmp_path).load()
        _server().load_state(checkpoint.state)  # entries are read (and checked) here


def test_a_state_of_other_settings_or_weights_is_refused_by_name(tmp_path: Path) -> None:
    _saved_after(tmp_path, 2)
    state = Checkpointer(tmp_path).load().state
    with pytest.raises(StateMismatch, match="seed: this server has 1, the state has 0"):
        _server(seed=1).load_state(state)
    state.back["1.weight"] = torch.zeros(3)
    with pytest.raises(StateMismatch, match="back weights"):
        _server().load_state(state)
