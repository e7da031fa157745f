"""Where one real-device exchange's seconds go: a loopback SuperLink with 2 SuperNodes.

Starts a deployment SuperLink (insecure, loopback, a port of the project's range) and two
``flower-supernode``s (partitions 0 and 1), runs the repository's app with ``flwr run`` for
``--rounds`` rounds in which both devices upload every round (``refresh = "every:1"``), and
reports per round: the server's wait for the uploads (``exchange_seconds`` in
``results.json``: from sending the requests to the last reply) and the devices' own compute
(front + encode, as they report it). Beside it, measured in fresh processes as a ClientApp's
starts: the seconds to import torch, Flower and this package and to build the split. Flower
1.42 starts one ``flwr-clientapp`` process per message, and its SuperNode, when idle, asks
the SuperLink for work every 3 s.

Usage (repository root, quiet machine; each label: 3 deployments of 6 rounds by default)::

    .venv/bin/python benchmarks/exchange.py                  # writes results/exchange.json
    # an older checkout, for a comparison (its src first on the path of every process):
    PYTHONPATH=OLD/src .venv/bin/python benchmarks/exchange.py --app-dir OLD --label before
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

from ecofed_flwr.launch import (  # noqa: E402
    find_free_port,
    flower_env,
    flower_executable,
    start_superlink,
    start_supernode,
    stop_process,
    write_flwr_config,
)

RESULTS = ROOT / "benchmarks" / "results" / "exchange.json"
RUN_CONFIG = (
    "model='tiny_cnn' cut='block1' weights='random' input-size=16 dataset='synthetic' "
    "fraction-train=1.0 min-train-nodes=2 refresh='every:1' samples-per-client=50 "
    "test-samples=100 batch-size=10"
)

STARTUP_PROBE = """
import time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
import flwr.clientapp, flwr.app
t2 = time.perf_counter()
import ecofed_flwr.federation
from ecofed_flwr.app.task import build_split
from ecofed_flwr.config import EcoFedConfig
t3 = time.perf_counter()
build_split(EcoFedConfig.from_mapping({CONFIG}))
t4 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
"""


def clientapp_startup(config: dict[str, Any], repeats: int = 3) -> dict[str, float]:
    """Median seconds of what a fresh ClientApp process imports and builds."""
    code = STARTUP_PROBE.replace("{CONFIG}", repr(config))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        runs.append([float(v) for v in out.stdout.split()])
    names = ("import_torch", "import_flwr", "import_ecofed", "build_split")
    return {n: round(statistics.median(r[i] for r in runs), 3) for i, n in enumerate(names)}


#: Device-side milestones in a SuperNode's DEBUG log (Flower 1.42 wording), in order; the
#: same lines whether a ``flwr-clientapp`` process or the warm executor takes the task.
MILESTONES = (
    ("receiving", "Receiving: train."),
    ("received", "Received successfully"),
    ("task_taken", "Runtime.PullTaskInput"),
    ("reply_pushed", "Runtime.PushMessages"),
    ("sent", "Sent successfully"),
)
_STAMP = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})")


def device_timeline(log: Path) -> list[dict[str, float]]:
    """Seconds between the milestones of each upload a SuperNode handled (DEBUG log).

    ``receiving -> received``: the SuperNode pulling the request's parts from the SuperLink;
    ``received -> task_taken``: until a process takes the task (SuperExec poll, process
    start and Flower's imports; the warm executor's poll); ``task_taken -> reply_pushed``:
    the ClientApp (FAB install, the App's imports, split built, front and encode; warm: the
    compute alone); ``reply_pushed -> sent``: the SuperNode sending the reply to the
    SuperLink.
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(errors="replace"))
    exchanges, current = [], {}
    for line in text.splitlines():
        stamp = _STAMP.search(line)
        if stamp is None:
            continue
        for name, marker in MILESTONES:
            if marker in line and name not in current:
                if name != "receiving" and "receiving" not in current:
                    break
                when = datetime.datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f")
                current[name] = when.timestamp()
                if name == "sent":
                    if len(current) == len(MILESTONES):
                        exchanges.append(current)
                    current = {}
                break
    steps = []
    for ex in exchanges:
        names = [n for n, _ in MILESTONES]
        steps.append(
            {f"{a}->{b}": round(ex[b] - ex[a], 3) for a, b in zip(names, names[1:], strict=False)}
        )
    return steps


def deployment(
    rounds: int,
    work: Path,
    app_dir: Path = ROOT,
    poll_seconds: float | None = None,
    warm: bool = False,
) -> dict[str, Any]:
    """One deployment run; its per-round exchange and device seconds."""
    home = work / "flwr-home"
    env = flower_env(home)
    procs: list[subprocess.Popen[Any]] = []
    out_dir = work / "out"
    try:
        port = find_free_port()
        procs.append(start_superlink(port, work / "superlink", env, simulation=False))
        write_flwr_config(home, f"127.0.0.1:{port}")
        used = [port]
        for partition in (0, 1):
            node_port = find_free_port(exclude=used)
            used.append(node_port)
            procs.append(
                start_supernode(
                    f"127.0.0.1:{port}",
                    node_port,
                    f"partition-id={partition} num-partitions=2",
                    {**flower_env(work / f"node-{partition}-home"), "FLWR_LOG_LEVEL": "DEBUG"},
                    work / f"supernode-{partition}.log",
                    poll_seconds=poll_seconds,
                    warm=warm,
                )
            )
        command = [
            flower_executable("flwr", env),
            "run",
            str(app_dir),
            "--stream",
            "--run-config",
            f"{RUN_CONFIG} num-server-rounds={rounds} output-dir='{out_dir}'",
        ]
        started = time.perf_counter()
        with (work / "flwr-run.log").open("wb") as log:
            subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
        wall = time.perf_counter() - started
    finally:
        for proc in reversed(procs):
            stop_process(proc)
    doc = json.loads((out_dir / "results.json").read_text())
    if doc["status"] != "completed":
        raise SystemExit(f"the run failed: {doc.get('failure')}")
    rounds_ = [r for r in doc["rounds"] if r["round"] > 0]
    timeline = device_timeline(work / "supernode-0.log")[1:]  # the first includes the handshake
    return {
        "device_timeline_node_0": timeline,
        "device_timeline_median": {
            step: round(statistics.median(t[step] for t in timeline), 3) for step in timeline[0]
        }
        if timeline
        else {},
        "run_wall_seconds": round(wall, 1),
        "exchange_seconds": [round(r["exchange_seconds"], 2) for r in rounds_],
        "device_seconds": [round(max(r["device_seconds"].values()), 3) for r in rounds_],
        "uploaded": [len(r["uploaded"]) for r in rounds_],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--repeats", type=int, default=3, help="deployments run one after another (default 3)"
    )
    parser.add_argument("--label", default="after")
    parser.add_argument(
        "--app-dir", type=Path, default=ROOT, help="the app to run (e.g. an older checkout)"
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        help="run the SuperNodes through `ecofed supernode --poll-seconds S` (default: "
        "plain flower-supernode)",
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="and with a warm ClientApp executor (`ecofed supernode --warm`)",
    )
    args = parser.parse_args()
    config = {
        "model": "tiny_cnn",
        "cut": "block1",
        "weights": "random",
        "input-size": 16,
        "dataset": "synthetic",
    }
    runs = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="ecofed-exchange-") as work:
            runs.append(
                deployment(
                    args.rounds, Path(work), args.app_dir.resolve(), args.poll_seconds, args.warm
                )
            )
    # Round 1 includes the handshake (and, warm, loading the app): left out.
    exchanges = [x for run in runs for x in run["exchange_seconds"][1:]]
    steps = [t for run in runs for t in run["device_timeline_node_0"]]
    row = {
        "supernode": (
            "flower-supernode"
            if args.poll_seconds is None and not args.warm
            else f"ecofed supernode --poll-seconds {args.poll_seconds or 3.0}"
            + (" --warm" if args.warm else "")
        ),
        "runs": runs,
        "median_exchange_seconds_after_round_1": round(statistics.median(exchanges), 2),
        "range_exchange_seconds_after_round_1": [min(exchanges), max(exchanges)],
        "median_per_run": [round(statistics.median(r["exchange_seconds"][1:]), 2) for r in runs],
        "device_timeline_median": {
            step: round(statistics.median(t[step] for t in steps), 3) for step in steps[0]
        }
        if steps
        else {},
        "clientapp_startup_seconds": clientapp_startup(config),
        "clientapp_startup_default_model_seconds": clientapp_startup({}),
        "load": os.getloadavg(),
    }
    doc = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    doc[args.label] = row
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({args.label: row}, indent=2))


if __name__ == "__main__":
    main()
