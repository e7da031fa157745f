"""Apps in the shapes Flower itself publishes switch to EcoFed by the documented recipe.

``tests/apps/flower_*`` are our own apps written in the shapes of Flower's templates and
baselines: a Hugging Face data set normalised inside ``with_transform``, ``load_data`` with a
batch size, a run config read by both halves, ``FedAvg(fraction_evaluate=...)`` with a
``train_config`` and an ``evaluate_fn`` on the Message API, and a ``FedAvg`` subclass with
``on_fit_config_fn``, metric aggregation and ``initial_parameters`` on the legacy API.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from fixtures_test import flower_task_identity  # noqa: F401  (pytest fixtures)
from flwr.app import ArrayRecord, Context, RecordDict
from flwr.server import Server
from flwr.server.client_manager import SimpleClientManager
from flwr.server.compat.grid_client_proxy import GridClientProxy
from torch.utils.data import Dataset

from ecofed_flwr.baselines.loopback import LoopbackGrid, run_loopback
from ecofed_flwr.baselines.wire import OFFLINE_RUN_ID
from ecofed_flwr.clients import EcoFedNumPyClient, local_data_fn, local_data_from
from ecofed_flwr.data import prepare_images
from ecofed_flwr.models import create_split
from ecofed_flwr.strategies import EcoFedLegacyStrategy, EcoFedStrategy, make_evaluate_fn

APPS = Path(__file__).resolve().parent / "apps"
MAX_CHANGED_LINES = 10
NUM_NODES = 3
#: (stock file, EcoFed file) per side and API.
PAIRS = {
    "message-api server": ("flower_fedavg_server_test.py", "flower_ecofed_server_test.py"),
    "message-api client": ("flower_fedavg_client_test.py", "flower_ecofed_client_test.py"),
    "legacy server": ("flower_legacy_fedavg_server_test.py", "flower_legacy_ecofed_server_test.py"),
    "legacy client": ("flower_legacy_fedavg_client_test.py", "flower_legacy_ecofed_client_test.py"),
}


def changed_lines(stock: str, switched: str) -> int:
    old = (APPS / stock).read_text().splitlines()
    new = (APPS / switched).read_text().splitlines()
    diff = list(difflib.unified_diff(old, new, n=0, lineterm=""))
    return sum(1 for line in diff[2:] if line.startswith(("+", "-")))


@pytest.mark.parametrize("side", list(PAIRS))
def test_flower_shaped_apps_switch_in_at_most_10_changed_lines_per_side(side: str) -> None:
    assert 0 < changed_lines(*PAIRS[side]) <= MAX_CHANGED_LINES


def test_the_integration_page_shows_exactly_those_diffs() -> None:
    page = (APPS.parents[1] / "docs" / "flower-integration.md").read_text()
    section = page.split("## Apps in the shape of Flower's own templates", 1)[1]
    for side, (stock, switched) in PAIRS.items():
        label = "server_app.py" if "server" in side else "client_app.py"
        old = (APPS / stock).read_text().splitlines()
        new = (APPS / switched).read_text().splitlines()
        diff = difflib.unified_diff(
            old, new, f"{label} (FedAvg)", f"{label} (EcoFed)", n=1, lineterm=""
        )
        assert "```diff\n" + "\n".join(diff) + "\n```" in section, side


pytestmark = pytest.mark.usefixtures("flower_task_identity")


@pytest.fixture(scope="module")
def apps() -> Iterator[dict[str, ModuleType]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(APPS))
        names = [n.removesuffix(".py") for pair in PAIRS.values() for n in pair]
        yield {n: importlib.import_module(n) for n in [*names, "flower_task_test"]}


@pytest.fixture(scope="module")
def split() -> Any:
    return create_split("tiny_cnn", weights="random")


def _back_accuracy(split: Any, task: ModuleType, path: Path) -> float:
    evaluate = make_evaluate_fn(split, task.load_centralized_dataset(), device="cpu")
    return float(evaluate(0, ArrayRecord(torch.load(path)))["accuracy"])


def test_message_api_apps_in_flowers_shape_run_before_and_after_the_switch(
    apps: dict[str, ModuleType],
    split: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    task = apps["flower_task_test"]
    config = dict(task.RUN_CONFIG)
    stock = {**config, "num-server-rounds": 1}
    run_loopback(
        apps["flower_fedavg_server_test"].app, apps["flower_fedavg_client_test"].app, 3, stock
    )
    net = task.Net()
    net.load_state_dict(torch.load("final_model.pt"))
    assert task.test(net, task.load_centralized_dataset(), "cpu")[1] >= 0.5
    with caplog.at_level(logging.WARNING):
        run_loopback(
            apps["flower_ecofed_server_test"].app,
            apps["flower_ecofed_client_test"].app,
            NUM_NODES,
            config,
        )
    # The back the switched app saved classifies the app's own test set, read as stored.
    assert _back_accuracy(split, task, tmp_path / "final_model.pt") >= 0.5
    # What the app set and EcoFed does not use is said once, by name.
    text = caplog.text
    assert text.count("fraction_evaluate (") == 1 and "never on devices" in text
    assert "train_config ['lr']" in text and "devices do not train" in text


def _run_legacy(server_fn: Any, client_app: Any, run_config: dict[str, Any]) -> Any:
    """What ``ServerApp(server_fn=...)`` does, over in-process nodes (no Ray)."""
    grid = LoopbackGrid(client_app, NUM_NODES, run_config)
    components = server_fn(Context(OFFLINE_RUN_ID, 0, {}, RecordDict(), run_config))
    manager = SimpleClientManager()
    for node in grid.get_node_ids():
        manager.register(GridClientProxy(node, grid, OFFLINE_RUN_ID))
    server = Server(client_manager=manager, strategy=components.strategy)
    server.fit(components.config.num_rounds, timeout=None)
    return components.strategy


def test_legacy_apps_in_flowers_shape_switch_and_say_what_is_unused(
    apps: dict[str, ModuleType], caplog: pytest.LogCaptureFixture
) -> None:
    config = dict(apps["flower_task_test"].RUN_CONFIG)
    stock = _run_legacy(
        apps["flower_legacy_fedavg_server_test"].server_fn,
        apps["flower_legacy_fedavg_client_test"].app,
        {**config, "num-server-rounds": 1},
    )
    assert type(stock).__name__ == "CustomFedAvg"  # the stock pair runs as published
    with caplog.at_level(logging.WARNING):
        strategy = _run_legacy(
            apps["flower_legacy_ecofed_server_test"].server_fn,
            apps["flower_legacy_ecofed_client_test"].app,
            config,
        )
    assert isinstance(strategy, EcoFedLegacyStrategy)
    assert strategy.server.fraction_train == config["fraction-fit"]  # fraction_fit, renamed
    assert strategy.min_available_nodes == 2  # min_available_clients, renamed
    assert [r.round for r in strategy.reports] == [0, 1, 2]
    assert strategy.server.best_report.metrics["accuracy"] >= 0.5
    warning = next(r.getMessage() for r in caplog.records if "does not use" in r.getMessage())
    for name in (
        "on_fit_config_fn",
        "evaluate_metrics_aggregation_fn",
        "initial_parameters",
        "fraction_evaluate",
    ):
        assert name in warning, warning


def test_unknown_settings_name_the_class_and_the_closest_setting(split: Any) -> None:
    with pytest.raises(TypeError, match=r"EcoFedLegacyStrategy\.from_split.*'fraction_fit'\?"):
        EcoFedLegacyStrategy.from_split(split, fraction_fitt=0.5)
    with pytest.raises(TypeError, match=r"EcoFedStrategy\.from_split.*'batch_size'\?"):
        EcoFedStrategy.from_split(split, batchsize=64)
    with pytest.raises(TypeError, match="both 'fraction_fit' and 'fraction_train'"):
        EcoFedStrategy.from_split(split, fraction_fit=0.5, fraction_train=0.5)


@pytest.mark.parametrize(
    "settings",
    [
        {"trainer": "copies"},
        {"mode": "copies"},
        {"codec": "u2-ch+zstd", "refresh": "every:2", "replay": "paper"},
        {"learning_rate": 0.05, "batch_size": 10, "local_epochs": 2, "momentum": 0.5},
        {"lr_schedule": "constant", "validation_fraction": 0.2, "keep": "last"},
        {"fraction_train": 0.5, "min_train_nodes": 1, "min_available_nodes": 1, "seed": 3},
        {"max_samples_per_client": 100, "weight_decay": 1e-4, "device": "cpu"},
    ],
)
def test_every_documented_keyword_is_taken(split: Any, settings: dict[str, Any]) -> None:
    for cls in (EcoFedStrategy, EcoFedLegacyStrategy):
        strategy = cls.from_split(split, **settings)
        server = strategy.server
        if "trainer" in settings or "mode" in settings:
            assert server.trainer.config.mode == "copies"
        if "batch_size" in settings:
            assert server.trainer.config.batch_size == 10


# ------------------------------------------------------------------ the data


def test_a_hugging_face_data_set_is_read_as_stored_whatever_its_transform(
    apps: dict[str, ModuleType], split: Any
) -> None:
    task = apps["flower_task_test"]
    trainloader, _ = task.load_data(1, NUM_NODES, 32)
    data = local_data_from(trainloader, split)  # normalised to [-1, 1] by its transform
    rows = trainloader.dataset.with_format(None)
    raw = np.stack([np.asarray(row["image"]) for row in rows])
    assert raw.dtype == np.uint8 and data.images.shape == (len(raw), 3, 16, 16)
    expected = prepare_images(raw, split.input_size, split.in_chans, split.mean, split.std)
    assert torch.equal(data.images, expected)
    assert data.labels.tolist() == [row["label"] for row in rows]


def test_load_data_with_further_arguments(apps: dict[str, ModuleType], split: Any) -> None:
    task = apps["flower_task_test"]
    context = Context(OFFLINE_RUN_ID, 1, {"partition-id": 0, "num-partitions": 3}, RecordDict(), {})
    assert len(local_data_fn(task.load_data, split, 64)(context).labels) == 960
    with pytest.raises(TypeError, match=r"takes \(partition_id, num_partitions, batch_size\)"):
        local_data_fn(task.load_data, split)(context)


class _Scaled(Dataset):  # type: ignore[type-arg]
    """Float images scaled by hand (no torchvision Normalize to read)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = torch.from_numpy(self.images[index]).float()[None] / 255.0
        return (image - 0.25) / 0.5, int(self.labels[index])


def test_the_numpy_client_takes_the_apps_normalization(split: Any) -> None:
    images = np.random.default_rng(0).integers(0, 256, (12, 20, 20), dtype=np.uint8)
    labels = np.arange(12) % 10
    client = EcoFedNumPyClient(split, _Scaled(images, labels), normalization=((0.25,), (0.5,)))
    expected = prepare_images(images, split.input_size, split.in_chans, split.mean, split.std)
    torch.testing.assert_close(client.local_data().images, expected, atol=1e-5, rtol=0)
