"""How EcoFed's simulation scales with the number of virtual devices (issue #15).

Runs ``ecofed run`` (Flower's simulation engine on Ray, the product's own path) with
1,000 / 10,000 / 100,000 virtual devices, 200 of them sampled per round, 2 rounds, and
measures for each: seconds per round (the server's round timings in ``results.json``), the
whole run's wall-clock time, and the peak resident memory of the server process
(``flwr-simulation``: the ServerApp with Ray's driver) and of the whole run (every process
``ecofed run`` starts: SuperLink, the server process, Ray's own processes and actors),
sampled every 0.25 s with psutil. Devices get server-assigned partitions
(``partition-assignment = "server"``: a round asks only the nodes it samples) drawn with
replacement (``partition-draw = "with-replacement"``: the same per-device data at every
size, more devices than Fashion-MNIST has images).

Usage (from the repository root, on a quiet machine: nothing else heavy may run)::

    .venv/bin/python benchmarks/scale.py                     # 1k, 10k, 100k
    .venv/bin/python benchmarks/scale.py --devices 1000 10000

Writes ``benchmarks/results/scale.json`` and ``scale.md``; prints a line per size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SAMPLED = 200
ROUNDS = 2
RUN_CONFIG = {
    "num-server-rounds": ROUNDS,
    "partition-assignment": "'server'",
    "partition-draw": "'with-replacement'",
    "samples-per-client": 20,
    "test-samples": 1000,
    "min-available-nodes": 1,
}


class PeakMemory:
    """Peak resident memory of a process tree, and of its ServerApp process, by polling."""

    def __init__(self, root: int, period: float = 0.25) -> None:
        self.root, self.period = psutil.Process(root), period
        self.peak_total = self.peak_server = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            total = server = 0
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                    cmd = " ".join(proc.cmdline())
                except psutil.Error:
                    continue
                total += rss
                if "flwr-simulation" in cmd or "flwr-serverapp" in cmd:
                    server = max(server, rss)
            self.peak_total = max(self.peak_total, total)
            self.peak_server = max(self.peak_server, server)
            self._stop.wait(self.period)


def run(devices: int, work: Path, pool: int = 0, assignment: str = "server") -> dict[str, Any]:
    """One ``ecofed run`` of ``devices`` virtual devices; its measured figures.

    ``pool`` > 0: the devices are ``num-partitions`` served by ``pool`` SuperNodes (the server
    names a device per request); 0: one simulated SuperNode per device. ``assignment =
    "node"``: node-held partitions instead (the server asks every node for its partition
    before round 1, as with real devices).
    """
    supernodes = pool or devices
    config = {
        **RUN_CONFIG,
        "fraction-train": SAMPLED / devices,
        "partition-assignment": f"'{assignment}'",
    }
    if pool:
        config["num-partitions"] = devices
    command = [
        str(ROOT / ".venv" / "bin" / "ecofed"),
        "run",
        "--app-dir",
        str(ROOT),
        "--num-supernodes",
        str(supernodes),
        "--output-root",
        str(work),
        "--quiet",
        "--run-config",
        " ".join(f"{k}={v}" for k, v in config.items()),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FLWR_TELEMETRY_ENABLED": "0"}
    started = time.perf_counter()
    log = work / "ecofed-run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        with PeakMemory(proc.pid) as memory:
            code = proc.wait()
    wall = time.perf_counter() - started
    results = work / "latest" / "results.json"
    if code or not results.exists():
        tail = log.read_text()[-3000:]
        raise SystemExit(f"ecofed run with {devices} devices failed (exit {code}):\n{tail}")
    doc = json.loads(results.read_text())
    rounds = doc["rounds"][1:]
    return {
        "devices": devices,
        "supernodes": supernodes,
        "assignment": assignment,
        "sampled_per_round": [len(r["sampled"]) for r in rounds],
        "round_seconds": [round(r["seconds"], 2) for r in rounds],
        "round_exchange_seconds": [round(r["exchange_seconds"], 2) for r in rounds],
        "server_app_seconds": round(doc["wall_seconds"], 1),
        "run_wall_seconds": round(wall, 1),
        "peak_rss_server_mb": round(memory.peak_server / 1e6, 1),
        "peak_rss_run_mb": round(memory.peak_total / 1e6, 1),
        "bytes_down": sum(r["bytes_down"] for r in rounds),
        "bytes_up": sum(r["bytes_up"] for r in rounds),
        "val_accuracy": doc["best_val_accuracy"],
        "status": doc["status"],
        "data_partitions": doc.get("data_partitions"),
    }


def _assignment(row: dict[str, Any]) -> str:
    return str(row.get("assignment", "server"))  # rows measured before the column: server


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| devices | SuperNodes | partitions | sampled/round | s per round (1, 2) | ServerApp s | "
        "run wall s | peak RSS server process MB | peak RSS run MB | bytes down | status |",
        "|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['devices']:,} | {r['supernodes']:,} | {_assignment(r)} | "
            f"{r['sampled_per_round'][0]} | "
            f"{', '.join(f'{s:.1f}' for s in r['round_seconds'])} | {r['server_app_seconds']} | "
            f"{r['run_wall_seconds']} | {r['peak_rss_server_mb']} | {r['peak_rss_run_mb']} | "
            f"{r['bytes_down']:,} | {r['status']} |"
        )
    if any(_assignment(r) == "node" for r in rows):
        lines.append(
            "\nnode rows: each node answers a handshake before round 1; their s per round start "
            "after it (round 1's exchange, in scale.json, holds it)"
        )
    for pooled in (False, True):
        group = [
            r
            for r in rows
            if (r["supernodes"] != r["devices"]) == pooled and _assignment(r) == "server"
        ]
        if len(group) < 2:
            continue
        base = group[0]
        for r in group[1:]:
            growth = max(r["round_seconds"][1:]) / max(base["round_seconds"][1:])
            lines.append(
                f"\n{'pool of SuperNodes' if pooled else 'one SuperNode per device'}: "
                f"{base['devices']:,} -> {r['devices']:,} devices: round 2 "
                f"{growth:.2f}x; server process peak memory "
                f"{r['peak_rss_server_mb'] / base['peak_rss_server_mb']:.2f}x"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument(
        "--pool", type=int, default=0, help="SuperNodes serving the devices (0: one each)"
    )
    parser.add_argument(
        "--assignment",
        choices=("server", "node"),
        default="server",
        help="partition-assignment (node: the handshake with every node before round 1)",
    )
    args = parser.parse_args()
    if args.pool and args.assignment == "node":
        parser.error("--pool needs server-assigned partitions (a node holds one partition)")
    host = {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "load_before": os.getloadavg(),
    }
    path = RESULTS / "scale.json"
    kept = json.loads(path.read_text())["runs"] if path.exists() else []
    rows: dict[tuple[int, int, str], dict[str, Any]] = {
        (r["devices"], r.get("supernodes", r["devices"]), _assignment(r)): r for r in kept
    }
    for devices in args.devices:
        with tempfile.TemporaryDirectory(prefix=f"ecofed-scale-{devices}-") as work:
            row = run(devices, Path(work), args.pool, args.assignment)
        row["host"] = host
        rows[(row["devices"], row["supernodes"], args.assignment)] = row
        print(json.dumps(row), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    ordered = [rows[k] for k in sorted(rows, key=lambda k: (k[2] != "server", k[1] != k[0], k[0]))]
    doc = {"run_config": RUN_CONFIG, "sampled_per_round": SAMPLED, "runs": ordered}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    (RESULTS / "scale.md").write_text(table(ordered) + "\n")
    print(table(ordered))


if __name__ == "__main__":
    main()
