"""The EcoFed server, without Flower: one object that owns a run's state and its rounds.

:class:`EcoFedServer` holds the replay buffer, the refresh policy, replay selection, the
back-end trainer, the validation hold-out, the learning-rate schedule, the best back so far,
the ledger and the seeds. A round is a handful of plain steps::

    plan = server.begin_round(r, clients)         # who is sampled, who must upload
    server.accept(client, batch, labels)          # each validated upload (or server.refuse)
    report = server.close_round()                 # train (unless done), evaluate, end

(``close_round`` is ``train``, ``evaluate`` and ``end_round``, which callers may also run
one by one.) The Flower strategies (Message API and legacy), the benchmarks and the tests all
drive this object; none of them re-implements a round. Between rounds, :meth:`EcoFedServer.state` is
the server's whole state as one :class:`ServerState` and :meth:`EcoFedServer.load_state`
restores it, so that a run goes on after a crash exactly as it would have
(:mod:`ecofed_flwr.checkpoint` puts it on disk).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ecofed_flwr import defaults
from ecofed_flwr.buffer import (
    REPLAY_SELECTIONS,
    RefreshPolicy,
    ReplayBuffer,
    client_sort_key,
    make_refresh_policy,
    select_replay,
)
from ecofed_flwr.codec import EncodedBatch, make_codec
from ecofed_flwr.ledger import Ledger
from ecofed_flwr.rounds import (
    KEEP_CHOICES,
    REPLAY_STREAM,
    NoUploadError,
    RoundPlan,
    RoundReport,
    UploadNotExpected,
    clients_per_round,
    holdout_rows,
    sample_clients,
)
from ecofed_flwr.schedule import LRSchedule, make_lr_schedule
from ecofed_flwr.server_state import (
    ServerState,
    StateMismatch,
    cpu_state,
    restore_state,
    save_state,
    server_settings,
)
from ecofed_flwr.trainer import BackTrainer, TrainerConfig, TrainStats, evaluate_back

__all__ = [
    "KEEP_CHOICES",
    "EcoFedServer",
    "EvaluateFn",
    "NoUploadError",
    "RoundPlan",
    "RoundReport",
    "ServerState",
    "StateMismatch",
    "UploadNotExpected",
    "clients_per_round",
    "holdout_rows",
    "sample_clients",
]

#: Evaluates a back (in eval mode) on data the server holds apart, e.g. a test set; the
#: result (``accuracy``, ``loss``, ...) is only reported, never used for a decision.
EvaluateFn = Callable[[nn.Module], Mapping[str, float]]


class EcoFedServer:
    """The server half of EcoFed: buffer, policies, trainer, hold-out, schedule, best back.

    Parameters
    ----------
    back : nn.Module
        The back-end to train (moved to the trainer's device and updated in place).
    fingerprint : str
        Fingerprint of the frozen front every upload must come from.
    activation_shape : tuple[int, ...]
        Shape of one sample's activation at the cut.
    num_classes : int
        Labels lie in ``[0, num_classes)``.
    codec : str (default: ``defaults.CODEC``)
        Codec every upload must use (see :func:`ecofed_flwr.codec.make_codec`).
    refresh : str | RefreshPolicy (default: ``defaults.REFRESH``)
        Which sampled clients upload: ``"every:P"`` (paper: ``every:2``), ``"once"`` or
        ``"stall:N"`` (refresh after ``N`` rounds without a validation gain).
    replay : str (default: ``defaults.REPLAY``)
        What the server trains on besides this round's uploads: ``"all"`` (every buffered
        client), ``"paper"`` (a random buffered client per free slot) or ``"sampled"``
        (the round's sampled clients that have entries).
    trainer : TrainerConfig, optional
        Server SGD settings and mode (default: ``TrainerConfig()``).
    lr_schedule : str | LRSchedule (default: ``defaults.LR_SCHEDULE``)
        ``"constant"``, ``"cosine"`` or ``"cosine:WARMUP"`` over the run's server steps.
    num_rounds : int (default: ``defaults.NUM_SERVER_ROUNDS``)
        Rounds of the run (the schedule spans them).
    validation_fraction : float (default: ``defaults.VALIDATION_FRACTION``)
        Fraction of every upload held out (seeded per client) for validation; never trained
        on. 0 disables validation (the last back is then kept).
    keep : str (default: ``defaults.KEEP``)
        ``"best"``: the result is the back of the round with the best validation accuracy;
        ``"last"``: the last round's.
    fraction_train : float (default: ``defaults.FRACTION_TRAIN``)
        Fraction of the available clients sampled each round.
    min_train_nodes : int (default: ``defaults.MIN_TRAIN_NODES``)
        Minimum number of clients sampled each round.
    evaluate_fn : Callable[[nn.Module], Mapping[str, float]], optional
        Test evaluation of the back after each round (reported only).
    seed : int (default: ``defaults.SEED``)
        Seeds sampling, replay selection, the hold-out and training; a round's draws depend
        only on ``(seed, round)``, so runs (and resumed runs) are reproducible.
    """

    def __init__(
        self,
        back: nn.Module,
        fingerprint: str,
        activation_shape: tuple[int, ...],
        num_classes: int,
        codec: str = defaults.CODEC,
        refresh: str | RefreshPolicy = defaults.REFRESH,
        replay: str = defaults.REPLAY,
        trainer: TrainerConfig | None = None,
        lr_schedule: str | LRSchedule = defaults.LR_SCHEDULE,
        num_rounds: int = defaults.NUM_SERVER_ROUNDS,
        validation_fraction: float = defaults.VALIDATION_FRACTION,
        keep: str = defaults.KEEP,
        fraction_train: float = defaults.FRACTION_TRAIN,
        min_train_nodes: int = defaults.MIN_TRAIN_NODES,
        evaluate_fn: EvaluateFn | None = None,
        seed: int = defaults.SEED,
    ) -> None:
        if replay not in REPLAY_SELECTIONS:
            raise ValueError(f"replay must be one of {REPLAY_SELECTIONS}, got {replay!r}")
        if keep not in KEEP_CHOICES:
            raise ValueError(f"keep must be one of {KEEP_CHOICES}, got {keep!r}")
        if not 0.0 <= validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        if not 0.0 < fraction_train <= 1.0:
            raise ValueError(f"fraction_train must be in (0, 1], got {fraction_train}")
        if min_train_nodes < 1 or num_rounds < 1 or num_classes < 2:
            raise ValueError(
                "need min_train_nodes >= 1, num_rounds >= 1 and num_classes >= 2, got "
                f"{min_train_nodes}, {num_rounds}, {num_classes}"
            )
        self.codec = make_codec(codec)
        self.refresh = make_refresh_policy(refresh) if isinstance(refresh, str) else refresh
        self.replay = replay
        self.schedule = (
            make_lr_schedule(lr_schedule) if isinstance(lr_schedule, str) else lr_schedule
        )
        self.fingerprint = fingerprint
        self.activation_shape = tuple(activation_shape)
        self.num_classes = num_classes
        self.num_rounds = num_rounds
        self.validation_fraction = validation_fraction
        self.keep = keep
        self.fraction_train = fraction_train
        self.min_train_nodes = min_train_nodes
        self.evaluate_fn = evaluate_fn
        self.seed = seed
        self.trainer = BackTrainer(back, trainer or TrainerConfig(seed=seed))
        self.buffer = ReplayBuffer(self.codec)
        self.ledger = Ledger()
        self.reports: list[RoundReport] = []
        self.best_round = 0
        self.best_val_accuracy: float | None = None
        self._best_state = cpu_state(self.trainer.back)
        self._plan: RoundPlan | None = None
        self._current = RoundReport(round=0)
        self._stats: TrainStats | None = None
        self._started = time.perf_counter()

    # ------------------------------------------------------------------ round steps

    @property
    def round(self) -> int:
        """The round in progress, or the last one finished (0 before the first)."""
        return self._current.round

    @property
    def current(self) -> RoundReport:
        """The report of the round in progress (or of the last one finished)."""
        return self._current

    @property
    def plan(self) -> RoundPlan:
        """The plan of the round in progress."""
        if self._plan is None:
            raise RuntimeError("no round in progress: call begin_round() first")
        return self._plan

    def begin_round(self, server_round: int, clients: Iterable[str]) -> RoundPlan:
        """Sample this round's clients from ``clients`` and name those that must upload.

        The clients are sorted first (numeric names numerically), so the draw depends only
        on the seed, the round and the set of clients, never on the order they were listed.
        """
        if self._plan is not None:
            raise RuntimeError(f"round {self._plan.round} is still in progress")
        if server_round <= self.round:
            raise ValueError(f"round {server_round} does not follow round {self.round}")
        pool = set(clients)
        k = clients_per_round(len(pool), self.fraction_train, self.min_train_nodes)
        sampled = sample_clients(pool, k, self.seed, server_round)
        uploaders = [c for c in sampled if self.refresh.needs_upload(server_round, c, self.buffer)]
        self._plan = RoundPlan(server_round, sampled, uploaders)
        self._current = RoundReport(
            round=server_round, refresh=bool(uploaders), sampled=sampled, asked=list(uploaders)
        )
        self._stats = None
        self._started = time.perf_counter()
        return self._plan

    def accept(
        self,
        client: str,
        batch: EncodedBatch,
        labels: np.ndarray,
        device_seconds: float = 0.0,
    ) -> None:
        """Buffer one validated upload of ``client`` (replacing its previous entry).

        A seeded fraction of the upload (the same rows for the same client and sample count,
        so a refresh never moves a held-out sample into training) is held out for validation.

        Raises
        ------
        UploadNotExpected
            If ``client`` was not asked this round, or already uploaded or was refused.
        ValueError
            If the batch and labels disagree with each other or with the server's front.
        """
        plan, current = self.plan, self._current
        if client not in plan.uploaders:
            raise UploadNotExpected(
                f"client {client} was not asked to upload in round {plan.round}"
            )
        if client in current.uploaded or client in current.refused:
            raise UploadNotExpected(f"client {client} already replied in round {plan.round}")
        n = batch.num_samples
        if batch.sample_shape != self.activation_shape or labels.shape != (n,):
            raise ValueError(
                f"client {client}: activations {batch.sample_shape} x {n} with labels "
                f"{labels.shape}; expected {self.activation_shape} and one label per sample"
            )
        self.buffer.put(client, batch, labels, plan.round, self._holdout_rows(client, n))
        current.uploaded.append(client)
        current.samples_uploaded += n
        current.device_seconds[client] = float(device_seconds)

    def refuse(self, client: str, reason: str) -> None:
        """Record that ``client``'s reply this round was refused (nothing else changes).

        A client whose first reply was accepted stays uploaded: a second, refused reply is
        not recorded against it.
        """
        if client not in self._current.uploaded:
            self._current.refused.setdefault(client, reason)

    def train(self) -> TrainStats:
        """Train the back on this round's slots: its uploads plus replayed entries."""
        plan, current = self.plan, self._current
        uploaded = sorted(current.uploaded, key=client_sort_key)
        if self.replay == "all":
            slots = self.buffer.clients()
        else:
            rng = np.random.default_rng([self.seed, plan.round, REPLAY_STREAM])
            others = [c for c in plan.sampled if c not in uploaded]
            free = len(plan.sampled) - len(uploaded)
            slots = uploaded + select_replay(self.replay, free, others, self.buffer, rng)
        base = self.trainer.config.learning_rate

        def learning_rate_at(fraction: float) -> float:
            return self.schedule.round_learning_rate(base, plan.round, self.num_rounds, fraction)

        stats = self.trainer.train_round(self.buffer, slots, plan.round, learning_rate_at)
        current.slots = slots
        self._stats = stats
        return stats

    def evaluate(self) -> dict[str, float]:
        """Validation (hold-out) and test (``evaluate_fn``) metrics of the current back.

        Updates the best back (by validation accuracy) and tells the refresh policy.
        """
        current, back = self._current, self.trainer.back
        started = time.perf_counter()
        metrics: dict[str, float] = {}
        activations, labels = self.buffer.holdout()
        if len(labels):
            val_loss, val_accuracy = evaluate_back(back, activations, labels)
            current.val_loss, current.val_accuracy = val_loss, val_accuracy
            metrics.update(val_loss=val_loss, val_accuracy=val_accuracy)
            self.refresh.observe(current.round, val_accuracy)
        if self.evaluate_fn is not None:
            back.eval()
            current.metrics = {k: float(v) for k, v in self.evaluate_fn(back).items()}
            metrics.update(current.metrics)
        self._update_best(current)
        current.evaluate_seconds = time.perf_counter() - started
        return metrics

    def end_round(self) -> RoundReport:
        """Close the round: its report (bytes from the ledger, timings, best round)."""
        plan, current = self.plan, self._current
        for client in plan.uploaders:
            if client not in current.uploaded and client not in current.refused:
                current.refused[client] = "no reply before the timeout"
        stats, ledger, r = self._stats, self.ledger, plan.round
        if stats is not None:
            current.train_loss, current.train_samples = stats.loss, stats.samples
            current.train_steps, current.skipped_steps = stats.steps, stats.skipped_steps
            current.learning_rate = stats.last_learning_rate
            current.server_train_seconds = stats.seconds
            current.server_train_cpu_seconds = stats.cpu_seconds
        current.uploaded.sort(key=client_sort_key)  # arrival order is not reproducible
        current.holdout_samples = self.buffer.num_holdout()
        current.bytes_up = ledger.total("up", round=r)
        current.bytes_down = ledger.total("down", round=r)
        current.bytes_up_activations = ledger.total("up", "activations", round=r)
        current.bytes_up_labels = ledger.total("up", "labels", round=r)
        current.buffer_bytes = self.buffer.nbytes
        current.best_round = self.best_round
        current.seconds = time.perf_counter() - self._started
        self.reports.append(current)
        self._plan = None
        return current

    def evaluate_initial(self) -> RoundReport:
        """Round 0: the untrained back's test metrics (no upload, no validation yet)."""
        if self.reports:
            raise RuntimeError("round 0 is evaluated before the first round only")
        report = RoundReport(round=0)
        if self.evaluate_fn is not None:
            self.trainer.back.eval()
            report.metrics = {k: float(v) for k, v in self.evaluate_fn(self.trainer.back).items()}
        self.reports.append(report)
        return report

    def close_round(self) -> RoundReport:
        """Finish the round in progress: train on its slots (unless :meth:`train` already
        ran this round), evaluate, and end it.

        The one round driver: ``begin_round``, then ``accept``/``refuse`` per reply, then
        ``close_round``. Both Flower strategies and :meth:`run_round` sequence a round so,
        whichever of Flower's hooks comes first.
        """
        if self._stats is None:
            self.train()
        self.evaluate()
        return self.end_round()

    def run_round(
        self,
        server_round: int,
        clients: Iterable[str],
        upload: Callable[[str], tuple[EncodedBatch, np.ndarray, float]],
    ) -> RoundReport:
        """One whole round in process: ``upload(client)`` stands in for the devices.

        For benchmarks and tests that need no transport; the bytes booked are the payload's
        (activations and labels).
        """
        plan = self.begin_round(server_round, clients)
        for client in plan.uploaders:
            batch, labels, seconds = upload(client)
            self.ledger.add(server_round, client, "up", "activations", batch.nbytes)
            self.ledger.add(server_round, client, "up", "labels", labels.nbytes, messages=0)
            self.accept(client, batch, labels, seconds)
        return self.close_round()

    def train_metrics(self) -> dict[str, int | float]:
        """The round's training figures, as both strategies report them to Flower."""
        stats = self._stats
        samples = stats.samples if stats is not None else 0
        return {
            "train-loss": stats.loss if stats is not None and samples else 0.0,
            "train-samples": samples,
            "samples-uploaded": self._current.samples_uploaded,
            "buffer-bytes": self.buffer.nbytes,
        }

    def check_trained(self, why_not: str = "") -> None:
        """Raise :class:`NoUploadError` when the run has accepted no upload at all.

        ``why_not`` is appended to the message (e.g. the run's refusals).
        """
        if not len(self.buffer):
            raise NoUploadError(
                f"no upload was accepted in {self.num_rounds} round(s)"
                + (f": {why_not}" if why_not else "")
            )

    # ------------------------------------------------------------------ results

    def result_back(self) -> nn.Module:
        """A copy of the back the run keeps: the best by validation, or the last one."""
        back = copy.deepcopy(self.trainer.back)
        back.load_state_dict(self._best_state)
        return back.eval()

    def result_state(self) -> dict[str, torch.Tensor]:
        """State dict (on the CPU) of the back the run keeps."""
        return {k: v.clone() for k, v in self._best_state.items()}

    @property
    def best_report(self) -> RoundReport | None:
        """The report of the kept round (None before any round)."""
        return next((r for r in self.reports if r.round == self.best_round), None)

    def reset_best(self) -> None:
        """Forget the best back: the current weights become the kept ones (e.g. after loading
        initial weights into the back)."""
        self.best_round, self.best_val_accuracy = 0, None
        self._best_state = cpu_state(self.trainer.back)

    # ------------------------------------------------------------------ state

    def settings(self) -> dict[str, Any]:
        """The settings that decide this server's results (:func:`server_settings`)."""
        return server_settings(self)

    def state(self) -> ServerState:
        """The server's whole state between rounds (:func:`save_state`)."""
        return save_state(self)

    def load_state(self, state: ServerState) -> None:
        """Make this server what :meth:`state` saw (:func:`restore_state`); the next round is
        ``state.round + 1``."""
        restore_state(self, state)

    # ------------------------------------------------------------------ internals

    def _holdout_rows(self, client: str, n: int) -> np.ndarray:
        return holdout_rows(n, self.validation_fraction, self.seed, client)

    def _update_best(self, current: RoundReport) -> None:
        val = current.val_accuracy
        if self.keep == "last" or (val is None and self.best_val_accuracy is None):
            better = True
        else:
            better = val is not None and (
                self.best_val_accuracy is None or val > self.best_val_accuracy
            )
        if better:
            self.best_round, self.best_val_accuracy = current.round, val
            self._best_state = cpu_state(self.trainer.back)
