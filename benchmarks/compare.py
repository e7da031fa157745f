"""compare: does EcoFed learn as well as FL, and at what fraction of the bytes and time?

Every protocol runs in one harness (``ecofed_flwr.baselines``) on the same model, data,
partitions, sampling, validation hold-out, test set, thread count (one) and memory format
(channels-last), with device and server compute timed in thread CPU time. The plan, per
partition (IID and Dirichlet(0.1)), in this order:

1. **tune**: the same small grid for every protocol that has one, on the tuning seed:
   learning rate x 3 (``fl`` and ``fl-back`` also local epochs 1 or 2), chosen on the
   validation hold-out, separately for each partition. ``ecofed-paper`` keeps the paper's
   settings; ``dpfl`` and ``central`` take ``fl``'s choice, ``central-frozen`` and the
   ``lq2-ch+zstd`` variant of ``ecofed-best`` take ``ecofed-best``'s.
2. **converge**: ``fl`` and ``ecofed-best`` with their choice and twice the rounds. If
   doubling adds 0.5 pp validation accuracy or more, the finals of that family use the
   longer budget.
3. **targets**: one accuracy per partition, the same for every protocol, fixed by
   :func:`targets` from the tuning runs and written to ``targets.json`` before any final
   run starts (they only change the report, never a run).
4. **final**: fresh seeds for ``fl``, ``ecofed-best`` (u4 and ``lq2-ch+zstd``) and
   ``ecofed-paper``; one fresh seed for the others. The test set is scored once per run,
   at the round validation selects.

Each finished run is written at once to ``<out>/runs/<run id>.json``; a rerun of the same
command skips finished runs and resumes the rest (a run stopped halfway starts again)::

    nohup .venv/bin/python benchmarks/compare.py --jobs 2 \\
        > benchmarks/results/compare/run.log 2>&1 &

``--report`` writes the tables and plots from the runs stored so far (also done at the end).
A run that fails (e.g. a sampled client failed in a round) is not a data point: its traceback
goes to ``<run id>.failed.txt``, the runs that depend on it wait, and the command exits 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ecofed_flwr import baselines
from ecofed_flwr.baselines import PRESETS, Setting, TimeModel, host_speed, run_protocol
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.ledger import BandwidthModel

HERE = Path(__file__).parent
OUT = HERE / "results" / "compare"
PARTITIONS = {"iid": "iid", "non-iid": "dirichlet:0.1"}

#: The scale of the benchmark, sized from one measured round of every protocol (see
#: benchmarks/README.md). ``config`` holds further run-config values (smoke tests).
SCALE: dict[str, Any] = {
    "clients": 10,
    "samples-per-client": 300,
    "validation-fraction": 0.2,  # 60 rows per client: 600 pooled validation rows
    "fraction-train": 0.5,
    "rounds": 12,
    "test-samples": 0,  # the full test set (10,000 images), once per run
    "tune-seed": 0,
    "final-seeds": [1, 2, 3],
    "reference-seeds": [1],
    "learning-rates": [0.01, 0.03, 0.1],
    "local-epochs": [1, 2],
    "device-batch-size": 32,
    "convergence-pp": 0.5,
    "threads": 1,
    "config": {},
}

#: Protocols with a grid, and whether local epochs are part of it.
TUNED = {"fl": True, "ecofed-best": False, "fl-back": True, "lgl": False}
#: Runs named here are a protocol with extra settings.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "ecofed-best-lq2": ("ecofed-best", {"codec": "lq2-ch+zstd"}),
}
#: Whose tuning choice a protocol without a grid takes (None: its preset's settings).
BORROWS = {
    "dpfl": "fl",
    "central": "fl",
    "central-frozen": "ecofed-best",
    "ecofed-best-lq2": "ecofed-best",
    "ecofed-paper": None,
}
#: Whose convergence verdict sets a protocol's final rounds.
FAMILY = {
    "fl": "fl",
    "fl-back": "fl",
    "dpfl": "fl",
    "lgl": "fl",
    "central": "fl",
    "ecofed-best": "ecofed-best",
    "ecofed-best-lq2": "ecofed-best",
    "ecofed-paper": "ecofed-best",
    "central-frozen": "ecofed-best",
}
#: Protocols whose finals run on every final seed; the others on the reference seeds.
MAIN = ("fl", "ecofed-best", "ecofed-best-lq2", "ecofed-paper")
#: Protocols that train on the device at the device batch size (EcoFed's keep their preset).
DEVICE_BATCH = ("fl", "fl-back", "dpfl", "lgl", "central")
#: Every protocol of the plan, in the order the report lists them: the harness's protocols
#: that have a family here (``ecofed``, the sweeps' own, has none), each followed by its
#: variants.
PROTOCOLS = tuple(
    run
    for protocol in baselines.PROTOCOLS
    if protocol in FAMILY
    for run in (protocol, *(v for v, (base, _) in VARIANTS.items() if base == protocol))
)
#: Priority: the goal's contenders first, so that a short session still answers it.
PRIORITY = (
    ("tune", "fl"),
    ("tune", "ecofed-best"),
    ("converge", "fl"),
    ("converge", "ecofed-best"),
    ("final", "fl"),
    ("final", "ecofed-best"),
    ("final", "ecofed-best-lq2"),
    ("final", "ecofed-paper"),
    ("tune", "fl-back"),
    ("tune", "lgl"),
    ("final", "central-frozen"),
    ("final", "dpfl"),
    ("final", "fl-back"),
    ("final", "lgl"),
    ("final", "central"),
)


@dataclass(frozen=True)
class RunSpec:
    """One run of the plan."""

    phase: str  # "tune", "converge" or "final"
    partition: str
    protocol: str  # a harness protocol or a VARIANTS name
    learning_rate: float | None  # None: the preset's
    local_epochs: int
    rounds: int
    seed: int

    @property
    def run_id(self) -> str:
        lr = "preset" if self.learning_rate is None else f"{self.learning_rate:g}"
        return (
            f"{self.partition}-{self.protocol}-lr{lr}-e{self.local_epochs}-r{self.rounds}"
            f"-s{self.seed}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (1 per core)")
    parser.add_argument("--report", action="store_true", help="only write the report")
    parser.add_argument("--plan", action="store_true", help="print the plan and its state")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--since", type=float, default=None, help=argparse.SUPPRESS)
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
    unknown = sorted(set(args.protocols) - set(PROTOCOLS))
    if unknown:
        raise SystemExit(f"unknown protocols {unknown}; known: {', '.join(PROTOCOLS)}")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    scale = _scale(out, {**SCALE, **args.scale})
    if args.plan:
        for spec, state in plan_state(out, scale, args.protocols):
            print(f"{state:9s} {spec.phase:8s} {spec.run_id}")
        return
    since = args.since if args.since is not None else time.time()
    if args.worker:
        _work(out, scale, args.protocols, since)
        return
    reference = _reference(out)
    print(f"host reference {reference['gemm_gflops']:.1f} GFLOP/s (1 thread)", flush=True)
    codes = []
    if args.jobs <= 1:
        _work(out, scale, args.protocols, since)
    else:
        command = worker_command(out, args.scale, args.protocols, since)
        workers = [subprocess.Popen(command) for _ in range(args.jobs)]
        codes = [worker.wait() for worker in workers]
    from compare_report import write_report

    write_report(out)
    failed = _failed_since(out, since)
    states = [state for _, state in plan_state(out, scale, args.protocols)]
    done = states.count("done")
    print(f"{done} of {len(states)} planned runs stored", flush=True)
    if any(codes) or failed or done < len(states):
        print(
            f"INCOMPLETE: workers exited {codes}; failed runs: {failed or 'none'}; "
            f"{len(states) - done} runs not stored",
            flush=True,
        )
        raise SystemExit(1)


def worker_command(
    out: Path, scale_changes: dict[str, Any], protocols: list[str], since: float
) -> list[str]:
    """The command line of one worker process: the same folder, scale and protocols."""
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--out",
        str(out),
        "--scale",
        json.dumps(scale_changes),
        "--since",
        repr(since),
        "--protocols",
        *protocols,
    ]


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


def _run_doc(out: Path, spec: RunSpec) -> dict[str, Any] | None:
    return _load(out / "runs" / f"{spec.run_id}.json")


def tuning_runs(scale: dict[str, Any], partition: str, protocol: str) -> list[RunSpec]:
    """The grid of ``protocol`` on ``partition`` (tuning seed)."""
    epochs = scale["local-epochs"] if TUNED[protocol] else [1]
    return [
        RunSpec("tune", partition, protocol, lr, e, scale["rounds"], scale["tune-seed"])
        for lr in scale["learning-rates"]
        for e in epochs
    ]


def choice(out: Path, scale: dict[str, Any], partition: str, protocol: str) -> RunSpec | None:
    """The grid point of ``protocol`` with the best validation accuracy (first on ties).

    None until every grid point has finished.
    """
    best: tuple[float, RunSpec] | None = None
    for spec in tuning_runs(scale, partition, protocol):
        doc = _run_doc(out, spec)
        if doc is None:
            return None
        val = doc["selected_val_accuracy"]
        score = -1.0 if val is None else float(val)
        if best is None or score > best[0]:
            best = (score, spec)
    return None if best is None else best[1]


def convergence(out: Path, scale: dict[str, Any], partition: str, protocol: str) -> dict | None:
    """Best validation accuracy at the tuned budget and at twice it; the finals' rounds."""
    chosen = choice(out, scale, partition, protocol)
    if chosen is None:
        return None
    doc_r, doc_2r = _run_doc(out, chosen), _run_doc(out, _convergence_run(scale, chosen))
    if doc_r is None or doc_2r is None:
        return None
    base, longer = doc_r["best_val_accuracy"], doc_2r["best_val_accuracy"]
    gain = 100 * (longer - base)
    converged = gain < scale["convergence-pp"]
    return {
        "rounds": chosen.rounds,
        "best_val_accuracy": base,
        "rounds_doubled": 2 * chosen.rounds,
        "best_val_accuracy_doubled": longer,
        "gain_pp": gain,
        "converged": converged,
        "final_rounds": chosen.rounds if converged else 2 * chosen.rounds,
    }


def _convergence_run(scale: dict[str, Any], chosen: RunSpec) -> RunSpec:
    return RunSpec(
        "converge",
        chosen.partition,
        chosen.protocol,
        chosen.learning_rate,
        chosen.local_epochs,
        2 * chosen.rounds,
        chosen.seed,
    )


def targets(
    out: Path, scale: dict[str, Any], partition: str, protocols: list[str] | tuple[str, ...]
) -> dict[str, Any] | None:
    """The partition's target accuracy (validation), fixed once from the tuning runs.

    Rule: the lower of ``fl``'s and ``ecofed-best``'s best validation accuracy at their
    chosen grid points (tuning seed, tuned budget), less 1 pp, rounded down to 0.5 pp: an
    accuracy both contenders reach on the tuning seed, so the bytes and time to reach it
    exist for both, and no final run was looked at. Written to ``targets.json`` the first
    time it can be computed and never changed afterwards.
    """
    path = out / "targets.json"
    stored = _load(path) or {}
    if partition in stored:
        return dict(stored[partition])
    contenders = [p for p in ("fl", "ecofed-best") if p in protocols]
    if not contenders:  # a partial plan (smoke tests): no target, nothing to wait for
        return {"target_val_accuracy": None, "rule": "fl and ecofed-best are not in the plan"}
    picks = [choice(out, scale, partition, p) for p in contenders]
    if any(p is None for p in picks):
        return None
    best = {}
    for pick in picks:
        doc = _run_doc(out, pick) if pick is not None else None
        if doc is None:
            return None
        best[pick.protocol] = doc["best_val_accuracy"]
    value = math.floor((min(best.values()) - 0.01) * 200) / 200
    entry = {
        "target_val_accuracy": value,
        "from_best_val_accuracy": best,
        "rule": "min(best val acc of fl and ecofed-best at their tuned settings, tuning seed)"
        " - 1 pp, rounded down to 0.5 pp",
        "fixed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    stored = _load(path) or {}  # another worker may have written it meanwhile
    stored.setdefault(partition, entry)
    _write(path, stored)
    return dict(stored[partition])


def _settings_of(
    out: Path, scale: dict[str, Any], partition: str, protocol: str
) -> tuple[float | None, int] | None:
    """(learning rate, local epochs) of ``protocol``'s finals; None while not known."""
    if protocol in TUNED:
        pick = choice(out, scale, partition, protocol)
        return None if pick is None else (pick.learning_rate, pick.local_epochs)
    lender = BORROWS[protocol]
    if lender is None:
        return None, 1
    pick = choice(out, scale, partition, lender)
    return None if pick is None else (pick.learning_rate, pick.local_epochs)


def final_runs(
    out: Path, scale: dict[str, Any], partition: str, protocol: str, protocols: list[str]
) -> list[RunSpec] | None:
    """The finals of ``protocol`` on ``partition``; None while their settings are unknown.

    They wait for their settings, their family's convergence verdict and the partition's
    target (fixed before any final run starts).
    """
    settings = _settings_of(out, scale, partition, protocol)
    verdict = convergence(out, scale, partition, FAMILY[protocol])
    if settings is None or verdict is None or targets(out, scale, partition, protocols) is None:
        return None
    seeds = scale["final-seeds"] if protocol in MAIN else scale["reference-seeds"]
    return [
        RunSpec("final", partition, protocol, *settings, verdict["final_rounds"], seed)
        for seed in seeds
    ]


def plan(out: Path, scale: dict[str, Any], protocols: list[str]) -> Iterator[RunSpec | None]:
    """Every run of the plan in priority order; None stands for runs not yet known."""
    for phase, protocol in PRIORITY:
        if protocol not in protocols:
            continue
        for partition in PARTITIONS:
            if phase == "tune":
                yield from tuning_runs(scale, partition, protocol)
            elif phase == "converge":
                chosen = choice(out, scale, partition, protocol)
                yield None if chosen is None else _convergence_run(scale, chosen)
            else:
                finals = final_runs(out, scale, partition, protocol, protocols)
                if finals is None:
                    seeds = scale["final-seeds"] if protocol in MAIN else scale["reference-seeds"]
                    yield from [None] * len(seeds)
                else:
                    yield from finals


def plan_state(out: Path, scale: dict[str, Any], protocols: list[str]) -> list[tuple[RunSpec, str]]:
    """The known runs of the plan with their state (done, failed, running, pending,
    waiting); runs whose settings are not known yet appear as one waiting line each."""
    rows: list[tuple[RunSpec, str]] = []
    for spec in plan(out, scale, protocols):
        if spec is None:
            rows.append((RunSpec("?", "?", "(not known yet)", None, 0, 0, -1), "waiting"))
        elif _run_doc(out, spec) is not None:
            rows.append((spec, "done"))
        elif (out / "runs" / f"{spec.run_id}.failed.txt").exists():
            rows.append((spec, "failed"))
        elif (out / "runs" / f"{spec.run_id}.claim").exists():
            rows.append((spec, "running"))
        else:
            rows.append((spec, "pending"))
    return rows


# ---------------------------------------------------------------- running


def _failed_since(out: Path, since: float) -> list[str]:
    return sorted(
        p.name.removesuffix(".failed.txt")
        for p in (out / "runs").glob("*.failed.txt")
        if p.stat().st_mtime >= since
    )


def _work(out: Path, scale: dict[str, Any], protocols: list[str], since: float) -> None:
    torch.set_num_threads(scale["threads"])
    time_model = TimeModel(BandwidthModel(uplink_mbps=10, downlink_mbps=50, latency_s=0.05))
    while True:
        failed = set(_failed_since(out, since))  # failed in this invocation: not retried
        specs = list(plan(out, scale, protocols))
        pending = [
            s
            for s in specs
            if s is not None and _run_doc(out, s) is None and s.run_id not in failed
        ]
        spec = next((s for s in pending if _claim(out, s)), None)
        if spec is None:
            if not pending and None not in specs:
                return  # the whole plan is stored (or failed)
            if not _others_running(out):
                return  # blocked on failed runs: nothing can change any more
            time.sleep(10)  # another worker is finishing a run this one waits for
            continue
        try:
            _run(out, scale, spec, time_model)
        except Exception:  # one broken run must not stop the others
            report = out / "runs" / f"{spec.run_id}.failed.txt"
            report.write_text(traceback.format_exc())
            print(f"  FAILED: {spec.run_id}; see {report}", flush=True)
        finally:
            (out / "runs" / f"{spec.run_id}.claim").unlink(missing_ok=True)


def _others_running(out: Path) -> bool:
    for path in (out / "runs").glob("*.claim"):
        try:
            pid = int(path.read_text() or 0)
            if pid != os.getpid():
                os.kill(pid, 0)
                return True
        except (ProcessLookupError, ValueError, FileNotFoundError):
            continue
    return False


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
        except FileNotFoundError:
            return _claim(out, spec)
    with os.fdopen(fd, "w") as handle:
        handle.write(str(os.getpid()))
    return True


def overrides_of(scale: dict[str, Any], spec: RunSpec) -> tuple[str, dict[str, Any]]:
    """The harness protocol of ``spec`` and the run-config values it runs with."""
    protocol, extra = VARIANTS.get(spec.protocol, (spec.protocol, {}))
    values: dict[str, Any] = {
        # What every contender shares, after its preset.
        "fraction-train": scale["fraction-train"],
        "validation-fraction": scale["validation-fraction"],
        "num-server-rounds": spec.rounds,
        "local-epochs": spec.local_epochs,
        **extra,
    }
    if spec.learning_rate is not None:
        values["learning-rate"] = spec.learning_rate
    if spec.protocol in DEVICE_BATCH:
        values["batch-size"] = scale["device-batch-size"]
    elif protocol in PRESETS:
        values["batch-size"] = PRESETS[protocol]["batch-size"]
    elif protocol == "central-frozen":  # ecofed-best's updates: its batch size too
        values["batch-size"] = PRESETS["ecofed-best"]["batch-size"]
    return protocol, values


def _run(out: Path, scale: dict[str, Any], spec: RunSpec, time_model: TimeModel) -> None:
    path = out / "runs" / f"{spec.run_id}.json"
    config = EcoFedConfig.from_mapping(
        {
            **scale["config"],
            "partitioning": PARTITIONS[spec.partition],
            "samples-per-client": scale["samples-per-client"],
            "test-samples": scale["test-samples"],
            "seed": spec.seed,
            "output-dir": str((out / "outputs" / spec.partition).resolve()),
        }
    )
    setting = Setting(
        config=config,
        num_clients=scale["clients"],
        time_model=time_model,
        threads=scale["threads"],
        engine="loopback",
    )
    protocol, overrides = overrides_of(scale, spec)
    print(f"[{time.strftime('%H:%M:%S')}] {spec.run_id} ({spec.phase})", flush=True)
    doc = run_protocol(protocol, setting, overrides, label=spec.run_id)
    result = _compact(doc)
    result.update(
        run_id=spec.run_id,
        phase=spec.phase,
        partition=spec.partition,
        protocol=spec.protocol,
        harness_protocol=protocol,
        load_during=[doc["host_before"]["loadavg"][0], doc["host_after"]["loadavg"][0]],
    )
    _write(path, result)
    speed = (doc["host_before"]["gemm_gflops"] + doc["host_after"]["gemm_gflops"]) / 2
    print(
        f"  done: round {doc['selected_round']} selected, val {doc['selected_val_accuracy']}, "
        f"test {doc['selected_accuracy']}, {doc['harness_seconds']:.0f} s "
        f"({doc['harness_cpu_seconds']:.0f} CPU s), host {speed:.0f} GFLOP/s, "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )


ROUND_KEYS = (
    "round",
    "accuracy",
    "val_accuracy",
    "val_loss",
    "clients",
    "bytes_up",
    "bytes_down",
    "messages_up",
    "messages_down",
    "client_facts",
    "device_seconds_max",
    "server_seconds",
    "nonblocking_server_seconds",
    "server_train_seconds",
    "server_steps",
    "server_batch_size",
    "wall_seconds",
    "estimated_seconds",
    "cumulative_bytes",
    "cumulative_estimated_seconds",
    "refresh",
    "train_samples",
    "server_wall_seconds",
)


def _compact(doc: dict[str, Any]) -> dict[str, Any]:
    """The run's document without the per-message ledger (per-client facts are kept)."""
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
