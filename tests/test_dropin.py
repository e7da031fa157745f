"""EcoFed in existing Flower apps: the legacy pair, the drop-in helpers and the switched apps.

``tests/apps`` holds two stock-like Flower apps of our own (Message API with ``FedAvg.start``;
legacy ``client_fn``/``server_fn`` with a NumPyClient and ``FedAvg``) and their EcoFed copies.
Changed lines are counted as a unified diff counts them: every ``+`` and ``-`` line, blank
lines included, headers excluded.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from fixtures_test import flower_task_identity  # noqa: F401  (pytest fixtures)
from flwr.app import ArrayRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common import ndarrays_to_parameters
from flwr.server import Server, SimpleClientManager
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.simulation import run_simulation
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision import transforms

from ecofed_flwr.baselines.loopback import LoopbackGrid, run_loopback
from ecofed_flwr.baselines.wire import OFFLINE_RUN_ID
from ecofed_flwr.clients import EcoFedNumPyClient, local_data_from
from ecofed_flwr.codec import make_codec
from ecofed_flwr.data import DataError, make_synthetic, prepare_images
from ecofed_flwr.meter import wire_nbytes
from ecofed_flwr.models import create_split, register_sequential, run_front, unregister_model
from ecofed_flwr.protocol import UploadRefused, UploadSpec, decode_upload
from ecofed_flwr.protocol.legacy import LAYOUT_KEY, content_from_fit_result
from ecofed_flwr.strategies import EcoFedStrategy, NoUploadError, make_evaluate_fn
from ecofed_flwr.trainer import evaluate_back

REPO = Path(__file__).resolve().parents[1]
APPS = REPO / "tests" / "apps"
MAX_CHANGED_LINES = 10
#: (stock file, EcoFed file, README label) per side and API.
SWITCHES = {
    "message-api server": ("fedavg_server_test.py", "ecofed_server_test.py", "server_app.py"),
    "message-api client": ("fedavg_client_test.py", "ecofed_client_test.py", "client_app.py"),
    "legacy server": (
        "legacy_fedavg_server_test.py",
        "legacy_ecofed_server_test.py",
        "server_app.py",
    ),
    "legacy client": (
        "legacy_fedavg_client_test.py",
        "legacy_ecofed_client_test.py",
        "client_app.py",
    ),
}
NUM_NODES = 3
BACKEND = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}, "init_args": {"num_cpus": 2}}


def switch_diff(stock: str, switched: str, label: str) -> list[str]:
    """The unified diff (one line of context) from a stock app file to its EcoFed copy."""
    old = (APPS / stock).read_text().splitlines()
    new = (APPS / switched).read_text().splitlines()
    return list(
        difflib.unified_diff(old, new, f"{label} (FedAvg)", f"{label} (EcoFed)", n=1, lineterm="")
    )


def changed_lines(diff: list[str]) -> int:
    return sum(1 for line in diff[2:] if line.startswith(("+", "-")))


pytestmark = pytest.mark.usefixtures("flower_task_identity")


@pytest.fixture(scope="module")
def apps() -> Iterator[dict[str, ModuleType]]:
    """The app modules, imported from tests/apps as their own top-level modules."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(APPS))
        names = [name.removesuffix(".py") for files in SWITCHES.values() for name in files[:2]]
        yield {name: importlib.import_module(name) for name in [*names, "task_test"]}


@pytest.fixture(scope="module")
def split():  # type: ignore[no-untyped-def]
    return create_split("tiny_cnn", weights="random")


# ------------------------------------------------------------------ the switch itself


@pytest.mark.parametrize("side", list(SWITCHES))
def test_a_stock_app_switches_in_at_most_10_changed_lines_per_side(side: str) -> None:
    diff = switch_diff(*SWITCHES[side])
    assert 0 < changed_lines(diff) <= MAX_CHANGED_LINES, "\n".join(diff)


def test_readme_shows_exactly_those_diffs() -> None:
    readme = (REPO / "docs" / "flower-integration.md").read_text()
    section = readme.split("## Using EcoFed in an existing Flower app", 1)[1].split("\n## ", 1)[0]
    for side, files in SWITCHES.items():
        diff = "\n".join(switch_diff(*files))
        assert f"```diff\n{diff}\n```" in section, f"the page lacks the {side} diff:\n{diff}"


def test_the_stock_apps_work_and_the_apps_model_weights_are_refused_clearly(
    apps: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, split: Any
) -> None:
    # The stock apps are real FedAvg apps: one round trains their Net far above chance.
    monkeypatch.chdir(tmp_path)
    for name in ("fedavg_server_test", "legacy_fedavg_server_test"):
        monkeypatch.setattr(apps[name], "NUM_ROUNDS", 1)
    run_loopback(apps["fedavg_server_test"].app, apps["fedavg_client_test"].app, NUM_NODES)
    task = apps["task_test"]
    net = task.Net()
    net.load_state_dict(torch.load("final_model.pt"))
    assert task.evaluate_model(net, task.load_test_data())[1] >= 0.5
    grid, _ = _run_legacy(
        apps["legacy_fedavg_server_test"].server_fn, apps["legacy_fedavg_client_test"].app
    )
    (_, loss), *_ = grid.history.losses_distributed  # type: ignore[attr-defined]
    assert loss < 0.8 * np.log(10)  # chance: ln 10 (its Net starts from a random client's)
    # Passing the app's own weights to EcoFed says what is expected, before any round.
    strategy = EcoFedStrategy.from_split(split)
    with pytest.raises(ValueError, match="state dict of the split's back"):
        strategy.start(grid, initial_arrays=ArrayRecord(task.Net().state_dict()))


# ------------------------------------------------------------------ the app's own data


class _Images(Dataset):  # type: ignore[type-arg]
    """uint8 (N, H, W[, C]) images behind a transform, as an app's Dataset."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Any = None) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Any:
        image = self.images[index]
        return (self.transform(image) if self.transform else image), int(self.labels[index])


@pytest.fixture(scope="module")
def grey() -> Any:
    return make_synthetic(40, image_size=20, seed=3)  # uint8 (40, 20, 20), 10 classes


def _expected(split: Any, images: np.ndarray) -> torch.Tensor:
    return prepare_images(images, split.input_size, split.in_chans, split.mean, split.std)


@pytest.mark.parametrize(
    ("transform", "pil"),
    [
        (transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]), False),
        (
            transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.286,), (0.353,))]),
            True,
        ),
        (transforms.ToTensor(), False),
        (transforms.PILToTensor(), True),
        (None, True),
        (None, False),
    ],
    ids=["normalize-0.5", "normalize-fmnist", "to-tensor", "uint8-tensor", "pil", "uint8-array"],
)
def test_local_data_from_reproduces_the_fronts_preparation_exactly(
    split: Any, grey: Any, transform: Any, pil: bool
) -> None:
    images = [Image.fromarray(i) for i in grey.images] if pil else grey.images
    dataset = _Images(images, grey.labels, transform)  # type: ignore[arg-type]
    loader = DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True)
    data = local_data_from(loader, split)
    # Grey 20x20 becomes the front's RGB 16x16, in the data set's own order, every sample.
    assert data.images.shape == (40, 3, 16, 16)
    assert torch.equal(data.images, _expected(split, grey.images))
    assert np.array_equal(data.labels, grey.labels)


def test_local_data_from_reads_rgb_dict_samples_with_a_given_normalization(split: Any) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (6, 24, 24, 3), dtype=np.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    samples = [{"img": to_tensor(image), "label": k % 10} for k, image in enumerate(rgb)]
    data = local_data_from(samples, split, normalization=(mean, std))  # type: ignore[arg-type]
    assert torch.equal(data.images, _expected(split, rgb))
    assert data.labels.tolist() == [0, 1, 2, 3, 4, 5]


def test_local_data_from_refuses_normalised_floats_it_cannot_undo(split: Any, grey: Any) -> None:
    tensors = torch.from_numpy(grey.images[:, None].astype(np.float32) / 127.5 - 1.0)
    with pytest.raises(DataError, match=r"lie in \[-1, 1\].*normalization=\(mean, std\)"):
        local_data_from(TensorDataset(tensors, torch.from_numpy(grey.labels)), split)
    with pytest.raises(DataError, match="no label under"):
        local_data_from([{"img": tensors[0], "target": 1}], split)  # type: ignore[arg-type]


def test_make_evaluate_fn_evaluates_front_and_back_in_eval_mode(grey: Any) -> None:
    stages = nn.Sequential()
    stages.add_module("stem", nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()))
    stages.add_module("body", nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8)))
    stages.add_module(
        "head", nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 16 * 16, 10))
    )
    register_sequential("dropin_bn", stages, input_size=16)
    try:
        split = create_split("dropin_bn", cut="stem", weights="random")
        back = split.back
        with torch.no_grad():  # running statistics that batch statistics would not reproduce
            back[0][1].running_mean.fill_(0.3)
            back[0][1].running_var.fill_(2.0)
        state = ArrayRecord({k: v.detach().clone() for k, v in back.state_dict().items()})
        back.train()
        loader = DataLoader(_Images(grey.images, grey.labels, transforms.ToTensor()), batch_size=7)
        evaluate = make_evaluate_fn(split, loader, device="cpu")
        metrics = evaluate(3, state)
        assert back.training  # the strategy's back is left alone
        reference = nn.Sequential(split.front.layers, back).eval()
        logits = reference(_expected(split, grey.images))
        labels = torch.from_numpy(grey.labels)
        assert metrics["accuracy"] == pytest.approx(
            float((logits.argmax(1) == labels).float().mean())
        )
        assert metrics["loss"] == pytest.approx(
            float(nn.functional.cross_entropy(logits, labels)), rel=1e-5
        )
    finally:
        unregister_model("dropin_bn")


# ------------------------------------------------------------------ the legacy pair


def _fit_result(
    split: Any, grey: Any, codec: str = "u4"
) -> tuple[list[bytes], int, dict[str, Any]]:
    client = EcoFedNumPyClient(split, _Images(grey.images, grey.labels), partition_id=4)
    config = {"codec": codec, "ecofed-fingerprint": split.fingerprint, "server-round": 1}
    arrays, num_examples, metrics = client.fit([], config)
    return ndarrays_to_parameters(arrays).tensors, num_examples, metrics


def _spec(split: Any, codec: str = "u4") -> UploadSpec:
    return UploadSpec(make_codec(codec), split.fingerprint, split.activation_shape, 10, 1000)


@pytest.mark.parametrize("codec", ["paper", "u4", "u2-ch+zstd"])
def test_a_numpy_clients_fit_result_passes_decode_upload(split: Any, grey: Any, codec: str) -> None:
    tensors, num_examples, metrics = _fit_result(split, grey, codec)
    assert all(isinstance(v, bool | bytes | float | int | str) for v in metrics.values())
    upload = decode_upload(
        content_from_fit_result(tensors, num_examples, metrics), _spec(split, codec)
    )
    assert upload.num_samples == num_examples == 40
    assert np.array_equal(upload.labels, grey.labels)
    expected = make_codec(codec).encode(run_front(split.front, _expected(split, grey.images)))
    assert np.array_equal(
        make_codec(codec).decode(upload.batch), make_codec(codec).decode(expected)
    )


def _tampered(
    tensors: list[bytes], metrics: dict[str, Any], how: str
) -> tuple[list[bytes], dict[str, Any]]:
    tensors, metrics = list(tensors), dict(metrics)
    layout = metrics[LAYOUT_KEY]
    if how == "array-missing":
        tensors = tensors[:-1]
    elif how == "unknown-key":
        metrics["accuracy"] = 0.9
    elif how == "bad-layout":
        metrics[LAYOUT_KEY] = layout.replace("activations/", "meta/", 1)
    elif how == "declared-shape":
        metrics[LAYOUT_KEY] = layout.replace(":40", ":39", 1)
    elif how == "pickled-array":
        header = b"{'descr': '|O', 'fortran_order': False, 'shape': (40,), }"
        tensors[-1] = (
            b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\x80\x04N."
        )
    elif how == "other-front":
        metrics["meta.ecofed-fingerprint"] = "0" * 64
    elif how == "labels-range":
        tensors[-1] = ndarrays_to_parameters([np.full(40, 12, np.uint8)]).tensors[0]
    return tensors, metrics


@pytest.mark.parametrize(
    ("how", "category"),
    [
        ("array-missing", "structure"),
        ("unknown-key", "structure"),
        ("bad-layout", "structure"),
        ("declared-shape", "bad-array"),
        ("pickled-array", "bad-array"),
        ("other-front", "fingerprint"),
        ("labels-range", "labels"),
    ],
)
def test_tampered_fit_results_are_refused_with_a_reason(
    split: Any, grey: Any, how: str, category: str
) -> None:
    tensors, num_examples, metrics = _fit_result(split, grey)
    tensors, metrics = _tampered(tensors, metrics, how)
    with pytest.raises(UploadRefused) as refused:
        decode_upload(content_from_fit_result(tensors, num_examples, metrics), _spec(split))
    assert refused.value.category == category, str(refused.value)


def test_numpy_client_evaluates_the_servers_back_locally(split: Any, grey: Any) -> None:
    client = EcoFedNumPyClient(split, _Images(grey.images, grey.labels))
    back = [v.numpy() for v in split.back.state_dict().values()]
    loss, num_examples, metrics = client.evaluate(back, {})
    acts = run_front(split.front, _expected(split, grey.images))
    assert (loss, metrics["accuracy"]) == pytest.approx(
        evaluate_back(split.back, acts, torch.from_numpy(grey.labels))
    )
    assert num_examples == 40
    with pytest.raises(ValueError, match="state dict"):
        client.evaluate(back[:-1], {})


class _MeasuringGrid(LoopbackGrid):
    """In-process nodes that also measure every message and reply as Flower serializes them."""

    def __init__(self, client_app: Any, num_nodes: int) -> None:
        super().__init__(client_app, num_nodes)
        self.sent: list[tuple[str, int, int]] = []  # (message type, request bytes, reply bytes)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        messages = list(messages)
        replies = list(super().send_and_receive(messages, timeout=timeout))
        for message, reply in zip(messages, replies, strict=True):
            self.sent.append(
                (message.metadata.message_type, wire_nbytes(message), wire_nbytes(reply))
            )
        return replies


def _run_legacy(server_fn: Any, client_app: Any) -> tuple[_MeasuringGrid, Any]:
    """What ``ServerApp(server_fn=...)`` does, over in-process nodes (no Ray)."""
    grid = _MeasuringGrid(client_app, NUM_NODES)
    context = Context(OFFLINE_RUN_ID, 0, {}, RecordDict(), {})
    components = server_fn(context)
    manager = SimpleClientManager()
    for node in grid.get_node_ids():
        manager.register(GridClientProxy(node, grid, OFFLINE_RUN_ID))
    server = Server(client_manager=manager, strategy=components.strategy)
    history, _ = server.fit(components.config.num_rounds, timeout=None)
    grid.history = history  # type: ignore[attr-defined]
    return grid, components.strategy


def test_legacy_pair_in_process_with_exact_byte_accounting(apps: dict[str, ModuleType]) -> None:
    grid, strategy = _run_legacy(
        apps["legacy_ecofed_server_test"].server_fn, apps["legacy_ecofed_client_test"].app
    )
    reports = strategy.reports
    assert [r.round for r in reports] == [0, 1, 2, 3]
    first, replays = reports[1], reports[2:]
    assert first.refresh and sorted(first.uploaded) == ["0", "1", "2"]  # by partition id
    assert all(not r.refresh and r.bytes_up == r.bytes_down == 0 for r in replays)
    assert all(r.train_samples == first.train_samples > 0 for r in replays)
    best = strategy.server.best_report
    assert best.metrics["accuracy"] >= 0.5  # 10 classes: chance is 0.1
    # The ledger holds exactly what Flower serialized: handshake and fits, both ways.
    types = sorted({t for t, _, _ in grid.sent})
    assert types == ["get_properties", "train"]
    assert strategy.ledger.total("down") == sum(down for _, down, _ in grid.sent)
    assert strategy.ledger.total("up") == sum(up for _, _, up in grid.sent)
    assert 0 < strategy.ledger.total("up", "labels") < strategy.ledger.total("up", "activations")


class _Stop(Exception):
    pass


def test_legacy_strategy_checkpoints_and_resumes_like_the_message_api(
    apps: dict[str, ModuleType],
) -> None:
    server_fn, client_app = (
        apps["legacy_ecofed_server_test"].server_fn,
        apps["legacy_ecofed_client_test"].app,
    )
    _, reference = _run_legacy(server_fn, client_app)
    saved: dict[str, Any] = {}

    def stopping_server_fn(context: Context) -> Any:
        components = server_fn(context)
        strategy = components.strategy

        def on_round(report: Any) -> None:  # what the App's checkpointer sees
            if report.round == 1:
                saved.update(server=strategy.server.state(), nodes=strategy.state_dict())
                raise _Stop

        strategy.on_round = on_round
        return components

    with pytest.raises(_Stop):
        _run_legacy(stopping_server_fn, client_app)

    def resuming_server_fn(context: Context) -> Any:
        components = server_fn(context)
        components.strategy.server.load_state(saved["server"])
        components.strategy.load_state_dict(saved["nodes"])
        return components

    _, resumed = _run_legacy(resuming_server_fn, client_app)
    fields = ("round", "val_accuracy", "train_loss", "train_samples", "bytes_up", "best_round")
    assert [[getattr(r, f) for f in fields] for r in resumed.reports] == [
        [getattr(r, f) for f in fields] for r in reference.reports
    ]
    assert resumed.reports[2].metrics == reference.reports[2].metrics
    assert resumed.ledger.total("up") == reference.ledger.total("up")


def test_legacy_strategy_excludes_another_front_and_fails_without_uploads(
    apps: dict[str, ModuleType],
) -> None:
    other = create_split("tiny_cnn", weights="random", seed=5)  # same model, other weights
    task = apps["task_test"]

    def client_fn(context: Context) -> Any:
        trainloader, _ = task.load_data(context.node_config["partition-id"], NUM_NODES)
        return EcoFedNumPyClient(
            other, trainloader, context.node_config["partition-id"]
        ).to_client()

    with pytest.raises(NoUploadError, match="weights differ"):
        _run_legacy(apps["legacy_ecofed_server_test"].server_fn, ClientApp(client_fn=client_fn))


# ------------------------------------------------------------------ both switched apps, simulated


def _recording(cls: type, created: list[Any]) -> type:
    class Recording(cls):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    return Recording


@pytest.fixture
def simulation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    # Ray's workers import the ClientApp's module by name: give them tests/apps.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(APPS), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.chdir(tmp_path)  # the apps write final_model.pt to the working folder
    yield


@pytest.mark.usefixtures("simulation")
@pytest.mark.parametrize("api", ["message", "legacy"])
def test_switched_app_learns_in_simulation(
    api: str, apps: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch, split: Any
) -> None:
    prefix = "" if api == "message" else "legacy_"
    server, client = apps[f"{prefix}ecofed_server_test"], apps[f"{prefix}ecofed_client_test"]
    name = "EcoFedStrategy" if api == "message" else "EcoFedLegacyStrategy"
    created: list[Any] = []
    monkeypatch.setattr(server, name, _recording(getattr(server, name), created))
    run_simulation(server.app, client.app, num_supernodes=NUM_NODES, backend_config=BACKEND)  # type: ignore[arg-type]
    (strategy,) = created
    reports = strategy.reports
    assert sorted(reports[1].uploaded) == ["0", "1", "2"] and not reports[2].refresh
    kept = strategy.server.best_report
    assert kept.metrics["accuracy"] >= 0.5  # the app's own test set, 10 classes
    if api == "message":  # the app saved the kept back: front + back reach the same accuracy
        state = torch.load(Path("final_model.pt"))
        evaluate = make_evaluate_fn(split, apps["task_test"].load_test_data(), device="cpu")
        assert evaluate(0, ArrayRecord(state))["accuracy"] == kept.metrics["accuracy"]
