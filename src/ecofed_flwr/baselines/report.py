"""Accounting of a run: bytes from the ledger, measured compute, estimated wall-clock time.

Every protocol's run is reduced to one :class:`RoundLog` per round (accuracy and measured
compute) plus a Ledger (bytes of every message); :func:`summarize` turns them into the
harness's results document with a :class:`TimeModel`'s estimate of each round's duration.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

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
        Central evaluation of the global model after the round.
    device_seconds : dict[str, float]
        Measured device compute per client that worked this round.
    server_seconds : float
        Measured server compute that no device waits on during its own work (aggregation,
        EcoFed's back-end training, local-loss DPFL's server steps).
    blocking_server_seconds : dict[str, float]
        Server compute a client waits for in the middle of its work (vanilla DPFL's
        gradient), per client.
    wall_seconds : float
        Wall-clock time of the round in this simulation.
    extra : dict[str, Any]
        Protocol-specific facts (EcoFed: refresh, samples uploaded, its own byte counts).
    """

    round: int
    accuracy: float | None
    loss: float | None
    device_seconds: dict[str, float]
    server_seconds: float
    wall_seconds: float
    blocking_server_seconds: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TimeModel:
    """Turns measured compute and ledger bytes into an estimated round duration.

    A round lasts ``max over clients (device_slowdown * device compute + transfer time +
    blocking server compute) / + server compute / server_speedup``: devices work in
    parallel; each one's messages cross its own link one after the other (the ledger's
    :class:`~ecofed_flwr.ledger.BandwidthModel`, with a latency per message); the server's
    other compute is not overlapped with device work.

    Parameters
    ----------
    bandwidth : BandwidthModel (default: 10 Mbit/s up, 50 Mbit/s down, 50 ms per message)
    device_slowdown : float (default: RPI4_SLOWDOWN = 15)
        Device compute time = this factor x the compute measured here on one thread.
    slowdown_source : str
        Where the factor comes from (stated in every results document).
    server_speedup : float (default: 1.0)
        Server compute time = the compute measured here / this factor (1: this machine).
    """

    bandwidth: BandwidthModel = field(default_factory=BandwidthModel)
    device_slowdown: float = RPI4_SLOWDOWN
    slowdown_source: str = RPI4_SLOWDOWN_SOURCE
    server_speedup: float = 1.0

    def __post_init__(self) -> None:
        if self.device_slowdown <= 0 or self.server_speedup <= 0:
            raise ValueError(
                "device_slowdown and server_speedup must be > 0, got "
                f"{self.device_slowdown}, {self.server_speedup}"
            )

    def round_seconds(self, ledger: Ledger, log: RoundLog) -> dict[str, float]:
        """Estimated duration of ``log``'s round and its critical client's parts."""
        clients = set(log.device_seconds) | set(log.blocking_server_seconds)
        clients |= {r.client for r in ledger.records if r.round == log.round}
        device, transfer, critical = 0.0, 0.0, 0.0
        for client in clients:
            c_device = self.device_slowdown * log.device_seconds.get(client, 0.0)
            c_transfer = self.bandwidth.client_round_seconds(ledger, log.round, client)
            c_wait = log.blocking_server_seconds.get(client, 0.0) / self.server_speedup
            if c_device + c_transfer + c_wait >= critical:
                device, transfer, critical = c_device, c_transfer, c_device + c_transfer + c_wait
        server = log.server_seconds / self.server_speedup
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
            "server_speedup": self.server_speedup,
            "formula": (
                "round = max over clients (device_slowdown * device compute + transfer + "
                "server compute the client waits for) + other server compute / "
                "server_speedup; transfer = bytes / rate + latency per message, up and "
                "down one after the other"
            ),
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def summarize(
    protocol: str,
    config: dict[str, Any],
    logs: Sequence[RoundLog],
    ledger: Ledger,
    time_model: TimeModel,
    clients_per_round: int,
    target_accuracy: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The harness's results document of one run.

    Per round: accuracy, bytes by direction and purpose, message counts, measured device
    and server compute, and the estimated duration; totals; and, when ``target_accuracy``
    is given, the first round that reaches it with the bytes and estimated time until then.
    """
    by_round = ledger.by_round()
    # One ledger per round: the per-client sums below then scan one round's records only.
    round_ledgers: dict[int, Ledger] = defaultdict(Ledger)
    for record in ledger.records:
        round_ledgers[record.round].records.append(record)
    rounds: list[dict[str, Any]] = []
    cumulative_bytes, cumulative_seconds = 0, 0.0
    for log in logs:
        sizes = by_round.get(log.round, {})
        round_ledger = round_ledgers[log.round]
        estimate = time_model.round_seconds(round_ledger, log)
        nbytes = sizes.get("up", 0) + sizes.get("down", 0)
        cumulative_bytes += nbytes
        cumulative_seconds += estimate["estimated_seconds"]
        rounds.append(
            {
                "round": log.round,
                "accuracy": _finite(log.accuracy),
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
                "server_seconds": log.server_seconds + sum(log.blocking_server_seconds.values()),
                "wall_seconds": log.wall_seconds,
                **estimate,
                "cumulative_bytes": cumulative_bytes,
                "cumulative_estimated_seconds": cumulative_seconds,
                **log.extra,
            }
        )
    purposes: dict[str, int] = defaultdict(int)
    for record in ledger.records:
        purposes[f"{record.direction}_{record.purpose}"] += record.nbytes
    total_bytes = ledger.total()
    accuracies = [r["accuracy"] for r in rounds if r["accuracy"] is not None]
    reached = next(
        (
            r
            for r in rounds
            if target_accuracy is not None and (r["accuracy"] or 0) >= target_accuracy
        ),
        None,
    )
    return {
        "protocol": protocol,
        "config": config,
        "clients_per_round": clients_per_round,
        "time_model": time_model.describe(),
        "rounds": rounds,
        "final_accuracy": rounds[-1]["accuracy"] if rounds else None,
        "best_accuracy": max(accuracies) if accuracies else None,
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
        },
        "target_accuracy": target_accuracy,
        "rounds_to_target": reached["round"] if reached else None,
        "bytes_to_target": reached["cumulative_bytes"] if reached else None,
        "estimated_seconds_to_target": reached["cumulative_estimated_seconds"] if reached else None,
        **(extra or {}),
        "ledger": [asdict(r) for r in ledger.records],
    }
