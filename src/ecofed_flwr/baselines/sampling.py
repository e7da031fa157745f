"""Who trains each round and which samples are held out: one rule for every protocol.

The EcoFed server (:class:`ecofed_flwr.server.EcoFedServer`) samples clients by partition id
(:func:`ecofed_flwr.server.sample_clients`) and holds out a seeded fraction of every client's
upload for validation (:func:`ecofed_flwr.server.holdout_rows`). The baselines call the same
two functions here, so that in a
comparison every protocol trains the same clients in the same round on the same samples and
is validated on the same held-out samples (``tests/test_baselines.py`` checks the match).
"""

from __future__ import annotations

import numpy as np

from ecofed_flwr.app.task import client_data
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.data import LocalData
from ecofed_flwr.server import holdout_rows, sample_clients

__all__ = ["client_name", "client_splits", "holdout_rows", "sample_partitions", "split_holdout"]


def client_name(partition_id: int) -> str:
    """The name of the client holding partition ``partition_id`` (as EcoFed names it)."""
    return str(partition_id)


def sample_partitions(num_clients: int, k: int, seed: int, server_round: int) -> list[int]:
    """The sorted partition ids sampled in ``server_round`` (``k`` of ``num_clients``)."""
    names = [client_name(i) for i in range(num_clients)]
    return [int(c) for c in sample_clients(names, k, seed, server_round)]


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


def client_splits(cfg: EcoFedConfig, n: int) -> dict[str, tuple[LocalData, LocalData | None]]:
    """Each of ``n`` clients' training rows and held-out rows, by client name."""
    return {
        client_name(i): split_holdout(
            client_data(cfg, i, n), cfg.validation_fraction, cfg.seed, client_name(i)
        )
        for i in range(n)
    }
