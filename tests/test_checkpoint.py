"""Checkpoint and resume: the core server's state on disk, damaged checkpoints, and a real
``ecofed run`` killed with SIGKILL after round 2 and resumed with ``--resume``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import torch
from torch import nn

from ecofed_flwr import cli
from ecofed_flwr.app.server_app import make_server_app
from ecofed_flwr.baselines.loopback import run_loopback
from ecofed_flwr.checkpoint import CHECKPOINT_DIR, Checkpointer, CheckpointError
from ecofed_flwr.codec import EncodedBatch, make_codec
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.federation import make_client_app
from ecofed_flwr.launch import Spawned, stop_process
from ecofed_flwr.server import EcoFedServer, RoundReport, StateMismatch
from ecofed_flwr.trainer import TrainerConfig

SHAPE = (8, 2, 2)
CLASSES = 4
CLIENTS = [str(i) for i in range(6)]
VOLATILE = RoundReport.TIMINGS  # wall-clock figures differ between runs


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
    checkpointer = Checkpointer(tmp_path)
    checkpoint = checkpointer.load()
    assert checkpoint.extra == {"note": "hello"}
    resumed = _server()
    resumed.load_state(checkpoint.state)
    assert resumed.round == 3 and len(resumed.buffer) > 0
    uploads = {p: p.stat().st_mtime_ns for p in (tmp_path / CHECKPOINT_DIR / "buffer").iterdir()}
    _rounds(resumed, 4, 6)
    checkpointer.save(resumed.state())
    for path, mtime in uploads.items():  # uploads still buffered are not written again
        assert not path.exists() or path.stat().st_mtime_ns == mtime
    assert any(path.exists() for path in uploads)

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


# ------------------------------------------------------------------------------ the app

KEYS = ("round", "sampled", "uploaded", "val_accuracy", "accuracy", "bytes_up", "bytes_down")


class _Killed(BaseException):
    """Stands in for SIGKILL inside the process: nothing catches it."""


def _app_config(run_dir: Path, **overrides: object) -> EcoFedConfig:
    base: dict[str, object] = {
        "model": "tiny_cnn",
        "cut": "block1",
        "weights": "random",
        "input-size": 16,
        "dataset": "synthetic",
        "samples-per-client": 100,
        "test-samples": 200,
        "num-server-rounds": 4,
        "fraction-train": 0.5,
        "refresh": "once",
        "codec": "u4",
        "batch-size": 32,
        "output-dir": str(run_dir),
    }
    base.update(overrides)
    return EcoFedConfig.from_mapping(base)


def _loopback(cfg: EcoFedConfig) -> dict[str, Any]:
    run_loopback(make_server_app(cfg), make_client_app(cfg), 4)
    return dict(json.loads((Path(cfg.output_dir) / "results.json").read_text()))


def test_the_app_resumes_after_a_crash_and_asks_no_buffered_client_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _loopback(_app_config(tmp_path / "whole"))
    save = Checkpointer.save

    def save_then_die(self: Checkpointer, state: Any, extra: Any = None) -> Path:
        path = save(self, state, extra)
        if state.round == 2:
            raise _Killed
        return path

    monkeypatch.setattr(Checkpointer, "save", save_then_die)
    with pytest.raises(_Killed):
        _loopback(_app_config(tmp_path / "crashed"))
    monkeypatch.setattr(Checkpointer, "save", save)
    with pytest.raises(CheckpointError, match="other settings: seed: 0 -> 1"):
        _loopback(_app_config(tmp_path / "crashed", seed=1, resume=True))
    resumed = _loopback(_app_config(tmp_path / "crashed", resume=True))

    assert resumed["status"] == "completed" and resumed["resumes"] == [2]
    # Loopback node ids are the same in both processes (as on a SuperLink that kept
    # running): the maps were restored, no handshake was repeated, the bytes agree too.
    for a, b in zip(whole["rounds"], resumed["rounds"], strict=True):
        assert {k: a.get(k) for k in KEYS} == {k: b.get(k) for k in KEYS}
    buffered = {c for r in resumed["rounds"][:3] for c in r["uploaded"]}
    for r in resumed["rounds"][3:]:
        assert not set(r["uploaded"]) & buffered
    assert resumed["final_accuracy"] == whole["final_accuracy"]
    assert resumed["ledger"] == whole["ledger"]


# ------------------------------------------------------------- a real run, killed


REPO = Path(__file__).resolve().parents[1]
NODES = 4
RUN_CONFIG = (
    "model='tiny_cnn' cut='block1' weights='random' input-size=16 dataset='synthetic' "
    "num-server-rounds=4 fraction-train=0.5 samples-per-client=100 test-samples=200 "
    "batch-size=32 round-timeout=120.0"
)
ROUND_TIMEOUT_S = 300  # per launch; a loaded 2-core machine is slow to start Ray


def _ecofed_run(*args: str) -> subprocess.Popen[str]:
    command = [str(Path(sys.executable).parent / "ecofed"), "run", "--app-dir", str(REPO)]
    return subprocess.Popen(
        [*command, "--quiet", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str], what: str) -> str:
    out, _ = proc.communicate(timeout=ROUND_TIMEOUT_S)
    assert proc.returncode == 0, f"{what} failed:\n{out[-3000:]}"
    return out


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def _checkpointed_round(run_dir: Path) -> int:
    try:
        return Checkpointer(run_dir).peek()[0]
    except CheckpointError:
        return -1


def _kill_serverapp_after(proc: subprocess.Popen[str], run_dir: Path, after: int) -> int:
    """SIGKILL the process running the ServerApp (``flwr-simulation``, a grandchild of the
    SuperLink that ``proc`` started) once round ``after`` is checkpointed; stop ``proc``."""
    spawned = Spawned(proc.pid)
    deadline = time.monotonic() + ROUND_TIMEOUT_S
    while _checkpointed_round(run_dir) < after:
        assert proc.poll() is None, f"the run ended before round {after} was checkpointed"
        assert time.monotonic() < deadline, f"round {after} not checkpointed in time"
        spawned.refresh()
        time.sleep(0.05)
    spawned.refresh()
    serverapps = [p for p in spawned.running() if "flwr-simulation" in _cmdline(p)]
    assert len(serverapps) == 1, serverapps
    serverapps[0].kill()  # SIGKILL, and only while the PID is still that process's
    killed_after = _checkpointed_round(run_dir)
    # The launcher would only notice after the SuperLink's heartbeat timeout: stop it now.
    proc.terminate()
    proc.communicate(timeout=60)
    spawned.refresh()
    assert not spawned.running(), "the launcher left processes behind"
    return killed_after


def _ledger_kinds(doc: dict[str, Any], r: int) -> Counter[tuple[str, str, str]]:
    return Counter(
        (e["client"], e["direction"], e["purpose"]) for e in doc["ledger"] if e["round"] == r
    )


def _table(whole: dict[str, Any], resumed: dict[str, Any], killed_after: int) -> str:
    lines = [
        f"killed with SIGKILL after round {killed_after} was checkpointed; resumed with "
        "`ecofed run --resume RUN_DIR`",
        "round | sampled | uploaded | val acc whole / resumed | test acc whole / resumed | "
        "act. bytes up whole / resumed | bytes up whole / resumed | bytes down whole / resumed",
    ]
    for a, b in zip(whole["rounds"], resumed["rounds"], strict=True):
        lines.append(
            f"{a['round']} | {','.join(a['sampled'])} | {','.join(sorted(a['uploaded']))} | "
            f"{a['val_accuracy']} / {b['val_accuracy']} | {a['accuracy']} / {b['accuracy']} | "
            f"{a['bytes_up_activations']} / {b['bytes_up_activations']} | "
            f"{a['bytes_up']} / {b['bytes_up']} | {a['bytes_down']} / {b['bytes_down']}"
        )
    return "\n".join(lines)


@pytest.mark.timeout(3 * ROUND_TIMEOUT_S)
def test_ecofed_run_killed_after_round_2_resumes_with_the_same_rounds(tmp_path: Path) -> None:
    nodes = ["--num-supernodes", str(NODES), "--run-config", RUN_CONFIG]
    # The uninterrupted run goes on beside the one that is killed (it saves minutes).
    reference = _ecofed_run(*nodes, "--output-root", str(tmp_path / "whole"))
    killed = _ecofed_run(*nodes, "--output-root", str(tmp_path / "killed"))
    procs = [reference, killed]
    try:
        assert killed.stdout is not None
        first = killed.stdout.readline()  # "SuperLink ... on ADDRESS; run folder RUN_DIR"
        run_dir = Path(first.rsplit(" ", 1)[-1].strip())
        killed_after = _kill_serverapp_after(killed, run_dir, after=2)
        assert 2 <= killed_after < 4
        interrupted = json.loads((run_dir / "results.json").read_text())
        assert interrupted["status"] == "running"
        resume = _ecofed_run("--resume", str(run_dir))
        procs.append(resume)
        _finish(resume, "the resumed run")
        _finish(reference, "the uninterrupted run")
    finally:
        for proc in procs:
            stop_process(proc)
    whole = json.loads((tmp_path / "whole" / "latest" / "results.json").read_text())
    resumed = json.loads((run_dir / "results.json").read_text())
    print("\n" + _table(whole, resumed, killed_after))

    assert resumed["status"] == "completed" and resumed["resumes"] == [killed_after]
    assert [r["round"] for r in resumed["rounds"]] == [0, 1, 2, 3, 4]
    for a, b in zip(whole["rounds"], resumed["rounds"], strict=True):
        assert (a["sampled"], sorted(a["uploaded"])) == (b["sampled"], sorted(b["uploaded"]))
        assert (a["val_accuracy"], a["accuracy"]) == (b["val_accuracy"], b["accuracy"])
        for key in ("bytes_up_activations", "bytes_up_labels"):
            assert a[key] == b[key], (a["round"], key)
        extra = _ledger_kinds(resumed, a["round"]) - _ledger_kinds(whole, a["round"])
        assert not _ledger_kinds(whole, a["round"]) - _ledger_kinds(resumed, a["round"])
        if a["round"] == killed_after + 1:
            # New node ids in a new simulation: each node answers the handshake once more.
            clients = [str(i) for i in range(NODES)]
            assert extra == Counter(
                [(c, "down", "control") for c in clients] + [(c, "up", "control") for c in clients]
            )
        else:
            assert not extra
            # Node and run ids are varints in each message's metadata: a byte or two each.
            messages = sum(_ledger_kinds(whole, a["round"]).values())
            for key in ("bytes_up", "bytes_down"):
                assert abs(a[key] - b[key]) <= 4 * messages, (a["round"], key)
    buffered = {c for r in resumed["rounds"][: killed_after + 1] for c in r["uploaded"]}
    for e in resumed["ledger"]:
        if e["round"] > killed_after and e["purpose"] == "activations":
            assert e["client"] not in buffered, e
    assert resumed["final_accuracy"] == whole["final_accuracy"]


def test_resume_usage_errors_are_found_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    cfg = _app_config(run_dir)
    base = ["run", "--app-dir", str(REPO), "--quiet", "--resume", str(run_dir)]

    def refused(*args: str) -> str:
        assert cli.main([*base, *args]) == 2
        return capsys.readouterr().err

    assert "no checkpoint to resume from" in refused()
    server = _server()
    server.evaluate_initial()
    Checkpointer(run_dir).save(server.state(), {"config": cfg.to_dict(), "resumes": []})
    assert "pass --num-supernodes" in refused()
    (run_dir / "launch.json").write_text(json.dumps({"num_supernodes": 4}))
    assert "had 4 (partitions depend on it), got 5" in refused("--num-supernodes", "5")
    assert "changed: seed: 0 -> 1" in refused("--run-config", "seed=1")
    assert "use --resume RUN_DIR" in refused("--run-config", "resume=false")
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint", "launch.json"]
