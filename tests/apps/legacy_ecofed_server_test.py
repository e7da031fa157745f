"""The app's ServerApp (legacy API: server_fn and ServerAppComponents)."""

from ecofed_flwr.models import create_split
from ecofed_flwr.strategies import EcoFedLegacyStrategy, make_evaluate_fn
from flwr.common import Context
from flwr.server import ServerApp, ServerAppComponents, ServerConfig

from task_test import NUM_ROUNDS, load_test_data


def server_fn(context: Context) -> ServerAppComponents:
    split = create_split("tiny_cnn", weights="random")
    strategy = EcoFedLegacyStrategy.from_split(
        split, num_rounds=NUM_ROUNDS, evaluate_fn=make_evaluate_fn(split, load_test_data())
    )
    config = ServerConfig(num_rounds=NUM_ROUNDS)
    return ServerAppComponents(strategy=strategy, config=config)


app = ServerApp(server_fn=server_fn)

# Imports grouped as in a standalone Flower app, where ecofed_flwr is an installed package
# and task the app's own module (this repository's ruff would group them the other way).
# ruff: noqa: I001
