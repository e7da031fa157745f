"""Baselines and the comparison harness: classic FL, vanilla and local-loss DPFL, EcoFed.

Every protocol runs on the same model, data, partition and seed, and every transfer is
counted as the Flower message that carries it (:mod:`.wire`).

- :mod:`.fl`: classic FL (whole model, or the back only), a standard ClientApp and
  Flower's ``FedAvg`` with seeded sampling.
- :mod:`.sampling`: the sampling and validation hold-out rules every protocol shares.
- :mod:`.split_learning`, :mod:`.dpfl`, :mod:`.lgl`: vanilla (SplitFed v1) and local-loss
  DPFL, simulated in one process.
- :mod:`.contenders`: the protocol names and the EcoFed presets.
- :mod:`.report`: the accounting (bytes, compute, estimated time).
- :mod:`.server_speed`: the GPU-server step-time estimate of the time model.
- :mod:`.comm`: one client round of each protocol, measured without a federation.
- :mod:`.harness`: :func:`run_protocol`; :mod:`.central`: its central references;
  :mod:`.host`: the host speed probe recorded beside every run.
"""

from ecofed_flwr.baselines.comm import (
    client_round_ledger,
    communication_report,
    exchanges_per_client,
)
from ecofed_flwr.baselines.contenders import (
    ECOFED_BEST,
    ECOFED_PAPER,
    PRESETS,
    PROTOCOLS,
    protocol_config,
)
from ecofed_flwr.baselines.dpfl import VanillaDPFL
from ecofed_flwr.baselines.harness import (
    Setting,
    load_results,
    results_table,
    run_protocol,
    run_protocols,
)
from ecofed_flwr.baselines.host import host_gemm_gflops, host_speed
from ecofed_flwr.baselines.lgl import LocalLossDPFL
from ecofed_flwr.baselines.report import (
    RPI4_SLOWDOWN,
    RoundLog,
    TimeModel,
    account_run,
    selected_round,
    validation_gain_last_fifth,
)
from ecofed_flwr.baselines.sampling import holdout_rows, sample_partitions, split_holdout
from ecofed_flwr.baselines.server_speed import GpuServerModel
from ecofed_flwr.baselines.training import LocalTraining
from ecofed_flwr.baselines.wire import MeteredGrid, record_message
from ecofed_flwr.meter import purpose_nbytes

__all__ = [
    "ECOFED_BEST",
    "ECOFED_PAPER",
    "GpuServerModel",
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
    "account_run",
    "client_round_ledger",
    "communication_report",
    "exchanges_per_client",
    "holdout_rows",
    "host_gemm_gflops",
    "host_speed",
    "load_results",
    "protocol_config",
    "purpose_nbytes",
    "record_message",
    "results_table",
    "run_protocol",
    "run_protocols",
    "sample_partitions",
    "selected_round",
    "split_holdout",
    "validation_gain_last_fifth",
]
