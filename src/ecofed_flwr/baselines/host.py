"""How fast this host computes right now: recorded before and after every harness run.

On a shared machine the same run can take twice as long from one hour to the next; the probe
lets a report tell a slow protocol from a busy host.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import datetime
from typing import Any

import torch

from ecofed_flwr.baselines.training import torch_threads

__all__ = ["host_gemm_gflops", "host_speed"]


def host_gemm_gflops(size: int = 512, repeats: int = 10) -> float:
    """This machine's fp32 matrix-multiply speed on one thread, in GFLOP/s."""
    with torch_threads(1):
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        seconds = time.perf_counter() - start
    return 2 * size**3 * repeats / seconds / 1e9


def host_speed(probes: int = 5) -> dict[str, Any]:
    """A short probe of this host: median one-thread GEMM GFLOP/s and the load averages."""
    # Probes of about 0.1-0.3 s each: long enough to span several scheduler slices on a
    # shared machine, short enough to cost little beside a run.
    values = [host_gemm_gflops(repeats=25) for _ in range(probes)]
    return {
        "gemm_gflops": statistics.median(values),
        "gemm_gflops_probes": values,
        "loadavg": list(os.getloadavg()),
        "time": datetime.now().isoformat(timespec="seconds"),
    }
