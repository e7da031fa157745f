"""EcoFed ServerApp: the strategy, server-side evaluation, results JSON and plot."""

from __future__ import annotations

import copy
import time
from datetime import datetime
from logging import INFO
from pathlib import Path
from typing import Any

import torch
from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.supercore import log

from ecofed_flwr.app.task import build_split, num_classes_of, test_set
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.results import PLOT_FILE, RESULTS_FILE, plot_accuracy, summarize, write_json
from ecofed_flwr.strategies import EcoFedStrategy, RoundReport
from ecofed_flwr.trainer import evaluate_back, resolve_device, run_front


def output_dir(cfg: EcoFedConfig) -> Path:
    """Where results go: ``output-dir`` or ``outputs/run-<time>`` under the working folder."""
    if cfg.output_dir:
        return Path(cfg.output_dir).expanduser().resolve()
    return Path.cwd() / "outputs" / datetime.now().strftime("run-%Y%m%d-%H%M%S")


def run_federation(grid: Grid, cfg: EcoFedConfig, num_nodes_hint: int = 0) -> dict[str, Any]:
    """Run EcoFed as ``cfg`` says on ``grid``; write and return the results document."""
    started = time.perf_counter()
    out = output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    split = build_split(cfg)
    device = resolve_device(cfg.device)
    images, labels = test_set(cfg)
    # The front is frozen, so the test activations are computed once for the whole run.
    test_activations = run_front(split.front, images, cfg.front_batch_size)
    eval_back = copy.deepcopy(split.back).to(device)
    eval_back.to(memory_format=torch.channels_last)
    log(
        INFO,
        "EcoFed: %s cut %s (%s weights), activation %s, %d test samples, %.1f s set-up",
        split.model_name,
        split.cut,
        split.weights,
        split.activation_shape,
        len(labels),
        time.perf_counter() - started,
    )

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        eval_back.load_state_dict(arrays.to_torch_state_dict())
        loss, accuracy = evaluate_back(eval_back, test_activations, labels)
        return MetricRecord({"accuracy": accuracy, "loss": loss})

    rounds: list[dict[str, Any]] = []
    extra = {
        "fingerprint": split.fingerprint,
        "activation_shape": list(split.activation_shape),
        "num_test_samples": len(labels),
    }

    def on_round(report: RoundReport) -> None:
        rounds.append(report.to_json())
        write_json(
            out / RESULTS_FILE, summarize(cfg.to_dict(), rounds, {**extra, "status": "running"})
        )

    strategy = EcoFedStrategy(
        # A copy: the split is cached per process and must not carry training between runs.
        back=copy.deepcopy(split.back),
        fingerprint=split.fingerprint,
        activation_shape=split.activation_shape,
        num_classes=num_classes_of(cfg),
        codec=cfg.codec,
        refresh=cfg.refresh,
        replay=cfg.replay,
        trainer=cfg.trainer_config(),
        fraction_train=cfg.fraction_train,
        min_train_nodes=cfg.min_train_nodes,
        min_available_nodes=max(cfg.min_train_nodes, num_nodes_hint),
        upload_config={"front-batch-size": cfg.front_batch_size},
        on_round=on_round,
        seed=cfg.seed,
    )
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(),
        num_rounds=cfg.num_server_rounds,
        timeout=cfg.round_timeout,
        evaluate_fn=evaluate,
    )
    doc = summarize(
        cfg.to_dict(),
        rounds,
        {
            **extra,
            "status": "completed",
            "wall_seconds": time.perf_counter() - started,
            "ledger": strategy.ledger.to_json(),
        },
    )
    write_json(out / RESULTS_FILE, doc)
    plot_accuracy(doc, out / PLOT_FILE, f"EcoFed: {cfg.model} cut {cfg.cut}, codec {cfg.codec}")
    log(INFO, "EcoFed: final accuracy %.4f; results in %s", doc["final_accuracy"] or 0.0, out)
    return doc


def make_server_app(cfg: EcoFedConfig | None = None) -> ServerApp:
    """A ServerApp running EcoFed with ``cfg``, or with the run config when ``cfg`` is None."""
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        run_federation(grid, cfg or EcoFedConfig.from_mapping(context.run_config))

    return server_app


app = make_server_app()
