"""compare: every protocol on Fashion-MNIST, tuned alike, to convergence, resumable.

Protocols (one harness, same data, partition, model, seeds, sampling, validation hold-out,
test set, thread count, memory format and byte accounting): ``fl``, ``fl-back``, ``dpfl``,
``lgl``, ``ecofed-paper``, ``ecofed-best`` and the references ``central`` and
``central-frozen``. Learning rate and batch size of every protocol come from one grid, chosen
by validation accuracy (the training data's hold-out, never the test set) on the IID
partition with the first seed; then every protocol runs with its choice on every seed, IID
and Dirichlet(0.1).

Each finished run is written at once to ``<out>/runs/<run id>.json``; a rerun of the same
command skips finished runs, so an interrupted benchmark resumes where it stopped::

    nohup .venv/bin/python benchmarks/compare.py > benchmarks/results/compare/run.log 2>&1 &

``--report`` writes the tables and plots from the runs stored so far (also done at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ecofed_flwr.baselines import GpuServerModel, Setting, TimeModel, host_speed, run_protocol
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.ledger import BandwidthModel
from ecofed_flwr.models import create_split

HERE = Path(__file__).parent
OUT = HERE / "results" / "compare"
#: In the order they run: the two the goals compare first, the references last.
PROTOCOLS = (
    "ecofed-best",
    "fl",
    "ecofed-paper",
    "central-frozen",
    "fl-back",
    "dpfl",
    "lgl",
    "central",
)
PARTITIONS = {"iid": "iid", "non-iid": "dirichlet:0.1"}
HOST_TOLERANCE = 0.20  # a run whose host speed is further from the reference is flagged

#: The scale and grid of the benchmark (see README: why this scale).
SCALE: dict[str, Any] = {
    "clients": 10,
    "samples-per-client": 250,
    "fraction-train": 0.5,
    "rounds": 24,
    "test-samples": 2000,
    "seeds": [0, 1],
    "learning-rates": [0.01, 0.05, 0.1],
    "batch-sizes": [32, 64],
    "threads": 1,
}


@dataclass(frozen=True)
class RunSpec:
    """One run of the plan."""

    phase: str  # "tune" or "final"
    partition: str
    protocol: str
    learning_rate: float
    batch_size: int
    seed: int

    @property
    def run_id(self) -> str:
        return (
            f"{self.partition}-{self.protocol}-lr{self.learning_rate:g}-b{self.batch_size}"
            f"-s{self.seed}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (1 per core)")
    parser.add_argument("--report", action="store_true", help="only write the report")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--scale", type=json.loads, default={}, help="JSON changes to SCALE (smoke tests)"
    )
    parser.add_argument("--protocols", nargs="*", default=list(PROTOCOLS))
    args = parser.parse_args()
    out: Path = args.out
    if args.report:  # from whatever the folder holds, at its own scale
        from compare_report import write_report

        write_report(out)
        return
    (out / "runs").mkdir(parents=True, exist_ok=True)
    scale = _scale(out, {**SCALE, **args.scale})
    if args.worker:
        _work(out, scale, args.protocols)
        return
    reference = _reference(out)
    print(f"host reference {reference['gemm_gflops']:.1f} GFLOP/s (1 thread)", flush=True)
    if args.jobs <= 1:
        _work(out, scale, args.protocols)
    else:
        command = [sys.executable, __file__, "--worker", "--out", str(out)]
        command += ["--protocols", *args.protocols]
        workers = [subprocess.Popen(command) for _ in range(args.jobs)]
        for worker in workers:
            worker.wait()
    from compare_report import write_report

    write_report(out)


# ---------------------------------------------------------------- plan and state


def _scale(out: Path, scale: dict[str, Any]) -> dict[str, Any]:
    """The scale stored with the runs; a resume must not change it."""
    path = out / "scale.json"
    if path.exists():
        stored: dict[str, Any] = json.loads(path.read_text())
        if stored != scale:
            raise SystemExit(f"{path} holds another scale: {stored}; use another --out")
        return stored
    _write(path, scale)
    return scale


def _reference(out: Path) -> dict[str, Any]:
    """The host speed at the benchmark's first start (kept across resumes)."""
    path = out / "host_reference.json"
    if path.exists():
        reference: dict[str, Any] = json.loads(path.read_text())
        return reference
    reference = host_speed(probes=9)
    _write(path, reference)
    return reference


def _write(path: Path, doc: Any) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a file


def _load(path: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return doc


def tuning_runs(scale: dict[str, Any], protocols: list[str]) -> list[RunSpec]:
    """The grid of every protocol: IID, first seed."""
    return [
        RunSpec("tune", "iid", p, lr, b, scale["seeds"][0])
        for p in protocols
        for lr in scale["learning-rates"]
        for b in scale["batch-sizes"]
    ]


def choice(out: Path, scale: dict[str, Any], protocol: str) -> tuple[float, int] | None:
    """The (learning rate, batch size) of ``protocol`` with the best validation accuracy.

    None until every grid point of the protocol has finished.
    """
    best: tuple[float, float, int] | None = None
    for spec in tuning_runs(scale, [protocol]):
        doc = _load(out / "runs" / f"{spec.run_id}.json")
        if doc is None or doc.get("retry"):
            return None
        val = doc["selected_val_accuracy"]
        score = -1.0 if val is None else float(val)
        if best is None or score > best[0]:
            best = (score, spec.learning_rate, spec.batch_size)
    return None if best is None else (best[1], best[2])


def final_runs(out: Path, scale: dict[str, Any], protocol: str) -> list[RunSpec]:
    """Every seed and partition with the protocol's choice (empty until it is known)."""
    chosen = choice(out, scale, protocol)
    if chosen is None:
        return []
    return [
        RunSpec("final", part, protocol, chosen[0], chosen[1], seed)
        for seed in scale["seeds"]
        for part in PARTITIONS
    ]


# ---------------------------------------------------------------- running


def _work(out: Path, scale: dict[str, Any], protocols: list[str]) -> None:
    torch.set_num_threads(scale["threads"])
    reference = _reference(out)
    time_model = _time_model()
    failed: set[str] = set()  # runs that raised in this process: left for a later resume
    while True:
        # Protocol by protocol: its grid, then its other seeds and partitions.
        pending = [
            s
            for p in protocols
            for s in tuning_runs(scale, [p]) + final_runs(out, scale, p)
            if _needs_run(out, s) and s.run_id not in failed
        ]
        if not pending:
            waiting = [p for p in protocols if choice(out, scale, p) is None]
            if not waiting or failed:
                return  # done, or blocked on a failed run (see its .failed.txt)
            time.sleep(20)  # another worker is finishing a grid point
            continue
        spec = next((s for s in pending if _claim(out, s)), None)
        if spec is None:
            time.sleep(20)
            continue
        try:
            _run(out, scale, spec, time_model, reference)
        except Exception:  # one broken run must not stop the others
            failed.add(spec.run_id)
            report = out / "runs" / f"{spec.run_id}.failed.txt"
            report.write_text(traceback.format_exc())
            print(f"  FAILED: {spec.run_id}; see {report}", flush=True)
        finally:
            (out / "runs" / f"{spec.run_id}.claim").unlink(missing_ok=True)


def _needs_run(out: Path, spec: RunSpec) -> bool:
    doc = _load(out / "runs" / f"{spec.run_id}.json")
    return doc is None or bool(doc.get("retry"))


def _claim(out: Path, spec: RunSpec) -> bool:
    """Take ``spec`` for this process unless a live process has it."""
    path = out / "runs" / f"{spec.run_id}.claim"
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            os.kill(int(path.read_text() or 0), 0)
            return False
        except (ProcessLookupError, ValueError):
            path.unlink(missing_ok=True)  # its process is gone: a stale claim
            return _claim(out, spec)
    with os.fdopen(fd, "w") as handle:
        handle.write(str(os.getpid()))
    return True


def _time_model() -> TimeModel:
    split = create_split("tf_efficientnet_lite0", "stage3", "imagenet", 10, 32)
    vgg = create_split("vgg11_cifar", "block2", "random", 10, 32)
    gpu = GpuServerModel.h200_for(
        split.back, split.activation_shape, vgg.back, vgg.activation_shape
    )
    bandwidth = BandwidthModel(uplink_mbps=10, downlink_mbps=50, latency_s=0.05)
    return TimeModel(bandwidth, gpu_server=gpu)


def _run(
    out: Path,
    scale: dict[str, Any],
    spec: RunSpec,
    time_model: TimeModel,
    reference: dict[str, Any],
) -> None:
    path = out / "runs" / f"{spec.run_id}.json"
    earlier = _load(path)
    config = EcoFedConfig.from_mapping(
        {
            "partitioning": PARTITIONS[spec.partition],
            "samples-per-client": scale["samples-per-client"],
            "test-samples": scale["test-samples"],
            "num-server-rounds": scale["rounds"],
            "seed": spec.seed,
            "output-dir": str(Path("outputs/compare").resolve() / spec.partition),
        }
    )
    setting = Setting(
        config=config,
        num_clients=scale["clients"],
        time_model=time_model,
        threads=scale["threads"],
        engine="loopback",
    )
    # What every contender shares, after its preset: sampling, hold-out, the tuned values.
    overrides = {
        "fraction-train": scale["fraction-train"],
        "validation-fraction": 0.1,
        "learning-rate": spec.learning_rate,
        "batch-size": spec.batch_size,
    }
    print(f"[{time.strftime('%H:%M:%S')}] {spec.run_id} ({spec.phase})", flush=True)
    doc = run_protocol(spec.protocol, setting, overrides, label=spec.run_id)
    speed = (doc["host_before"]["gemm_gflops"] + doc["host_after"]["gemm_gflops"]) / 2
    deviation = speed / reference["gemm_gflops"] - 1
    attempts = 1 + (earlier or {}).get("attempts", 0)
    flagged = abs(deviation) > HOST_TOLERANCE
    result = _compact(doc)
    result.update(
        run_id=spec.run_id,
        phase=spec.phase,
        partition=spec.partition,
        host_speed_deviation=deviation,
        host_flagged=flagged,
        attempts=attempts,
        retry=flagged and attempts < 2,  # flagged once: run again; twice: keep, flagged
        earlier_attempt=None if earlier is None else _attempt_summary(earlier),
    )
    _write(path, result)
    print(
        f"  done: selected acc {doc['selected_accuracy']}, val {doc['selected_val_accuracy']}, "
        f"{doc['harness_seconds']:.0f} s, host {speed:.0f} GFLOP/s ({100 * deviation:+.0f} %)"
        f"{' FLAGGED' if flagged else ''}, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )


def _attempt_summary(doc: dict[str, Any]) -> dict[str, Any]:
    keys = ("selected_accuracy", "host_speed_deviation", "harness_seconds", "host_before")
    return {k: doc.get(k) for k in keys}


ROUND_KEYS = (
    "round",
    "accuracy",
    "val_accuracy",
    "loss",
    "clients",
    "bytes_up",
    "bytes_down",
    "messages_up",
    "messages_down",
    "device_seconds_max",
    "server_seconds",
    "server_steps",
    "wall_seconds",
    "estimated_seconds",
    "estimated_seconds_gpu",
    "cumulative_bytes",
    "cumulative_estimated_seconds",
    "cumulative_estimated_seconds_gpu",
    "refresh",
    "train_samples",
)


def _compact(doc: dict[str, Any]) -> dict[str, Any]:
    """The run's document without the per-message ledger and per-client details."""
    out = {k: v for k, v in doc.items() if k != "ledger"}
    out["rounds"] = [
        {k: r[k] for k in ROUND_KEYS if k in r}
        | {f"bytes_{k}": v for k, v in r.get("bytes", {}).items() if v}
        | {"device_seconds_sum": sum(r.get("device_seconds", {}).values())}
        for r in doc["rounds"]
    ]
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
