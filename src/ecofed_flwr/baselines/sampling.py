"""Who trains each round and which samples are held out: one rule for every protocol.

The EcoFed server (:class:`ecofed_flwr.server.EcoFedServer`) samples clients by partition id
with ``numpy.random.default_rng([seed, round, 1])`` and holds out a seeded fraction of every
client's upload for validation. The baselines use the same two rules here, so that in a
comparison every protocol trains the same clients in the same round on the same samples and
is validated on the same held-out samples (``tests/test_baselines.py`` checks the match).
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from ecofed_flwr.clients import LocalData

#: RNG stream numbers of the EcoFed server's sampling and hold-out draws.
SAMPLE_STREAM, HOLDOUT_STREAM = 1, 3


def client_name(partition_id: int) -> str:
    """The name of the client holding partition ``partition_id`` (as EcoFed names it)."""
    return str(partition_id)


def sample_partitions(num_clients: int, k: int, seed: int, server_round: int) -> list[int]:
    """The sorted partition ids sampled in ``server_round`` (``k`` of ``num_clients``)."""
    if not 0 <= k <= num_clients:
        raise ValueError(f"cannot sample {k} of {num_clients} clients")
    rng = np.random.default_rng([seed, server_round, SAMPLE_STREAM])
    return sorted(int(i) for i in rng.choice(num_clients, size=k, replace=False))


def holdout_rows(num_samples: int, fraction: float, seed: int, client: str) -> np.ndarray:
    """Sorted rows of a client's ``num_samples`` samples held out for validation."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    k = math.floor(fraction * num_samples + 0.5) if num_samples > 1 else 0
    if k == 0:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng([seed, HOLDOUT_STREAM, zlib.crc32(client.encode())])
    return np.sort(rng.permutation(num_samples)[:k]).astype(np.int64)


def split_holdout(
    data: LocalData, fraction: float, seed: int, client: str
) -> tuple[LocalData, LocalData | None]:
    """``data`` without its held-out rows, and those rows (None when nothing is held out)."""
    n = len(data.labels)
    rows = holdout_rows(n, fraction, seed, client)
    if rows.size == 0:
        return data, None
    keep = np.setdiff1d(np.arange(n), rows)
    labels = np.asarray(data.labels)

    def subset(index: np.ndarray) -> LocalData:
        return LocalData(data.images[index], labels[index], data.num_classes)

    return subset(keep), subset(rows)
