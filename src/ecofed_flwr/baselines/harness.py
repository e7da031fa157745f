"""Run any protocol by name on one setting, with the same accounting for all.

``run_protocol("fl" | "dpfl" | "lgl" | "ecofed-paper" | "ecofed-best" | "ecofed", setting)``
trains on the same model, data, partition and seed, and returns (and writes) one results
document per protocol (see :func:`ecofed_flwr.baselines.report.summarize`):

- ``fl`` and the EcoFed protocols run through Flower's simulation engine (in-process
  ``run_simulation``); their bytes are those of every message sent and received, recorded
  by a :class:`~ecofed_flwr.baselines.wire.MeteredGrid`.
- ``dpfl`` and ``lgl`` run in this process; each of their transfers is built as a Flower
  message from the real tensors and measured the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from logging import INFO
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.simulation import run_simulation
from flwr.supercore import log

from ecofed_flwr.app.client_app import make_client_app
from ecofed_flwr.app.server_app import run_federation
from ecofed_flwr.app.task import build_split, client_data, test_set
from ecofed_flwr.baselines.fl import make_fl_client_app, make_fl_server_app
from ecofed_flwr.baselines.loopback import run_loopback
from ecofed_flwr.baselines.protocols import (
    SPLIT_PROTOCOLS,
    clients_per_round,
    is_ecofed,
    protocol_config,
)
from ecofed_flwr.baselines.report import DEVICE_SECONDS_KEYS, RoundLog, TimeModel, summarize
from ecofed_flwr.baselines.training import LocalTraining, initial_split
from ecofed_flwr.baselines.wire import MeteredGrid
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.ledger import Ledger
from ecofed_flwr.models import SplitModel
from ecofed_flwr.results import write_json

RESULTS_NAME = "protocol.json"
ENGINES = ("simulation", "loopback")


@dataclass(frozen=True)
class Setting:
    """What every protocol of a comparison shares.

    Parameters
    ----------
    config : EcoFedConfig
        Model, cut, weights, data, partitioning, rounds, sampling and the optimiser of the
        baselines (the EcoFed presets override their own optimiser, see
        :data:`~ecofed_flwr.baselines.protocols.PRESETS`). ``output-dir`` is where each
        protocol's folder goes (default: ``outputs/harness-<time>``).
    num_clients : int (default: 10)
        Simulated devices; each holds one partition.
    time_model : TimeModel (default: TimeModel())
        Bandwidth and device-speed assumptions of the estimated times.
    target_accuracy : float, optional
        Accuracy whose first attainment is reported (round, bytes, estimated time).
    device_threads : int (default: 1)
        Threads for device compute in ``dpfl``/``lgl`` and the FL client.
    server_threads : int, optional
        Threads for the server compute of ``dpfl``/``lgl`` (default: torch's setting). On a
        machine shared with other jobs, 1 avoids threads spinning on busy cores.
    simulation_cpus : int (default: 2)
        CPUs given to Flower's simulation engine (one per simulated client at a time).
    client_num_gpus : float (default: 0.0)
        GPU share of each simulated client.
    engine : str (default: "simulation")
        How ``fl`` and EcoFed run: ``"simulation"`` (Flower's simulation engine,
        in-process ``run_simulation`` with Ray) or ``"loopback"`` (the same apps, messages
        handed to the ClientApp in this process: no Ray; same bytes).
    """

    config: EcoFedConfig = field(default_factory=EcoFedConfig)
    num_clients: int = 10
    time_model: TimeModel = field(default_factory=TimeModel)
    target_accuracy: float | None = None
    device_threads: int = 1
    server_threads: int | None = None
    simulation_cpus: int = 2
    client_num_gpus: float = 0.0
    engine: str = "simulation"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.num_clients < 1 or self.device_threads < 1 or self.simulation_cpus < 1:
            raise ValueError(
                "num_clients, device_threads and simulation_cpus must be >= 1, got "
                f"{self.num_clients}, {self.device_threads}, {self.simulation_cpus}"
            )


def host_gemm_gflops(size: int = 512, repeats: int = 10) -> float:
    """This machine's fp32 matrix-multiply speed on one thread, in GFLOP/s (for context)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(saved)
    return 2 * size**3 * repeats / seconds / 1e9


def run_protocol(
    name: str,
    setting: Setting,
    overrides: Mapping[str, Any] | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """Run protocol ``name`` on ``setting``; write and return its results document.

    Parameters
    ----------
    name : str
        ``fl``, ``dpfl``, ``lgl``, ``ecofed-paper``, ``ecofed-best`` or ``ecofed`` (the
        setting's own EcoFed settings).
    setting : Setting
        What the protocols of a comparison share.
    overrides : Mapping[str, Any], optional
        Run-config settings to change for this protocol only, after its preset (e.g.
        ``{"codec": "u2"}`` for a codec sweep).
    label : str, optional
        Name of this run's folder and of the run in the document (default: ``name``); give
        each run of a sweep its own, e.g. ``"ecofed-best-u2"``.

    Returns
    -------
    dict
        The results document (also written to ``<output-dir>/<label>/protocol.json``).
    """
    base = setting.config
    label = label or name
    out = Path(base.output_dir) if base.output_dir else _default_output()
    folder = (out / label).resolve()
    cfg = protocol_config(name, base, {**(overrides or {}), "output-dir": str(folder)})
    ledger = Ledger()
    started = time.perf_counter()
    log(INFO, "Harness: %s on %s cut %s, %d clients", name, cfg.model, cfg.cut, setting.num_clients)
    if name == "fl":
        logs = _run_fl(cfg, setting, ledger)
    elif name in SPLIT_PROTOCOLS:
        logs = _run_split(name, cfg, setting, ledger)
    elif is_ecofed(name):
        logs = _run_ecofed(cfg, setting, ledger)
    else:  # protocol_config has already refused unknown names
        raise AssertionError(name)
    if len(logs) != cfg.num_server_rounds:
        raise RuntimeError(
            f"{name}: {len(logs)} of {cfg.num_server_rounds} rounds completed; see the log"
        )
    doc = summarize(
        name,
        cfg.to_dict(),
        logs,
        ledger,
        setting.time_model,
        clients_per_round(setting.num_clients, cfg.fraction_train, cfg.min_train_nodes),
        setting.target_accuracy,
        extra={
            "label": label,
            "overrides": dict(overrides or {}),
            "num_clients": setting.num_clients,
            "device_threads": setting.device_threads,
            "host_gemm_gflops": host_gemm_gflops(),
            "harness_seconds": time.perf_counter() - started,
        },
    )
    write_json(folder / RESULTS_NAME, doc)
    log(
        INFO,
        "Harness: %s final accuracy %s, %s bytes, estimated %.0f s",
        name,
        doc["final_accuracy"],
        f"{doc['totals']['bytes']:,}",
        doc["totals"]["estimated_seconds"],
    )
    return doc


def run_protocols(
    names: Sequence[str], setting: Setting, overrides: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """:func:`run_protocol` for each of ``names`` on one setting (one output folder)."""
    if not setting.config.output_dir:
        config = replace(setting.config, output_dir=str(_default_output()))
        setting = replace(setting, config=config)
    return {name: run_protocol(name, setting, overrides) for name in names}


def results_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """A markdown table comparing results documents (keyed by protocol or run name)."""
    lines = [
        "| run | final acc. | best acc. | rounds to target | MB up | MB down | "
        "MB per client-round | device s | server s | est. time (s) | est. time to target (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.2f}%"

    def num(v: float | None, fmt: str = ".1f") -> str:
        return "-" if v is None else format(v, fmt)

    for run, doc in results.items():
        t = doc["totals"]
        lines.append(
            f"| {run} | {pct(doc['final_accuracy'])} | {pct(doc['best_accuracy'])} | "
            f"{num(doc['rounds_to_target'], 'd')} | {t['bytes_up'] / 1e6:.2f} | "
            f"{t['bytes_down'] / 1e6:.2f} | {t['mean_bytes_per_client_round'] / 1e6:.3f} | "
            f"{t['device_seconds']:.1f} | {t['server_seconds']:.1f} | "
            f"{t['estimated_seconds']:.0f} | {num(doc['estimated_seconds_to_target'], '.0f')} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------- runners


def _default_output() -> Path:
    return Path.cwd() / "outputs" / datetime.now().strftime("harness-%Y%m%d-%H%M%S")


def _simulate(server_app: ServerApp, client_app: ClientApp, setting: Setting) -> None:
    if setting.engine == "loopback":
        run_loopback(server_app, client_app, setting.num_clients)
        return
    backend: dict[str, Any] = {
        "client_resources": {"num_cpus": 1, "num_gpus": setting.client_num_gpus},
        "init_args": {"num_cpus": setting.simulation_cpus},
    }
    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=setting.num_clients,
        backend_config=backend,
    )


def _run_fl(cfg: EcoFedConfig, setting: Setting, ledger: Ledger) -> list[RoundLog]:
    logs: list[RoundLog] = []
    server_app = make_fl_server_app(cfg, ledger, logs.append, setting.num_clients)
    _simulate(server_app, make_fl_client_app(cfg, setting.device_threads), setting)
    return logs


def _run_ecofed(cfg: EcoFedConfig, setting: Setting, ledger: Ledger) -> list[RoundLog]:
    runs: list[tuple[MeteredGrid, dict[str, Any]]] = []
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        metered = MeteredGrid(grid, ledger)
        runs.append((metered, run_federation(metered, cfg, num_nodes_hint=setting.num_clients)))

    with _restoring_back(build_split(cfg)):
        _simulate(server_app, make_client_app(cfg), setting)
    if not runs:
        return []
    metered, doc = runs[0]
    logs = []
    for entry in doc["rounds"]:
        replies = metered.reply_metrics.get(entry["round"], {})
        logs.append(
            RoundLog(
                round=entry["round"],
                accuracy=entry.get("accuracy"),
                loss=entry.get("loss"),
                device_seconds={
                    node: sum(m.get(k, 0.0) for k in DEVICE_SECONDS_KEYS)
                    for node, m in replies.items()
                },
                server_seconds=entry["server_train_seconds"],
                wall_seconds=entry["seconds"],
                extra={
                    "refresh": entry["refresh"],
                    "samples_uploaded": entry["samples_uploaded"],
                    "train_samples": entry["train_samples"],
                    "buffer_bytes": entry["buffer_bytes"],
                    "strategy_bytes_up": entry["bytes_up"],
                    "strategy_bytes_down": entry["bytes_down"],
                },
            )
        )
    return logs


@contextmanager
def _restoring_back(split: SplitModel) -> Iterator[None]:
    """Give ``split``'s back its weights again after the block, on the CPU.

    The EcoFed ServerApp trains (and may move to the GPU) the back of the process's cached
    split model in place; restoring it lets every run in this process start from the same
    initial weights.
    """
    initial = {k: v.detach().cpu().clone() for k, v in split.back.state_dict().items()}
    try:
        yield
    finally:
        split.back.to("cpu")
        split.back.load_state_dict(initial)


def _run_split(name: str, cfg: EcoFedConfig, setting: Setting, ledger: Ledger) -> list[RoundLog]:
    engine = SPLIT_PROTOCOLS[name](
        initial_split(cfg),
        LocalTraining.from_config(cfg),
        ledger,
        setting.device_threads,
        setting.server_threads,
    )
    n = setting.num_clients
    names = [f"client-{i}" for i in range(n)]
    data = {names[i]: client_data(cfg, i, n) for i in range(n)}
    images, labels = test_set(cfg)
    k = clients_per_round(n, cfg.fraction_train, cfg.min_train_nodes)
    rng = np.random.default_rng(cfg.seed)
    logs = []
    for server_round in range(1, cfg.num_server_rounds + 1):
        start = time.perf_counter()
        sampled = [names[i] for i in sorted(rng.choice(n, size=k, replace=False))]
        stats = engine.train_round(server_round, {c: data[c] for c in sampled})
        loss, accuracy = engine.evaluate(images, labels)
        blocking = stats.server_seconds if engine.server_blocks_device else {}
        other = 0.0 if engine.server_blocks_device else sum(stats.server_seconds.values())
        logs.append(
            RoundLog(
                round=server_round,
                accuracy=accuracy,
                loss=loss,
                device_seconds=stats.device_seconds,
                server_seconds=stats.aggregate_seconds + other,
                blocking_server_seconds=blocking,
                wall_seconds=time.perf_counter() - start,
                extra={"train_loss": stats.train_loss, "train_samples": stats.samples},
            )
        )
        log(
            INFO,
            "[%s ROUND %d/%d] accuracy %.4f | up %s B | down %s B | %.1f s",
            name,
            server_round,
            cfg.num_server_rounds,
            accuracy,
            f"{ledger.total('up', round=server_round):,}",
            f"{ledger.total('down', round=server_round):,}",
            logs[-1].wall_seconds,
        )
    return logs


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a results document written by :func:`run_protocol`."""
    doc: dict[str, Any] = json.loads(Path(path).read_text())
    return doc
