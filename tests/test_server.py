"""The core EcoFedServer without Flower: determinism, hold-out, best-back selection, schedule,
and the saved classifier with ``ecofed evaluate``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ecofed_flwr.buffer import ReplayBuffer
from ecofed_flwr.classifier import load_classifier, save_classifier
from ecofed_flwr.cli import main
from ecofed_flwr.codec import EncodedBatch, make_codec
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.data import load_dataset
from ecofed_flwr.models import create_split
from ecofed_flwr.schedule import make_lr_schedule
from ecofed_flwr.server import EcoFedServer, RoundReport, UploadNotExpected, clients_per_round
from ecofed_flwr.trainer import TrainerConfig, evaluate_back

SHAPE = (8, 2, 2)
CLASSES = 4


def _data(client: int, n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(client)
    centers = np.random.default_rng(7).normal(size=(CLASSES, *SHAPE)).astype(np.float32)
    labels = rng.integers(0, CLASSES, size=n)
    return centers[labels] + 0.6 * rng.normal(size=(n, *SHAPE)).astype(np.float32), labels


def _back() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, CLASSES))


def _server(seed: int = 0, **kwargs: object) -> EcoFedServer:
    settings: dict[str, object] = {
        "codec": "u8",
        "refresh": "once",
        "replay": "all",
        "fraction_train": 0.5,
        "num_rounds": 4,
        "trainer": TrainerConfig(learning_rate=0.1, batch_size=16, device="cpu", seed=seed),
        "seed": seed,
    }
    settings.update(kwargs)
    return EcoFedServer(_back(), "fp", SHAPE, CLASSES, **settings)  # type: ignore[arg-type]


def _upload(codec_name: str = "u8"):  # type: ignore[no-untyped-def]
    codec = make_codec(codec_name)

    def upload(client: str) -> tuple[EncodedBatch, np.ndarray, float]:
        x, y = _data(int(client))
        return codec.encode(x), y, 0.0

    return upload


def _run(server: EcoFedServer, clients: list[str], rounds: int = 4) -> list[dict]:
    """Per-round reports without the timings (they vary from run to run)."""
    timings = RoundReport.TIMINGS
    return [
        {
            k: v
            for k, v in server.run_round(r, clients, _upload()).to_json().items()
            if k not in timings
        }
        for r in range(1, rounds + 1)
    ]


CLIENTS = [str(i) for i in range(8)]


def test_same_seed_same_rounds_and_client_order_does_not_matter() -> None:
    first = _run(_server(seed=3), CLIENTS)
    second = _run(_server(seed=3), list(reversed(CLIENTS)))
    assert first == second
    assert first[0]["sampled"] != _run(_server(seed=4), CLIENTS)[0]["sampled"]
    assert all(r["val_accuracy"] is not None for r in first)


def test_different_seed_gives_a_different_run() -> None:
    a, b = _run(_server(seed=0), CLIENTS), _run(_server(seed=1), CLIENTS)
    assert [r["sampled"] for r in a] != [r["sampled"] for r in b]
    assert [r["val_loss"] for r in a] != [r["val_loss"] for r in b]


def test_sampling_follows_the_fraction_and_sorted_names() -> None:
    server = _server()
    plan = server.begin_round(1, ["10", "2", "1", "3"])
    assert len(plan.sampled) == clients_per_round(4, 0.5, 2) == 2
    assert plan.sampled == sorted(plan.sampled, key=int)
    assert plan.uploaders == plan.sampled  # refresh once: nobody has an entry yet


def test_holdout_samples_never_reach_a_training_batch() -> None:
    server = _server(validation_fraction=0.2)
    plan = server.begin_round(1, CLIENTS)
    codec = make_codec("u8")
    for client in plan.uploaders:
        x, _ = _data(int(client))
        # Labels carry the row index, so a batch's labels say which rows were trained on.
        server.accept(client, codec.encode(x), np.arange(100) % CLASSES, 0.0)
    held = {c: set(server.buffer.get(c).holdout_rows.tolist()) for c in plan.uploaders}
    assert all(len(h) == 20 for h in held.values())
    buffer: ReplayBuffer = server.buffer
    seen = []
    original = buffer.decode

    def spy(client: str, index: np.ndarray | None = None) -> torch.Tensor:
        seen.append((client, None if index is None else index.tolist()))
        return original(client, index)

    buffer.decode = spy  # type: ignore[method-assign]
    server.train()
    trained_rows = [(c, set(rows)) for c, rows in seen if rows is not None]
    assert trained_rows
    assert all(not (rows & held[c]) for c, rows in trained_rows)
    assert sum(len(r) for _, r in trained_rows) == 80 * len(plan.uploaders)
    # The same client and sample count hold out the same rows again (no leak on refresh).
    assert np.array_equal(
        server._holdout_rows(plan.uploaders[0], 100), sorted(held[plan.uploaders[0]])
    )


def test_best_back_by_validation_and_keep_last(monkeypatch: pytest.MonkeyPatch) -> None:
    server = _server()
    vals = iter([0.5, 0.9, 0.7, 0.8])
    monkeypatch.setattr("ecofed_flwr.server.evaluate_back", lambda back, x, y: (1.0, next(vals)))
    states = []
    for r in range(1, 5):
        server.run_round(r, CLIENTS, _upload())
        states.append({k: v.clone() for k, v in server.trainer.back.state_dict().items()})
    assert server.best_round == 2 and server.best_val_accuracy == 0.9
    for k, v in server.result_state().items():
        assert torch.equal(v, states[1][k])
    assert not torch.equal(server.result_state()["1.weight"], states[3]["1.weight"])

    last = _server(keep="last")
    vals = iter([0.5, 0.9, 0.7, 0.8])
    for r in range(1, 5):
        last.run_round(r, CLIENTS, _upload())
    assert last.best_round == 4


def test_uploads_only_from_asked_clients_and_once() -> None:
    server = _server()
    plan = server.begin_round(1, CLIENTS)
    x, y = _data(0)
    batch = make_codec("u8").encode(x)
    outsider = next(c for c in CLIENTS if c not in plan.uploaders)
    with pytest.raises(UploadNotExpected, match="not asked"):
        server.accept(outsider, batch, y)
    server.accept(plan.uploaders[0], batch, y)
    with pytest.raises(UploadNotExpected, match="already replied"):
        server.accept(plan.uploaders[0], batch, y)
    assert server.buffer.clients() == [plan.uploaders[0]]


def test_cosine_schedule_with_warmup_over_rounds() -> None:
    cosine = make_lr_schedule("cosine")
    assert cosine.round_learning_rate(0.1, 1, 10, 0.0) == pytest.approx(0.1)
    assert cosine.round_learning_rate(0.1, 6, 10, 0.0) == pytest.approx(0.05)
    assert cosine.round_learning_rate(0.1, 10, 10, 1.0) == pytest.approx(0.0, abs=1e-12)
    rates = [cosine.round_learning_rate(0.1, r, 10, 0.5) for r in range(1, 11)]
    assert rates == sorted(rates, reverse=True)
    warm = make_lr_schedule("cosine:0.2")
    assert warm.name == "cosine:0.2"
    assert warm.round_learning_rate(0.1, 1, 10, 0.0) == 0.0
    assert warm.round_learning_rate(0.1, 2, 10, 0.0) == pytest.approx(
        0.05 * (1 + math.cos(math.pi * 0.1)) * 0.5
    )
    assert make_lr_schedule("constant").round_learning_rate(0.1, 7, 10, 0.3) == 0.1
    for bad in ("linear", "cosine:1.5", "cosine:x"):
        with pytest.raises(ValueError, match="lr-schedule"):
            make_lr_schedule(bad)


def test_trainer_follows_the_schedule_and_skips_non_finite_losses() -> None:
    server = _server(lr_schedule="cosine", num_rounds=2)
    server.run_round(1, CLIENTS, _upload())
    first = server.reports[-1].learning_rate
    server.run_round(2, CLIENTS, _upload())
    assert 0 < server.reports[-1].learning_rate < first < 0.1
    # Poison the back: every loss is NaN, so every step is skipped and nothing changes.
    with torch.no_grad():
        server.trainer.back[1].weight.fill_(float("nan"))
    stats = server.trainer.train_round(server.buffer, server.buffer.clients(), 3)
    assert stats.steps == 0 and stats.skipped_steps > 0


def test_run_without_validation_keeps_the_last_back() -> None:
    server = _server(validation_fraction=0.0)
    for r in range(1, 3):
        report = server.run_round(r, CLIENTS, _upload())
        assert report.val_accuracy is None
    assert server.best_round == 2


# ------------------------------------------------------------------ the saved classifier


def _scored_test_set():  # type: ignore[no-untyped-def]
    """The test samples a run with ``test-samples=300`` scores (as ``ecofed evaluate`` picks)."""
    test = load_dataset("synthetic", "test", seed=0)
    return test.subset(EcoFedConfig(dataset="synthetic", test_samples=300).test_indices(len(test)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, int]:
    """A tiny real split trained by the server on synthetic images, saved as model.pt."""
    split = create_split("tiny_cnn", "block1", "random", 10, 16)
    train = load_dataset("synthetic", "train", num_samples=600, seed=0)
    test = _scored_test_set()
    from ecofed_flwr.data import prepare_images
    from ecofed_flwr.models import run_front

    def prep(images: np.ndarray) -> torch.Tensor:
        return prepare_images(images, 16, split.in_chans, split.mean, split.std)

    acts = run_front(split.front, prep(train.images)).numpy()
    test_acts = run_front(split.front, prep(test.images))
    test_labels = torch.as_tensor(test.labels, dtype=torch.int64)
    codec = make_codec("u4")
    server = EcoFedServer(
        split.back,
        split.fingerprint,
        split.activation_shape,
        10,
        codec="u4",
        num_rounds=3,
        trainer=TrainerConfig(device="cpu", batch_size=32, learning_rate=0.05),
        evaluate_fn=lambda b: dict(
            zip(("loss", "accuracy"), evaluate_back(b, test_acts, test_labels), strict=True)
        ),
    )
    parts = np.array_split(np.arange(600), 3)

    def upload(client: str) -> tuple[EncodedBatch, np.ndarray, float]:
        idx = parts[int(client)]
        return codec.encode(acts[idx]), np.asarray(train.labels)[idx], 0.0

    for r in range(1, 4):
        server.run_round(r, ["0", "1", "2"], upload)
    best = server.best_report
    assert best is not None
    config = {"dataset": "synthetic", "test-samples": 300, "seed": 0, "model": "tiny_cnn"}
    path = save_classifier(
        tmp_path_factory.mktemp("run"), split, server.result_state(), "u4", config,
        {"round": best.round, "val_accuracy": best.val_accuracy},
    )  # fmt: skip
    return path, best.metrics["accuracy"], best.round


def test_model_file_round_trip_reproduces_the_reported_accuracy(trained) -> None:  # type: ignore[no-untyped-def]
    path, accuracy, best_round = trained
    model = load_classifier(path)
    assert not model.training and model.metadata["round"] == best_round
    test = _scored_test_set()
    predicted = model.predict(model.prepare(test.images))
    measured = int((predicted == torch.as_tensor(test.labels)).sum()) / len(test.labels)
    assert measured == pytest.approx(accuracy, abs=1e-9)
    assert measured > 0.3  # 10 classes: chance is 0.1


def test_model_file_refuses_edits_and_foreign_files(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, _, _ = trained
    doc = torch.load(path, weights_only=True)
    key = next(iter(doc["front"]))
    doc["front"][key] = doc["front"][key] + 1
    torch.save(doc, tmp_path / "edited.pt")
    with pytest.raises(ValueError, match="fingerprint"):
        load_classifier(tmp_path / "edited.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="format"):
        load_classifier(tmp_path / "other.pt")


def test_ecofed_evaluate_prints_the_accuracy(trained, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    path, accuracy, _ = trained
    assert main(["evaluate", str(path.parent), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == 300 and out["accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert main(["evaluate", str(path.parent / "missing")]) == 2
