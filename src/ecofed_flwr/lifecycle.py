"""A run's life on disk: its folder, resume, per-round results and checkpoint, final status.

:class:`RunLifecycle` knows nothing of Flower: whatever drives the core server (the
Message-API strategy, the legacy one, a test) hands it the server, the split model, the
settings and two callables for its own small state, calls :meth:`RunLifecycle.start` before
the first round, :meth:`RunLifecycle.on_round` after every round and
:meth:`RunLifecycle.finish` at the end. It logs into Flower's logger (``"flwr"``), so the
lines read as before in a Flower run.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from logging import ERROR, INFO
from pathlib import Path
from typing import Any

from ecofed_flwr.checkpoint import Checkpointer, CheckpointError
from ecofed_flwr.classifier import MODEL_FILE, save_classifier
from ecofed_flwr.config import EcoFedConfig, resume_differences
from ecofed_flwr.models import SplitModel
from ecofed_flwr.results import PLOT_FILE, RESULTS_FILE, plot_accuracy, summarize, write_json
from ecofed_flwr.server import EcoFedServer, RoundReport, StateMismatch

__all__ = ["BUFFER_MMAP_DIR", "CHANCE_FAILURE", "RunLifecycle", "learned_something", "output_dir"]

#: Folder of the run folder where a bounded buffer keeps its memory-mapped uploads.
BUFFER_MMAP_DIR = "buffer-mmap"

#: How the failure of a run whose kept back is at chance begins.
CHANCE_FAILURE = "the kept back"

_log = logging.getLogger("flwr")


def output_dir(cfg: EcoFedConfig) -> Path:
    """Where results go: ``output-dir`` or ``outputs/run-<time>`` under the working folder."""
    if cfg.output_dir:
        return Path(cfg.output_dir).expanduser().resolve()
    return Path.cwd() / "outputs" / datetime.now().strftime("run-%Y%m%d-%H%M%S")


def learned_something(accuracy: float | None, num_classes: int) -> bool:
    """Whether ``accuracy`` is clearly above chance (at least 1.5 times ``1 / num_classes``)."""
    return accuracy is not None and accuracy >= 1.5 / num_classes


class RunLifecycle:
    """The files of one EcoFed run, from its first round (or resume) to its final status.

    The run folder gets ``results.json`` (updated after every round), ``accuracy.png``,
    ``model.pt`` (the kept classifier, rewritten whenever the best round changes) and
    ``checkpoint/`` (the server's whole state, saved after every round; see
    :mod:`ecofed_flwr.checkpoint`).

    Parameters
    ----------
    cfg : EcoFedConfig
        The run's settings: ``output-dir``, ``resume``, ``buffer-memory-mb``, and what is
        saved beside every checkpoint and compared on resume.
    server : EcoFedServer
        The core server whose rounds are recorded and whose state is checkpointed.
    split : SplitModel
        The split model of the run: its fingerprint and front go into the results and
        ``model.pt``.
    adapter_state : Callable[[], dict[str, Any]]
        The driving adapter's own state (JSON values), saved with every checkpoint.
    load_adapter_state : Callable[[Mapping[str, Any]], None]
        Restores what ``adapter_state`` returned, on resume.
    excluded_nodes : Callable[[], Mapping[int, str]]
        The nodes the adapter stopped asking, and why; read for the final document.
    num_test_samples : int (default: 0)
        Size of the test set scored each round, for the document.
    started : float, optional
        ``time.perf_counter()`` when the run's set-up began (default: now);
        ``wall_seconds`` counts from it.
    """

    def __init__(
        self,
        cfg: EcoFedConfig,
        server: EcoFedServer,
        split: SplitModel,
        adapter_state: Callable[[], dict[str, Any]],
        load_adapter_state: Callable[[Mapping[str, Any]], None],
        excluded_nodes: Callable[[], Mapping[int, str]],
        num_test_samples: int = 0,
        started: float | None = None,
    ) -> None:
        self.cfg = cfg
        self.server = server
        self.split = split
        self.adapter_state = adapter_state
        self.load_adapter_state = load_adapter_state
        self.excluded_nodes = excluded_nodes
        self.started = time.perf_counter() if started is None else started
        self.out = output_dir(cfg)
        self.model_path = self.out / MODEL_FILE
        self.checkpointer = Checkpointer(self.out)
        self.rounds: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {
            "fingerprint": split.fingerprint,
            "activation_shape": list(split.activation_shape),
            "num_test_samples": num_test_samples,
            "model_path": str(self.model_path),
        }

    def start(self) -> list[int]:
        """Prepare the run folder, fresh or (with ``resume``) from its checkpoint.

        Returns
        -------
        list[int]
            The rounds after which the run was resumed so far (empty for a fresh run).

        Raises
        ------
        CheckpointError
            With ``resume``, if the checkpoint is missing, damaged, or from other settings.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        # Memory-mapped uploads are scratch: a checkpoint holds its own copy of every upload.
        shutil.rmtree(self.out / BUFFER_MMAP_DIR, ignore_errors=True)
        self.server.buffer.set_memory_budget(
            self.cfg.buffer_memory_bytes, self.out / BUFFER_MMAP_DIR
        )
        if self.cfg.resume:
            self.extra["resumes"] = self._resume()
            self.rounds.extend(r.to_json() for r in self.server.reports)
            if self.server.best_round > 0:
                self._save_model()
        else:
            self.checkpointer.clear()
            self.extra["resumes"] = []
        resumes: list[int] = self.extra["resumes"]
        return resumes

    def on_round(self, report: RoundReport) -> None:
        """Record a finished round: results, the kept model if it changed, then the checkpoint."""
        server = self.server
        self.rounds.append(report.to_json())
        if report.round > 0 and report.round == server.best_round:
            self._save_model()
        write_json(
            self.out / RESULTS_FILE,
            summarize(
                self.cfg.to_dict(),
                self.rounds,
                {**self.extra, **self._best(), "status": "running"},
            ),
        )
        # Last: a checkpoint names a round whose results and model are already written.
        self.checkpointer.save(
            server.state(),
            {
                "config": self.cfg.to_dict(),
                "adapter": self.adapter_state(),
                "resumes": self.extra["resumes"],
            },
        )

    def finish(self, failure: str = "") -> dict[str, Any]:
        """Write the final results document and plot, log the outcome, return the document.

        The run is ``"completed"`` only when ``failure`` is empty (the driver's reason, e.g.
        no upload accepted) and the kept back is clearly above chance on the validation
        hold-out (:func:`learned_something`); otherwise ``"failed"`` with the reason.
        """
        server, cfg = self.server, self.cfg
        best = self._best()
        kept = best["best_val_accuracy"]
        if kept is None:
            kept = best["final_accuracy"]
        if not failure and not learned_something(kept, server.num_classes):
            failure = (
                f"{CHANCE_FAILURE} (round {server.best_round}) is at chance: accuracy {kept} with "
                f"{server.num_classes} classes"
            )
        status = "failed" if failure else "completed"
        doc = summarize(
            cfg.to_dict(),
            self.rounds,
            {
                **self.extra,
                **best,
                "status": status,
                "failure": failure or None,
                "excluded_nodes": {str(k): v for k, v in self.excluded_nodes().items()},
                "wall_seconds": time.perf_counter() - self.started,
                "ledger": server.ledger.to_json(),
            },
        )
        write_json(self.out / RESULTS_FILE, doc)
        plot_accuracy(
            doc, self.out / PLOT_FILE, f"EcoFed: {cfg.model} cut {cfg.cut}, codec {cfg.codec}"
        )
        if failure:
            _log.log(ERROR, "EcoFed: run FAILED: %s; results in %s", failure, self.out)
        else:
            _log.log(
                INFO,
                "EcoFed: kept round %d: val accuracy %.4f, test accuracy %.4f; model %s",
                doc["best_round"],
                doc["best_val_accuracy"] or 0.0,
                doc["final_accuracy"] or 0.0,
                self.model_path,
            )
        return doc

    def _resume(self) -> list[int]:
        """Restore the checkpointed run into the server and the adapter; return the resumes."""
        checkpointer, server = self.checkpointer, self.server
        checkpoint = checkpointer.load()
        saved, resumes = checkpoint.extra.get("config"), checkpoint.extra.get("resumes")
        if not isinstance(saved, dict) or not (
            isinstance(resumes, list) and all(isinstance(r, int) for r in resumes)
        ):
            raise CheckpointError(
                f"{checkpointer.state_path}: expected the run's settings and resumes in "
                f"'extra', got keys {sorted(checkpoint.extra)}"
            )
        changed = resume_differences(saved, self.cfg.to_dict())
        if changed:
            raise CheckpointError(
                f"cannot resume the run in {checkpointer.directory.parent} with other "
                "settings: " + "; ".join(changed)
            )
        try:
            server.load_state(checkpoint.state)  # reads (and checks) the uploads
            self.load_adapter_state(checkpoint.extra.get("adapter", {}))
        except CheckpointError:
            raise
        except (StateMismatch, ValueError) as err:
            raise CheckpointError(f"{checkpointer.state_path}: {err}") from err
        _log.log(
            INFO,
            "EcoFed: resuming %s after round %d: %d buffered clients (%s B), not asked again",
            checkpointer.directory.parent,
            server.round,
            len(server.buffer),
            f"{server.buffer.nbytes:,}",
        )
        return [*resumes, server.round]

    def _save_model(self) -> None:
        server = self.server
        best = server.best_report
        save_classifier(
            self.model_path,
            self.split,
            server.result_state(),
            self.cfg.codec,
            self.cfg.to_dict(),
            {"round": server.best_round, "val_accuracy": best.val_accuracy if best else None},
        )

    def _best(self) -> dict[str, Any]:
        best = self.server.best_report
        return {
            "best_round": self.server.best_round,
            "best_val_accuracy": best.val_accuracy if best else None,
            "final_accuracy": best.metrics.get("accuracy") if best else None,
        }
