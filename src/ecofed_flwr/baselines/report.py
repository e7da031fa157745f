"""Accounting of a run: bytes from the ledger, measured compute, estimated wall-clock time.

Every protocol's run is reduced to one :class:`RoundLog` per round (accuracy and measured
compute) plus a Ledger (bytes of every message); :func:`account_run` turns them into the
harness's results document with a :class:`TimeModel`'s estimate of each round's duration.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ecofed_flwr.baselines.server_speed import GpuServerModel
from ecofed_flwr.ledger import PURPOSES, BandwidthModel, Ledger

#: Default device slowdown: a Raspberry-Pi-4-class device against one core of this machine.
RPI4_SLOWDOWN = 15.0
RPI4_SLOWDOWN_SOURCE = (
    "Raspberry Pi 4 (4x Cortex-A72, 1.5 GHz) against one core of a current x86 server "
    "(the device compute here is timed on one thread). The Pi 4 sustains about 8 GFLOP/s "
    "in HPL (fp64, all four cores; B. Feiereisen, 'Benchmarking the Raspberry Pi 4 with "
    "Raspberry Pi OS64', 2022), so at most about 2x that in fp32 and well under peak for "
    "small-batch CNN training in PyTorch; one x86 server core sustains about 30-100 GFLOP/s "
    "fp32 in GEMM (this run's host: see host_gemm_gflops). Training-throughput ratios of "
    "10-20x follow; 15x is the middle. An estimate, not a measurement on a Pi: rescale "
    "with device_slowdown."
)

#: Reply metrics that count as device compute (FL's training, EcoFed's front and encoding).
DEVICE_SECONDS_KEYS = ("train-seconds", "front-seconds", "encode-seconds")


@dataclass
class RoundLog:
    """Measured facts of one round of any protocol (bytes are in the ledger).

    Attributes
    ----------
    round : int
    accuracy, loss : float | None
        Test evaluation of the global model after the round, where a run scores the test
        set every round (reported, never used to choose anything); None where the test set
        is scored once, at the selected round (see :func:`account_run`).
    device_seconds : dict[str, float]
        Measured device compute per client that worked this round.
    server_seconds : float
        Measured server compute that no device waits on during its own work (aggregation,
        EcoFed's back-end training, local-loss DPFL's server steps).
    wall_seconds : float
        Wall-clock time of the round in this simulation.
    val_accuracy, val_loss : float | None
        Accuracy and mean loss on the training data's validation hold-out (they drive
        model selection and the time to a target).
    blocking_server_seconds : dict[str, float]
        Server compute a client waits for in the middle of its work (vanilla DPFL's
        gradient), per client.
    blocking_server_steps : dict[str, int]
        The SGD steps of that compute, per client.
    server_train_seconds : float
        The part of ``server_seconds`` spent in back-end SGD steps.
    server_steps : int
        Those steps (for a model of a faster server's time).
    server_batch_size : int
        Batch size of the server's SGD steps.
    extra : dict[str, Any]
        Protocol-specific facts (EcoFed: refresh, samples uploaded, its own byte counts).
    """

    round: int
    device_seconds: dict[str, float]
    server_seconds: float
    wall_seconds: float
    accuracy: float | None = None
    loss: float | None = None
    val_accuracy: float | None = None
    val_loss: float | None = None
    blocking_server_seconds: dict[str, float] = field(default_factory=dict)
    blocking_server_steps: dict[str, int] = field(default_factory=dict)
    server_train_seconds: float = 0.0
    server_steps: int = 0
    server_batch_size: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TimeModel:
    """Turns measured compute and ledger bytes into an estimated round duration.

    A round lasts ``max over clients (device_slowdown * device compute + transfer time +
    blocking server compute) + other server compute``: devices work in parallel; each one's
    messages cross its own link one after the other (the ledger's
    :class:`~ecofed_flwr.ledger.BandwidthModel`, with a latency per message); the server's
    other compute is not overlapped with device work.

    Two server columns: ``estimated_seconds`` puts the server on this machine (its compute
    as measured); ``estimated_seconds_gpu`` replaces every server SGD step by the time
    ``gpu_server`` gives it (other server compute, such as averaging, stays as measured).

    Parameters
    ----------
    bandwidth : BandwidthModel (default: 10 Mbit/s up, 50 Mbit/s down, 50 ms per message)
    device_slowdown : float (default: RPI4_SLOWDOWN = 15)
        Device compute time = this factor x the compute measured here.
    slowdown_source : str
        Where the factor comes from (stated in every results document).
    gpu_server : GpuServerModel, optional
        Time of one server SGD step on a GPU server; without it the GPU column is absent.
    """

    bandwidth: BandwidthModel = field(default_factory=BandwidthModel)
    device_slowdown: float = RPI4_SLOWDOWN
    slowdown_source: str = RPI4_SLOWDOWN_SOURCE
    gpu_server: GpuServerModel | None = None

    def __post_init__(self) -> None:
        if self.device_slowdown <= 0:
            raise ValueError(f"device_slowdown must be > 0, got {self.device_slowdown}")

    def round_seconds(self, ledger: Ledger, log: RoundLog) -> dict[str, float]:
        """Estimated duration of ``log``'s round (both server columns) and its parts."""
        out = self._estimate(ledger, log, gpu=False)
        if self.gpu_server is not None:
            gpu = self._estimate(ledger, log, gpu=True)
            out.update({f"{k}_gpu": v for k, v in gpu.items()})
        return out

    def _estimate(self, ledger: Ledger, log: RoundLog, gpu: bool) -> dict[str, float]:
        return self.estimate_round(
            client_facts(ledger, log),
            log.server_seconds,
            log.server_train_seconds,
            log.server_steps,
            log.server_batch_size,
            gpu,
        )

    def estimate_round(
        self,
        facts: dict[str, dict[str, float]],
        server_seconds: float,
        server_train_seconds: float = 0.0,
        server_steps: int = 0,
        server_batch_size: int = 0,
        gpu: bool = False,
    ) -> dict[str, float]:
        """A round's estimated duration and its parts from its :func:`client_facts`.

        Works on stored figures alone, so a report can price stored runs under other
        bandwidths and device factors without running them again.
        """
        device, transfer, critical = 0.0, 0.0, 0.0
        bw = self.bandwidth
        for fact in facts.values():
            c_device = self.device_slowdown * fact["device_seconds"]
            c_transfer = 0.0
            for d in ("up", "down"):
                if fact[f"messages_{d}"]:
                    nbytes, messages = int(fact[f"bytes_{d}"]), int(fact[f"messages_{d}"])
                    c_transfer += bw.seconds(nbytes, d, messages)
            if gpu and self.gpu_server is not None:
                steps = fact["blocking_server_steps"]
                c_wait = steps * self.gpu_server.step_seconds(server_batch_size)
            else:
                c_wait = fact["blocking_server_seconds"]
            if c_device + c_transfer + c_wait >= critical:
                device, transfer, critical = c_device, c_transfer, c_device + c_transfer + c_wait
        server = server_seconds
        if gpu and self.gpu_server is not None:
            train = server_steps * self.gpu_server.step_seconds(server_batch_size)
            server = server_seconds - server_train_seconds + train
        return {
            "estimated_seconds": critical + server,
            "estimated_device_seconds": device,
            "estimated_transfer_seconds": transfer,
            "estimated_server_seconds": server + (critical - device - transfer),
        }

    def describe(self) -> dict[str, Any]:
        """The model's assumptions, for the results document."""
        return {
            "uplink_mbps": self.bandwidth.uplink_mbps,
            "downlink_mbps": self.bandwidth.downlink_mbps,
            "latency_s_per_message": self.bandwidth.latency_s,
            "device_slowdown": self.device_slowdown,
            "device_slowdown_source": self.slowdown_source,
            "gpu_server": None if self.gpu_server is None else self.gpu_server.describe(),
            "formula": (
                "round = max over clients (device_slowdown * device compute + transfer + "
                "server compute the client waits for) + other server compute; transfer = "
                "bytes / rate + latency per message, up and down one after the other; "
                "server compute as measured here (estimated_seconds) or with every server "
                "SGD step at the GPU model's step time (estimated_seconds_gpu)"
            ),
        }


def client_facts(ledger: Ledger, log: RoundLog) -> dict[str, dict[str, float]]:
    """What each client of ``log``'s round did: compute, bytes and messages each way.

    ``device_seconds`` (measured device compute), ``blocking_server_seconds`` and
    ``blocking_server_steps`` (server work the client waits for mid-round), and
    ``bytes_up`` / ``bytes_down`` / ``messages_up`` / ``messages_down`` from the ledger:
    all :meth:`TimeModel.estimate_round` needs.
    """
    sums: dict[str, dict[str, float]] = defaultdict(
        lambda: {"bytes_up": 0, "bytes_down": 0, "messages_up": 0, "messages_down": 0}
    )
    for record in ledger.records:
        if record.round == log.round:
            fact = sums[record.client]
            fact[f"bytes_{record.direction}"] += record.nbytes
            fact[f"messages_{record.direction}"] += record.messages
    clients = set(log.device_seconds) | set(log.blocking_server_seconds) | set(sums)
    return {
        client: {
            "device_seconds": log.device_seconds.get(client, 0.0),
            "blocking_server_seconds": log.blocking_server_seconds.get(client, 0.0),
            "blocking_server_steps": log.blocking_server_steps.get(client, 0),
            **sums[client],
        }
        for client in sorted(clients)
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def selected_round(rounds: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The round a run keeps: the first with the best validation accuracy.

    Without validation figures, the last round. Every protocol is selected this way, so a
    comparison never looks at the test set to choose a round.
    """
    scored = [r for r in rounds if r.get("val_accuracy") is not None]
    if not scored:
        return rounds[-1] if rounds else None
    best = max(r["val_accuracy"] for r in scored)
    return next(r for r in scored if r["val_accuracy"] == best)


def validation_gain_last_fifth(rounds: Sequence[dict[str, Any]]) -> float | None:
    """Best validation accuracy of the last fifth of the rounds minus the best before it.

    The plateau test of a run: a small gain (e.g. under 0.003) says more rounds would not
    have helped much. None without validation figures or with fewer than five rounds.
    """
    values = [float(r["val_accuracy"]) for r in rounds if r.get("val_accuracy") is not None]
    if len(values) < 5 or len(values) != len(rounds):
        return None
    cut = len(values) - max(1, len(values) // 5)
    return float(max(values[cut:]) - max(values[:cut]))


@dataclass(frozen=True)
class TestScore:
    """The test set's single score of a run: the global model of ``round``."""

    round: int
    accuracy: float
    loss: float


#: What a protocol's run gives :func:`account_run`: its round logs and its single test score.
Outcome = tuple[list[RoundLog], TestScore | None]


class BestKeeper:
    """Keeps the weights of the round :func:`selected_round` will select, as a run goes.

    That is the first round with the best validation accuracy (the last round when there
    is no validation figure), so the test set can be scored once, on that round's model.
    """

    def __init__(self) -> None:
        self.round: int | None = None
        self.val_accuracy: float | None = None
        self.state: dict[str, Any] | None = None

    def offer(self, server_round: int, val_accuracy: float | None, state: dict[str, Any]) -> None:
        """Consider round ``server_round``; copy ``state`` (a state dict) if it is better."""
        if val_accuracy is not None and not math.isfinite(val_accuracy):
            val_accuracy = None
        if val_accuracy is None:
            better = self.val_accuracy is None
        else:
            better = self.val_accuracy is None or val_accuracy > self.val_accuracy
        if better:
            self.round, self.val_accuracy = server_round, val_accuracy
            self.state = {k: v.detach().cpu().clone() for k, v in state.items()}


def account_run(
    protocol: str,
    config: dict[str, Any],
    logs: Sequence[RoundLog],
    ledger: Ledger,
    time_model: TimeModel,
    clients_per_round: int,
    target_accuracy: float | None = None,
    extra: dict[str, Any] | None = None,
    test: TestScore | None = None,
) -> dict[str, Any]:
    """The harness's results document of one run.

    Per round: validation accuracy and loss, bytes by direction and purpose, message
    counts, what each client did (:func:`client_facts`), measured device and server compute
    and the estimated duration; totals; the round selected on validation
    (:func:`selected_round`) and its test score ``test`` (the test set is scored once, at
    that round; a run that scored it every round gives no ``test`` and the selected round's
    own figure is used); and, when ``target_accuracy`` is given, the first round whose
    *validation* accuracy reaches it, with the bytes and estimated time until then.

    Raises
    ------
    ValueError
        If ``test`` scores another round than the selected one.
    """
    by_round = ledger.by_round()
    # One ledger per round: the per-client sums below then scan one round's records only.
    round_ledgers: dict[int, Ledger] = defaultdict(Ledger)
    for record in ledger.records:
        round_ledgers[record.round].records.append(record)
    rounds: list[dict[str, Any]] = []
    cumulative_bytes, cumulative_seconds, cumulative_gpu = 0, 0.0, 0.0
    for log in logs:
        sizes = by_round.get(log.round, {})
        round_ledger = round_ledgers[log.round]
        estimate = time_model.round_seconds(round_ledger, log)
        nbytes = sizes.get("up", 0) + sizes.get("down", 0)
        cumulative_bytes += nbytes
        cumulative_seconds += estimate["estimated_seconds"]
        cumulative_gpu += estimate.get("estimated_seconds_gpu", 0.0)
        gpu = {"cumulative_estimated_seconds_gpu": cumulative_gpu} if time_model.gpu_server else {}
        rounds.append(
            {
                "round": log.round,
                "accuracy": _finite(log.accuracy),
                "val_accuracy": _finite(log.val_accuracy),
                "val_loss": _finite(log.val_loss),
                "loss": _finite(log.loss),
                "clients": len(log.device_seconds),
                "bytes_up": sizes.get("up", 0),
                "bytes_down": sizes.get("down", 0),
                "bytes": {
                    f"{d}_{p}": sizes.get(f"{d}_{p}", 0) for d in ("up", "down") for p in PURPOSES
                },
                "messages_up": round_ledger.messages("up"),
                "messages_down": round_ledger.messages("down"),
                "device_seconds": log.device_seconds,
                "device_seconds_max": max(log.device_seconds.values(), default=0.0),
                "client_facts": client_facts(round_ledger, log),
                "server_seconds": log.server_seconds + sum(log.blocking_server_seconds.values()),
                "nonblocking_server_seconds": log.server_seconds,
                "server_train_seconds": log.server_train_seconds,
                "server_steps": log.server_steps + sum(log.blocking_server_steps.values()),
                "nonblocking_server_steps": log.server_steps,
                "server_batch_size": log.server_batch_size,
                "wall_seconds": log.wall_seconds,
                **estimate,
                "cumulative_bytes": cumulative_bytes,
                "cumulative_estimated_seconds": cumulative_seconds,
                **gpu,
                **log.extra,
            }
        )
    purposes: dict[str, int] = defaultdict(int)
    for record in ledger.records:
        purposes[f"{record.direction}_{record.purpose}"] += record.nbytes
    total_bytes = ledger.total()
    reached = next(
        (
            r
            for r in rounds
            if target_accuracy is not None and (r["val_accuracy"] or 0) >= target_accuracy
        ),
        None,
    )
    selected = selected_round(rounds)
    if test is not None and (selected is None or test.round != selected["round"]):
        raise ValueError(
            f"the test set scored round {test.round}, but validation selects "
            f"{selected['round'] if selected else None}"
        )
    if test is None:
        test_accuracy = selected["accuracy"] if selected else None
        test_loss = selected["loss"] if selected else None
    else:
        test_accuracy, test_loss = _finite(test.accuracy), _finite(test.loss)
    return {
        "protocol": protocol,
        "config": config,
        "clients_per_round": clients_per_round,
        "time_model": time_model.describe(),
        "rounds": rounds,
        "selected_round": selected["round"] if selected else None,
        "selected_val_accuracy": selected["val_accuracy"] if selected else None,
        "selected_accuracy": test_accuracy,
        "selected_test_loss": test_loss,
        "test_scored_once": test is not None,
        "best_val_accuracy": max(
            (r["val_accuracy"] for r in rounds if r["val_accuracy"] is not None), default=None
        ),
        "validation_gain_last_fifth": validation_gain_last_fifth(rounds),
        "totals": {
            "bytes": total_bytes,
            "bytes_up": ledger.total("up"),
            "bytes_down": ledger.total("down"),
            "bytes_by_purpose": dict(sorted(purposes.items())),
            "messages": ledger.messages(),
            "mean_bytes_per_client_round": (
                total_bytes / (len(rounds) * clients_per_round) if rounds else 0.0
            ),
            "device_seconds": sum(sum(r["device_seconds"].values()) for r in rounds),
            "server_seconds": sum(r["server_seconds"] for r in rounds),
            "wall_seconds": sum(r["wall_seconds"] for r in rounds),
            "estimated_seconds": cumulative_seconds,
            **({"estimated_seconds_gpu": cumulative_gpu} if time_model.gpu_server else {}),
        },
        "target_accuracy": target_accuracy,
        "target_on": "val_accuracy",
        "rounds_to_target": reached["round"] if reached else None,
        "bytes_to_target": reached["cumulative_bytes"] if reached else None,
        "estimated_seconds_to_target": reached["cumulative_estimated_seconds"] if reached else None,
        "estimated_seconds_gpu_to_target": (
            reached.get("cumulative_estimated_seconds_gpu") if reached else None
        ),
        **(extra or {}),
        "ledger": [asdict(r) for r in ledger.records],
    }
