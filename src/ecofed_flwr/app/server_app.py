"""EcoFed ServerApp: the strategy, server-side evaluation, results JSON and plot."""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Callable
from datetime import datetime
from logging import ERROR, INFO
from pathlib import Path
from typing import Any

import torch
from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.supercore import log

from ecofed_flwr.app.task import build_split, num_classes_of, test_set
from ecofed_flwr.checkpoint import Checkpointer, CheckpointError
from ecofed_flwr.classifier import MODEL_FILE, save_classifier
from ecofed_flwr.config import EcoFedConfig, resume_differences
from ecofed_flwr.handshake import describe_split
from ecofed_flwr.models import SplitModel, run_front
from ecofed_flwr.results import PLOT_FILE, RESULTS_FILE, plot_accuracy, summarize, write_json
from ecofed_flwr.server import EcoFedServer, RoundReport, StateMismatch
from ecofed_flwr.strategies import EcoFedStrategy
from ecofed_flwr.strategies.ecofed import NoUploadError
from ecofed_flwr.trainer import evaluate_back, resolve_device


def output_dir(cfg: EcoFedConfig) -> Path:
    """Where results go: ``output-dir`` or ``outputs/run-<time>`` under the working folder."""
    if cfg.output_dir:
        return Path(cfg.output_dir).expanduser().resolve()
    return Path.cwd() / "outputs" / datetime.now().strftime("run-%Y%m%d-%H%M%S")


#: Folder of the run folder where a bounded buffer keeps its memory-mapped uploads.
BUFFER_MMAP_DIR = "buffer-mmap"


def learned_something(accuracy: float | None, num_classes: int) -> bool:
    """Whether ``accuracy`` is clearly above chance (at least 1.5 times ``1 / num_classes``)."""
    return accuracy is not None and accuracy >= 1.5 / num_classes


def run_federation(
    grid: Grid,
    cfg: EcoFedConfig,
    num_nodes_hint: int = 0,
    evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None,
) -> dict[str, Any]:
    """Run EcoFed as ``cfg`` says on ``grid``; write and return the results document.

    ``evaluate_fn(round, arrays)``, when given, replaces the test-set evaluation of every
    round (the test set is then not loaded): a benchmark that scores the test set once,
    at a round it selects itself, passes its own.

    The run folder gets ``results.json`` (updated after every round), ``accuracy.png``,
    ``model.pt`` (the kept classifier, rewritten whenever the best round changes) and
    ``checkpoint/`` (the server's whole state, saved after every round; see
    :mod:`ecofed_flwr.checkpoint`). With ``resume`` the run goes on from that checkpoint
    after its last finished round. The run is ``"completed"`` only when uploads were
    accepted and the kept back is clearly above chance on the validation hold-out;
    otherwise ``"failed"`` with the reason.

    Raises
    ------
    CheckpointError
        With ``resume``, if the checkpoint is missing, damaged, or from other settings.
    """
    started = time.perf_counter()
    out = output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    split = build_split(cfg)
    num_classes = num_classes_of(cfg)
    device = resolve_device(cfg.device)
    if evaluate_fn is None:
        images, labels = test_set(cfg)
    else:  # the caller scores every round itself
        images, labels = torch.zeros(0, 1), torch.zeros(0, dtype=torch.int64)
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
        # Test figures are reported only: selection uses the uploads' hold-out.
        eval_back.load_state_dict(arrays.to_torch_state_dict())
        loss, accuracy = evaluate_back(eval_back, test_activations, labels)
        return MetricRecord({"accuracy": accuracy, "loss": loss})

    if evaluate_fn is not None:
        evaluate = evaluate_fn  # type: ignore[assignment]

    rounds: list[dict[str, Any]] = []
    model_path = out / MODEL_FILE
    extra: dict[str, Any] = {
        "fingerprint": split.fingerprint,
        "activation_shape": list(split.activation_shape),
        "num_test_samples": len(labels),
        "model_path": str(model_path),
    }
    strategy = EcoFedStrategy(
        # A copy: the split is cached per process and must not carry training between runs.
        back=copy.deepcopy(split.back),
        fingerprint=split.fingerprint,
        activation_shape=split.activation_shape,
        num_classes=num_classes,
        min_available_nodes=cfg.nodes_to_wait_for(num_nodes_hint),
        upload_config={"front-batch-size": cfg.front_batch_size},
        front_description=describe_split(split),
        **cfg.server_settings(),
    )
    server = strategy.server
    # Memory-mapped uploads are scratch: a checkpoint holds its own copy of every upload.
    shutil.rmtree(out / BUFFER_MMAP_DIR, ignore_errors=True)
    server.buffer.set_memory_budget(cfg.buffer_memory_bytes, out / BUFFER_MMAP_DIR)
    checkpointer = Checkpointer(out)
    if cfg.resume:
        extra["resumes"] = _resume(checkpointer, strategy, cfg)
        rounds.extend(r.to_json() for r in server.reports)
        if server.best_round > 0:
            _save_model(model_path, split, server, cfg)
    else:
        checkpointer.clear()
        extra["resumes"] = []

    def on_round(report: RoundReport) -> None:
        rounds.append(report.to_json())
        if report.round > 0 and report.round == server.best_round:
            _save_model(model_path, split, server, cfg)
        write_json(
            out / RESULTS_FILE,
            summarize(cfg.to_dict(), rounds, {**extra, **_best(server), "status": "running"}),
        )
        # Last: a checkpoint names a round whose results and model are already written.
        checkpointer.save(
            server.state(),
            {
                "config": cfg.to_dict(),
                "adapter": strategy.state_dict(),
                "resumes": extra["resumes"],
            },
        )

    strategy.on_round = on_round
    failure = ""
    try:
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(),
            num_rounds=cfg.num_server_rounds,
            timeout=cfg.round_timeout,
            evaluate_fn=evaluate,
        )
    except NoUploadError as err:
        failure = str(err)
    best = _best(server)
    kept = best["best_val_accuracy"]
    if kept is None:
        kept = best["final_accuracy"]
    if not failure and not learned_something(kept, num_classes):
        failure = (
            f"the kept back (round {server.best_round}) is at chance: accuracy {kept} with "
            f"{num_classes} classes"
        )
    status = "failed" if failure else "completed"
    doc = summarize(
        cfg.to_dict(),
        rounds,
        {
            **extra,
            **best,
            "status": status,
            "failure": failure or None,
            "excluded_nodes": {str(k): v for k, v in strategy.excluded_nodes.items()},
            "wall_seconds": time.perf_counter() - started,
            "ledger": strategy.ledger.to_json(),
        },
    )
    write_json(out / RESULTS_FILE, doc)
    plot_accuracy(doc, out / PLOT_FILE, f"EcoFed: {cfg.model} cut {cfg.cut}, codec {cfg.codec}")
    if failure:
        log(ERROR, "EcoFed: run FAILED: %s; results in %s", failure, out)
    else:
        log(
            INFO,
            "EcoFed: kept round %d: val accuracy %.4f, test accuracy %.4f; model %s",
            doc["best_round"],
            doc["best_val_accuracy"] or 0.0,
            doc["final_accuracy"] or 0.0,
            model_path,
        )
    return doc


def _resume(checkpointer: Checkpointer, strategy: EcoFedStrategy, cfg: EcoFedConfig) -> list[int]:
    """Restore the checkpointed run into ``strategy``; return the rounds resumed after."""
    checkpoint = checkpointer.load()
    saved, resumes = checkpoint.extra.get("config"), checkpoint.extra.get("resumes")
    if not isinstance(saved, dict) or not (
        isinstance(resumes, list) and all(isinstance(r, int) for r in resumes)
    ):
        raise CheckpointError(
            f"{checkpointer.state_path}: expected the run's settings and resumes in 'extra', "
            f"got keys {sorted(checkpoint.extra)}"
        )
    changed = resume_differences(saved, cfg.to_dict())
    if changed:
        raise CheckpointError(
            f"cannot resume the run in {checkpointer.directory.parent} with other settings: "
            + "; ".join(changed)
        )
    try:
        strategy.server.load_state(checkpoint.state)  # reads (and checks) the uploads
        strategy.load_state_dict(checkpoint.extra.get("adapter", {}))
    except CheckpointError:
        raise
    except (StateMismatch, ValueError) as err:
        raise CheckpointError(f"{checkpointer.state_path}: {err}") from err
    log(
        INFO,
        "EcoFed: resuming %s after round %d: %d buffered clients (%s B), not asked again",
        checkpointer.directory.parent,
        strategy.server.round,
        len(strategy.server.buffer),
        f"{strategy.server.buffer.nbytes:,}",
    )
    return [*resumes, strategy.server.round]


def _save_model(path: Path, split: SplitModel, server: EcoFedServer, cfg: EcoFedConfig) -> None:
    best = server.best_report
    save_classifier(
        path,
        split,
        server.result_state(),
        cfg.codec,
        cfg.to_dict(),
        {"round": server.best_round, "val_accuracy": best.val_accuracy if best else None},
    )


def _best(server: EcoFedServer) -> dict[str, Any]:
    best = server.best_report
    return {
        "best_round": server.best_round,
        "best_val_accuracy": best.val_accuracy if best else None,
        "final_accuracy": best.metrics.get("accuracy") if best else None,
    }


def make_server_app(cfg: EcoFedConfig | None = None) -> ServerApp:
    """A ServerApp running EcoFed with ``cfg``, or with the run config when ``cfg`` is None."""
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        run_federation(grid, cfg or EcoFedConfig.from_mapping(context.run_config))

    return server_app


app = make_server_app()
