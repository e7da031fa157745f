"""The app's ServerApp (legacy API: server_fn and ServerAppComponents)."""

from flwr.common import Context
from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.strategy import FedAvg

from task_test import NUM_ROUNDS


def server_fn(context: Context) -> ServerAppComponents:
    strategy = FedAvg()
    config = ServerConfig(num_rounds=NUM_ROUNDS)
    return ServerAppComponents(strategy=strategy, config=config)


app = ServerApp(server_fn=server_fn)

# Imports grouped as in a standalone Flower app, where ecofed_flwr is an installed package
# and task the app's own module (this repository's ruff would group them the other way).
# ruff: noqa: I001
