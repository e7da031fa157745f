"""What a newcomer meets first: data set-up, offline defaults, own models through the
built-in app, run folders kept out of the app's package, waiting for the fleet, and one
line per distinct device error."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.clientapp import ClientApp

from ecofed_flwr.app.task import build_split, import_model_module
from ecofed_flwr.baselines.loopback import LoopbackGrid
from ecofed_flwr.baselines.wire import task_identity
from ecofed_flwr.clients import add_ecofed_handlers
from ecofed_flwr.config import ConfigError, EcoFedConfig
from ecofed_flwr.data import LocalData
from ecofed_flwr.launch import flower_env, keep_out_of_package
from ecofed_flwr.models import create_split, unregister_model
from ecofed_flwr.server import RoundReport
from ecofed_flwr.strategies import EcoFedStrategy
from ecofed_flwr.strategies.ecofed import refusal_summary

REPO = Path(__file__).resolve().parents[1]
STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _ensure_data(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "ensure-data.sh"), *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        timeout=60,
    )


def test_ensure_data_takes_a_folder_and_files_gzipped_or_not(tmp_path: Path) -> None:
    for i, stem in enumerate(STEMS):
        (tmp_path / (stem + (".gz" if i % 2 else ""))).write_bytes(b"")
    assert _ensure_data(str(tmp_path)).returncode == 0
    assert _ensure_data(env={"ECOFED_FASHION_MNIST_DIR": str(tmp_path)}).returncode == 0
    (tmp_path / STEMS[0]).unlink()
    missing = _ensure_data(str(tmp_path))
    assert missing.returncode == 1
    assert STEMS[0] in missing.stderr and "data-dir" in missing.stderr


def test_flower_processes_are_offline_unless_the_caller_says_otherwise(tmp_path: Path) -> None:
    assert flower_env(tmp_path, {})["HF_HUB_OFFLINE"] == "1"
    online = flower_env(tmp_path, {"HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0"})
    assert online["HF_HUB_OFFLINE"] == online["HF_DATASETS_OFFLINE"] == "0"


def test_run_outputs_inside_the_app_stay_out_of_its_package(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / ".gitignore").write_text("outputs/\n")
    assert not keep_out_of_package(app, app / "outputs")  # already ignored
    assert not keep_out_of_package(app, tmp_path / "elsewhere")  # never packaged
    assert keep_out_of_package(app, app / "runs" / "mine")
    assert "/runs/mine/" in (app / ".gitignore").read_text().splitlines()
    assert not keep_out_of_package(app, app / "runs" / "mine")  # once is enough


MODEL_FILE = """
from torch import nn
from ecofed_flwr.models import register_sequential

register_sequential(
    "front_door_net",
    [
        ("stem", nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())),
        ("head", nn.Sequential(nn.Flatten(), nn.Linear(4 * 16 * 16, 10))),
    ],
    input_size=16,
)
"""


def test_a_model_module_registers_the_users_model_for_the_built_in_app(
    tmp_path: Path,
) -> None:
    path = tmp_path / "my_models.py"
    path.write_text(MODEL_FILE)
    cfg = EcoFedConfig.from_mapping(
        {
            "model": "front_door_net",
            "model-module": str(path),
            "cut": "stem",
            "weights": "random",
            "input-size": 16,
            "dataset": "synthetic",
        }
    )
    try:
        split = build_split(cfg)
        assert split.model_name == "front_door_net" and split.activation_shape == (4, 16, 16)
        import_model_module(str(path))  # a second import registers nothing twice
    finally:
        unregister_model("front_door_net")
    with pytest.raises(ConfigError, match="model-module 'no_such_module_here'"):
        import_model_module("no_such_module_here")


def test_the_server_waits_for_the_fleet_then_says_how_many_came(
    caplog: pytest.LogCaptureFixture,
) -> None:
    split = create_split("tiny_cnn", weights="random")
    app = ClientApp()
    data = LocalData(torch.zeros(4, 3, 16, 16), np.zeros(4, np.int64), 10)
    add_ecofed_handlers(app, lambda context: split, lambda context: data)
    strategy = EcoFedStrategy.from_split(split, min_available_nodes=3)
    strategy.timeout = 1.5
    with task_identity(), caplog.at_level(logging.INFO):
        strategy._discover(LoopbackGrid(app, 2), 1)
    assert "waiting for 3 nodes, 2 connected" in caplog.text
    assert "only 2 of the 3 nodes to wait for connected" in caplog.text


def test_device_errors_are_summed_up_one_line_per_distinct_reason() -> None:
    trace = "Traceback (most recent call last):\n  File 'x'\nRuntimeError: disk full"
    reports = [RoundReport(round=r, refused={f"c{i}": trace for i in range(4)}) for r in (1, 2)]
    reports[1].refused["c9"] = "labels: out of range"
    text = refusal_summary(reports, ["front fingerprint differs"])
    assert text.count("RuntimeError: disk full") == 1 and "8x RuntimeError: disk full" in text
    assert "1x labels: out of range" in text and "excluded: front fingerprint" in text
    assert "Traceback" not in text and len(text) < 400
