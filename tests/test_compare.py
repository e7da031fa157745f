"""benchmarks/compare.py: workers share the parent's scale, and failures are loud."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPARE = ROOT / "benchmarks" / "compare.py"
TINY = {
    "clients": 3,
    "samples-per-client": 40,
    "validation-fraction": 0.25,
    "fraction-train": 1.0,
    "rounds": 1,
    "test-samples": 50,
    "learning-rates": [0.05],
    "final-seeds": [1],
    "reference-seeds": [1],
    "config": {
        "model": "tiny_cnn",
        "cut": "block1",
        "weights": "random",
        "input-size": 16,
        "dataset": "synthetic",
    },
}


def _compare(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FLWR_TELEMETRY_ENABLED": "0"}
    command = [sys.executable, str(COMPARE), "--out", str(out), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_workers_run_the_plan_at_the_parents_scale(tmp_path: Path) -> None:
    # Before: workers started without --scale, each exited at once ("another scale") and
    # the parent printed an empty report and exited 0.
    done = _compare(
        tmp_path, "--jobs", "2", "--scale", json.dumps(TINY), "--protocols", "ecofed-best"
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = sorted(p.name for p in (tmp_path / "runs").glob("*.json"))
    # Per partition: one grid point, the doubled-rounds check and one final seed.
    assert len(runs) == 6, runs
    assert {json.loads((tmp_path / "runs" / r).read_text())["phase"] for r in runs} == {
        "tune",
        "converge",
        "final",
    }
    assert "another scale" not in done.stderr
    doc = json.loads((tmp_path / "runs" / runs[0]).read_text())
    assert doc["test_scored_once"] and doc["rounds"][0]["client_facts"]
    # The same command again: nothing left to run.
    again = _compare(tmp_path, "--scale", json.dumps(TINY), "--protocols", "ecofed-best", "--plan")
    assert again.returncode == 0 and all(
        line.startswith("done") for line in again.stdout.splitlines()
    ), again.stdout


def test_a_failed_run_makes_the_benchmark_exit_non_zero(tmp_path: Path) -> None:
    # Settings the run refuses: the run fails, is not a data point, and the command says so.
    scale = {**TINY, "config": {**TINY["config"], "codec": "no-such-codec"}}
    done = _compare(tmp_path, "--scale", json.dumps(scale), "--protocols", "ecofed-best")
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "INCOMPLETE" in done.stdout and "FAILED" in done.stdout
    failed = list((tmp_path / "runs").glob("*.failed.txt"))
    assert failed and "codec" in failed[0].read_text()
    assert not list((tmp_path / "runs").glob("*.json"))
