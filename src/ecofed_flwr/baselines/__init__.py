"""Baselines and the comparison harness: classic FL, vanilla and local-loss DPFL, EcoFed.

Every protocol runs on the same model, data, partition and seed, and every transfer is
counted as the Flower message that carries it (:mod:`.wire`).

- :mod:`.fl`: classic FL, a standard ClientApp and Flower's ``FedAvg``.
- :mod:`.split_learning`, :mod:`.dpfl`, :mod:`.lgl`: vanilla (SplitFed v1) and local-loss
  DPFL, simulated in one process.
- :mod:`.protocols`: the protocol names and the EcoFed presets.
- :mod:`.report`: the accounting (bytes, compute, estimated time).
- :mod:`.comm`: one client round of each protocol, measured without a federation.
- :mod:`.harness`: :func:`run_protocol`.
"""

from ecofed_flwr.baselines.comm import (
    client_round_ledger,
    communication_report,
    exchanges_per_client,
)
from ecofed_flwr.baselines.dpfl import VanillaDPFL
from ecofed_flwr.baselines.harness import (
    Setting,
    host_gemm_gflops,
    load_results,
    results_table,
    run_protocol,
    run_protocols,
)
from ecofed_flwr.baselines.lgl import LocalLossDPFL
from ecofed_flwr.baselines.protocols import (
    ECOFED_BEST,
    ECOFED_PAPER,
    PRESETS,
    PROTOCOLS,
    protocol_config,
)
from ecofed_flwr.baselines.report import RPI4_SLOWDOWN, RoundLog, TimeModel, summarize
from ecofed_flwr.baselines.training import LocalTraining
from ecofed_flwr.baselines.wire import MeteredGrid, purpose_nbytes, record_message

__all__ = [
    "ECOFED_BEST",
    "ECOFED_PAPER",
    "PRESETS",
    "PROTOCOLS",
    "RPI4_SLOWDOWN",
    "LocalLossDPFL",
    "LocalTraining",
    "MeteredGrid",
    "RoundLog",
    "Setting",
    "TimeModel",
    "VanillaDPFL",
    "client_round_ledger",
    "communication_report",
    "exchanges_per_client",
    "host_gemm_gflops",
    "load_results",
    "protocol_config",
    "purpose_nbytes",
    "record_message",
    "results_table",
    "run_protocol",
    "run_protocols",
    "summarize",
]
