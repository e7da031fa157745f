"""Run any protocol by name on one setting, with the same accounting for all.

``run_protocol(name, setting)`` (a name of
:data:`~ecofed_flwr.baselines.contenders.PROTOCOLS`) trains on the same model, data,
partition, seed, sampling rule, validation hold-out and test set, with the same torch thread
count and memory format, and returns (and writes) one results document per protocol (see
:func:`ecofed_flwr.baselines.report.account_run`):

- ``fl``, ``fl-back`` and the EcoFed protocols run through Flower (its simulation engine or
  the in-process loopback); their bytes are those of every message sent and received,
  recorded by a :class:`~ecofed_flwr.baselines.wire.MeteredGrid`.
- ``dpfl`` and ``lgl`` run in this process; each of their transfers is built as a Flower
  message from the real tensors and measured the same way.
- ``central`` and ``central-frozen`` train on the clients' pooled training data (no bytes):
  references for accuracy.
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

from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.simulation import run_simulation
from flwr.supercore import log

from ecofed_flwr import defaults
from ecofed_flwr.app.task import build_split
from ecofed_flwr.baselines.central import run_central
from ecofed_flwr.baselines.contenders import (
    CENTRAL_PROTOCOLS,
    FL_PROTOCOLS,
    SPLIT_PROTOCOLS,
    clients_per_round,
    is_ecofed,
    protocol_config,
)
from ecofed_flwr.baselines.fl import (
    ClientFailure,
    make_fl_client_app,
    make_fl_server_app,
    score_kept,
    validation_set,
)
from ecofed_flwr.baselines.host import host_speed
from ecofed_flwr.baselines.loopback import run_loopback
from ecofed_flwr.baselines.report import (
    DEVICE_SECONDS_KEYS,
    BestKeeper,
    Outcome,
    RoundLog,
    TestScore,
    TimeModel,
    account_run,
)
from ecofed_flwr.baselines.sampling import client_name, client_splits, sample_partitions
from ecofed_flwr.baselines.training import (
    LocalTraining,
    initial_split,
    torch_threads,
    trainable_copy,
    with_torch_threads,
)
from ecofed_flwr.baselines.wire import MeteredGrid
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.federation import make_client_app, run_federation
from ecofed_flwr.ledger import Ledger
from ecofed_flwr.lifecycle import CHANCE_FAILURE
from ecofed_flwr.models import SplitModel, run_front
from ecofed_flwr.results import write_json
from ecofed_flwr.schedule import make_lr_schedule
from ecofed_flwr.trainer import evaluate_back

RESULTS_NAME = "protocol.json"
ENGINES = ("simulation", "loopback")


@dataclass(frozen=True)
class Setting:
    """What every protocol of a comparison shares.

    Parameters
    ----------
    config : EcoFedConfig
        Model, cut, weights, data, partitioning, rounds, sampling, validation hold-out,
        learning-rate schedule and the optimiser of the baselines (the EcoFed presets
        override their own, see :data:`~ecofed_flwr.baselines.contenders.PRESETS`).
        ``output-dir`` is where each protocol's folder goes (default:
        ``outputs/harness-<time>``).
    num_clients : int (default: :data:`ecofed_flwr.defaults.NUM_SUPERNODES`, 10)
        Simulated devices; each holds one partition.
    time_model : TimeModel (default: TimeModel())
        Bandwidth, device-speed and GPU-server assumptions of the estimated times.
    target_accuracy : float, optional
        Accuracy whose first attainment is reported (round, bytes, estimated time).
    threads : int (default: 1)
        Torch threads of all compute, device and server alike, in this process and in
        every ClientApp call (Flower's Ray actors included).
    simulation_cpus : int (default: 2)
        CPUs given to Flower's simulation engine (one per simulated client at a time).
    client_num_gpus : float (default: 0.0)
        GPU share of each simulated client.
    engine : str (default: "simulation")
        How ``fl``, ``fl-back`` and EcoFed run: ``"simulation"`` (Flower's simulation
        engine, in-process ``run_simulation`` with Ray) or ``"loopback"`` (the same apps,
        messages handed to the ClientApp in this process: no Ray; same bytes).
    """

    config: EcoFedConfig = field(default_factory=EcoFedConfig)
    num_clients: int = defaults.NUM_SUPERNODES
    time_model: TimeModel = field(default_factory=TimeModel)
    target_accuracy: float | None = None
    threads: int = 1
    simulation_cpus: int = 2
    client_num_gpus: float = 0.0
    engine: str = "simulation"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.num_clients < 1 or self.threads < 1 or self.simulation_cpus < 1:
            raise ValueError(
                "num_clients, threads and simulation_cpus must be >= 1, got "
                f"{self.num_clients}, {self.threads}, {self.simulation_cpus}"
            )


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
        A name of :data:`~ecofed_flwr.baselines.contenders.PROTOCOLS`.
    setting : Setting
        What the protocols of a comparison share.
    overrides : Mapping[str, Any], optional
        Run-config settings to change for this protocol only, after its preset (e.g.
        ``{"codec": "u2"}`` for a codec sweep, or a tuned ``learning-rate``).
    label : str, optional
        Name of this run's folder and of the run in the document (default: ``name``); give
        each run of a sweep its own, e.g. ``"ecofed-best-u2"``.

    Returns
    -------
    dict
        The results document (also written to ``<output-dir>/<label>/protocol.json``), with
        the host's speed before and after the run (``host_before``, ``host_after``).
    """
    base = setting.config
    label = label or name
    out = Path(base.output_dir) if base.output_dir else _default_output()
    folder = (out / label).resolve()
    cfg = protocol_config(name, base, {**(overrides or {}), "output-dir": str(folder)})
    if is_ecofed(name) and cfg.validation_fraction > 0 and cfg.keep != "best":
        # Keeping a back changes no training; the harness selects by validation for all.
        cfg = protocol_config(name, cfg, {**(overrides or {}), "keep": "best"})
    ledger = Ledger()
    host_before = host_speed()
    started, cpu_started = time.perf_counter(), time.process_time()
    log(INFO, "Harness: %s on %s cut %s, %d clients", name, cfg.model, cfg.cut, setting.num_clients)
    with torch_threads(setting.threads):
        if name in FL_PROTOCOLS:
            logs, test = _run_fl(cfg, setting, ledger, FL_PROTOCOLS[name])
        elif name in SPLIT_PROTOCOLS:
            logs, test = _run_split(name, cfg, setting, ledger)
        elif name in CENTRAL_PROTOCOLS:
            logs, test = run_central(cfg, setting.num_clients, *CENTRAL_PROTOCOLS[name])
        elif is_ecofed(name):
            logs, test = _run_ecofed(cfg, setting, ledger)
        else:  # protocol_config has already refused unknown names
            raise AssertionError(name)
    harness_seconds = time.perf_counter() - started
    # CPU time of this process: the run's cost with less of the noise of a shared machine.
    harness_cpu_seconds = time.process_time() - cpu_started
    if len(logs) != cfg.num_server_rounds:
        raise RuntimeError(
            f"{name}: {len(logs)} of {cfg.num_server_rounds} rounds completed; see the log"
        )
    doc = account_run(
        name,
        cfg.to_dict(),
        logs,
        ledger,
        setting.time_model,
        clients_per_round(setting.num_clients, cfg.fraction_train, cfg.min_train_nodes),
        setting.target_accuracy,
        test=test,
        extra={
            "label": label,
            "overrides": dict(overrides or {}),
            "num_clients": setting.num_clients,
            "threads": setting.threads,
            "memory_format": "channels_last",
            "engine": setting.engine,
            "host_before": host_before,
            "host_after": host_speed(),
            "harness_seconds": harness_seconds,
            "harness_cpu_seconds": harness_cpu_seconds,
        },
    )
    write_json(folder / RESULTS_NAME, doc)
    log(
        INFO,
        "Harness: %s round %s selected on validation (%s): test accuracy %s, %s bytes, "
        "estimated %.0f s",
        name,
        doc["selected_round"],
        doc["selected_val_accuracy"],
        doc["selected_accuracy"],
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
        "| run | test acc. (val-chosen round) | val acc. | MB up | MB down | "
        "MB per client-round | device s | server s | est. time (s), CPU server | "
        "est. time (s), GPU server |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.2f}%"

    def num(v: float | None, fmt: str = ".0f") -> str:
        return "-" if v is None else format(v, fmt)

    for run, doc in results.items():
        t = doc["totals"]
        lines.append(
            f"| {run} | {pct(doc['selected_accuracy'])} | {pct(doc['selected_val_accuracy'])} | "
            f"{t['bytes_up'] / 1e6:.2f} | {t['bytes_down'] / 1e6:.2f} | "
            f"{t['mean_bytes_per_client_round'] / 1e6:.3f} | {t['device_seconds']:.1f} | "
            f"{t['server_seconds']:.1f} | {num(t['estimated_seconds'])} | "
            f"{num(t.get('estimated_seconds_gpu'))} |"
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


def _run_fl(cfg: EcoFedConfig, setting: Setting, ledger: Ledger, part: str) -> Outcome:
    logs: list[RoundLog] = []
    tests: list[TestScore] = []
    server_app = make_fl_server_app(
        cfg, ledger, logs.append, setting.num_clients, part, on_test=tests.append
    )
    client_app = make_fl_client_app(cfg, part, setting.threads)
    _simulate(server_app, client_app, setting)
    return logs, (tests[0] if tests else None)


def _run_ecofed(cfg: EcoFedConfig, setting: Setting, ledger: Ledger) -> Outcome:
    """EcoFed through its own ServerApp code; validation and test scored like the others.

    Every round's back is scored on the same pooled validation rows as every other protocol
    (the devices' held-out images through the frozen front, fp32), and the selected round's
    back once on the test set. Without a hold-out (``validation-fraction`` 0, as the paper)
    the server scores the test set every round and the last round is kept. A round in
    which a sampled client's upload was refused or missing, or a run the server calls
    failed, raises :class:`ClientFailure`.
    """
    held_out = cfg.validation_fraction > 0
    runs: list[tuple[MeteredGrid, dict[str, Any]]] = []
    split = build_split(cfg)
    val_images, val_labels = validation_set(cfg, setting.num_clients)
    val_activations = run_front(split.front, val_images, cfg.front_batch_size)
    scorer = trainable_copy(split.back)
    keeper = BestKeeper()
    scores: dict[int, tuple[float | None, float | None]] = {}

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round == 0:
            return None
        scorer.load_state_dict(arrays.to_torch_state_dict())
        loss, accuracy = (
            evaluate_back(scorer, val_activations, val_labels) if len(val_labels) else (None, None)
        )
        scores[server_round] = (accuracy, loss)
        keeper.offer(server_round, accuracy, scorer.state_dict())
        return None

    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        metered = MeteredGrid(grid, ledger)
        doc = run_federation(
            metered,
            cfg,
            num_nodes_hint=setting.num_clients,
            evaluate_fn=evaluate if held_out else None,
        )
        runs.append((metered, doc))

    with _restoring_back(split):
        _simulate(server_app, with_torch_threads(make_client_app(cfg), setting.threads), setting)
    if not runs:
        return [], None
    metered, doc = runs[0]
    _check_ecofed_run(doc)
    logs = []
    for entry in doc["rounds"]:
        if entry["round"] == 0:  # the untrained back, before any upload
            continue
        replies = metered.reply_metrics.get(entry["round"], {})
        val_accuracy, val_loss = scores.get(entry["round"], (None, None))
        logs.append(
            RoundLog(
                round=entry["round"],
                accuracy=None if held_out else entry.get("accuracy"),
                loss=None if held_out else entry.get("loss"),
                val_accuracy=val_accuracy,
                val_loss=val_loss,
                device_seconds={
                    node: sum(m.get(k, 0.0) for k in DEVICE_SECONDS_KEYS)
                    for node, m in replies.items()
                },
                # Thread CPU time of the back's training (wall-clock is in server_wall_seconds).
                server_seconds=entry["server_train_cpu_seconds"],
                server_train_seconds=entry["server_train_cpu_seconds"],
                server_steps=entry["train_steps"],
                server_batch_size=cfg.batch_size,
                wall_seconds=entry["seconds"],
                extra={
                    "refresh": entry["refresh"],
                    "samples_uploaded": entry["samples_uploaded"],
                    "train_samples": entry["train_samples"],
                    "buffer_bytes": entry["buffer_bytes"],
                    "server_wall_seconds": entry["server_train_seconds"],
                    "server_own_val_accuracy": entry.get("val_accuracy"),
                    "strategy_bytes_up": entry["bytes_up"],
                    "strategy_bytes_down": entry["bytes_down"],
                },
            )
        )
    return logs, (score_kept(cfg, keeper, split=split) if held_out else None)


def _check_ecofed_run(doc: dict[str, Any]) -> None:
    """Raise :class:`ClientFailure` unless every sampled upload of every round arrived."""
    problems = [
        f"round {entry['round']}: {client}: {reason}"
        for entry in doc["rounds"]
        for client, reason in sorted((entry.get("refused") or {}).items())
    ]
    if doc.get("excluded_nodes"):
        problems.append(f"excluded nodes: {doc['excluded_nodes']}")
    failure = str(doc.get("failure") or "")
    # A back left at chance is a (bad) data point, e.g. of a learning rate too low; a run
    # that failed for any other reason (no upload accepted) is not.
    if doc.get("status") != "completed" and not failure.startswith(CHANCE_FAILURE):
        problems.append(f"run {doc.get('status')}: {failure}")
    if problems:
        raise ClientFailure(
            f"{len(problems)} failed uploads or failures: " + "; ".join(p[:300] for p in problems)
        )


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


def _run_split(name: str, cfg: EcoFedConfig, setting: Setting, ledger: Ledger) -> Outcome:
    training = LocalTraining.from_config(cfg)
    engine = SPLIT_PROTOCOLS[name](initial_split(cfg), training, ledger)
    n = setting.num_clients
    data = {c: parts[0] for c, parts in client_splits(cfg, n).items()}
    names = [client_name(i) for i in range(n)]
    val_images, val_labels = validation_set(cfg, n)
    k = clients_per_round(n, cfg.fraction_train, cfg.min_train_nodes)
    schedule = make_lr_schedule(cfg.lr_schedule)
    keeper = BestKeeper()
    logs = []
    for server_round in range(1, cfg.num_server_rounds + 1):
        start = time.perf_counter()
        sampled = [names[i] for i in sample_partitions(n, k, cfg.seed, server_round)]
        stats = engine.train_round(
            server_round,
            {c: data[c] for c in sampled},
            training.for_round(schedule, server_round, cfg.num_server_rounds),
        )
        val_loss, val_accuracy = (
            engine.evaluate(val_images, val_labels) if len(val_labels) else (None, None)
        )
        keeper.offer(server_round, val_accuracy, engine.model().state_dict())
        blocks = engine.server_blocks_device
        train_seconds = sum(stats.server_seconds.values())
        logs.append(
            RoundLog(
                round=server_round,
                val_accuracy=val_accuracy,
                val_loss=val_loss,
                device_seconds=stats.device_seconds,
                server_seconds=stats.aggregate_seconds + (0.0 if blocks else train_seconds),
                server_train_seconds=0.0 if blocks else train_seconds,
                server_steps=0 if blocks else sum(stats.server_steps.values()),
                server_batch_size=training.batch_size,
                blocking_server_seconds=stats.server_seconds if blocks else {},
                blocking_server_steps=stats.server_steps if blocks else {},
                wall_seconds=time.perf_counter() - start,
                extra={"train_loss": stats.train_loss, "train_samples": stats.samples},
            )
        )
        log(
            INFO,
            "[%s ROUND %d/%d] val accuracy %s | up %s B | down %s B | %.1f s",
            name,
            server_round,
            cfg.num_server_rounds,
            "-" if val_accuracy is None else f"{val_accuracy:.4f}",
            f"{ledger.total('up', round=server_round):,}",
            f"{ledger.total('down', round=server_round):,}",
            logs[-1].wall_seconds,
        )
    return logs, score_kept(cfg, keeper, model=engine.model())


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a results document written by :func:`run_protocol`."""
    doc: dict[str, Any] = json.loads(Path(path).read_text())
    return doc
