"""Every default setting of ecofed-flwr, in one place.

The run config (``pyproject.toml``), :class:`~ecofed_flwr.config.EcoFedConfig`, the core
:class:`~ecofed_flwr.server.EcoFedServer`, the Flower strategies, the trainer and docs/settings.md
all read their defaults from here, so a default has one value everywhere. The values were
chosen by ``benchmarks/default_sweep.py`` on the validation hold-out (never the test set); the
paper's own settings are :data:`PAPER`.
"""

from __future__ import annotations

from typing import Any

# ---------------------------------------------------------------- model, data, devices
MODEL = "tf_efficientnet_lite0"
CUT = "stage3"
WEIGHTS = "imagenet"
INPUT_SIZE = 32
DATASET = "fashion_mnist"
#: Environment variable naming the folder of the Fashion-MNIST idx files (scripts/ensure-data.sh).
FASHION_MNIST_DIR_ENV = "ECOFED_FASHION_MNIST_DIR"
PARTITIONING = "iid"
SAMPLES_PER_CLIENT = 2000
#: How devices' partitions are made: "disjoint", "with-replacement" or "auto" (disjoint while
#: the data set has a sample for every device; with replacement beyond).
PARTITION_DRAW = "auto"
#: Who names a device's partition: "node" (its node config: real devices, their own data) or
#: "server" (the server names one per upload request: virtual devices in simulation, no
#: handshake, a round's cost independent of the number of connected nodes).
PARTITION_ASSIGNMENT = "node"
FRONT_BATCH_SIZE = 256
#: Simulated SuperNodes (devices) of `ecofed run` and of the benchmarks' federations.
NUM_SUPERNODES = 10

# ---------------------------------------------------------------- federation
NUM_SERVER_ROUNDS = 5
FRACTION_TRAIN = 1.0
MIN_TRAIN_NODES = 2
MIN_AVAILABLE_NODES = 2
ROUND_TIMEOUT = 900.0
#: Seconds between two pulls of the replies a round waits for (Flower's own Grid waits 3 s).
REPLY_POLL_SECONDS = 0.05
MAX_SAMPLES_PER_CLIENT = 1_000_000
SEED = 0
RESUME = False
#: No network at run time: Hugging Face downloads are refused (run config ``offline``).
OFFLINE = True

# ---------------------------------------------------------------- server memory
#: MB (10^6 bytes) of buffered uploads kept in memory; beyond it they are memory-mapped.
#: 0: no bound.
BUFFER_MEMORY_MB = 0.0

# ---------------------------------------------------------------- EcoFed
CODEC = "u4"
REFRESH = "once"
REPLAY = "all"
VALIDATION_FRACTION = 0.1
KEEP = "best"

# ---------------------------------------------------------------- server training
TRAINER = "pooled"
LEARNING_RATE = 0.1
LR_SCHEDULE = "cosine"
MOMENTUM = 0.9
WEIGHT_DECAY = 0.0
BATCH_SIZE = 128
LOCAL_EPOCHS = 1
DEVICE = "auto"

#: The paper's settings (arXiv 2304.05495 and its public code), in run-config names.
PAPER: dict[str, Any] = {
    "codec": "paper",
    "refresh": "every:2",
    "replay": "paper",
    "trainer": "copies",
    "learning-rate": 0.01,
    "lr-schedule": "constant",
    "momentum": 0.9,
    "batch-size": 10,
    "fraction-train": 0.2,
    "validation-fraction": 0.0,
    "keep": "last",
}
