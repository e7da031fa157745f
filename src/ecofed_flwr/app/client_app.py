"""EcoFed ClientApp: a device runs the frozen front on its partition and uploads activations."""

from __future__ import annotations

import functools

from flwr.app import Context
from flwr.clientapp import ClientApp

from ecofed_flwr.app.task import build_split, client_data
from ecofed_flwr.clients import add_ecofed_handlers
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.data import LocalData
from ecofed_flwr.models import SplitModel


def make_client_app(cfg: EcoFedConfig | None = None) -> ClientApp:
    """A ClientApp serving EcoFed uploads with ``cfg``, or with the run config when None.

    The device's partition comes from its node config (``partition-id``, ``num-partitions``).
    """

    def config(context: Context) -> EcoFedConfig:
        return cfg or EcoFedConfig.from_mapping(context.run_config)

    def front(context: Context) -> SplitModel:
        return build_split(config(context))

    def data(context: Context) -> LocalData:
        node = context.node_config
        try:
            partition_id = int(node["partition-id"])
            num_partitions = int(node["num-partitions"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                "node config needs partition-id and num-partitions "
                "(flower-supernode --node-config 'partition-id=0 num-partitions=10')"
            ) from err
        return _cached_data(config(context), partition_id, num_partitions)

    return add_ecofed_handlers(ClientApp(), front, data)


@functools.lru_cache(maxsize=2)
def _cached_data(cfg: EcoFedConfig, partition_id: int, num_partitions: int) -> LocalData:
    # Ray actors live for the whole simulation: prepare each partition once per process.
    return client_data(cfg, partition_id, num_partitions)


app = make_client_app()
