"""The app's ServerApp (Message API)."""

import torch
from ecofed_flwr.models import create_split
from ecofed_flwr.strategies import EcoFedStrategy, make_evaluate_fn
from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from task_test import NUM_ROUNDS, load_test_data

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    strategy = EcoFedStrategy.from_split(create_split("tiny_cnn", weights="random"))
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(),
        train_config=ConfigRecord({"lr": 0.05}),
        num_rounds=NUM_ROUNDS,
        evaluate_fn=make_evaluate_fn(strategy.split, load_test_data()),
    )
    torch.save(result.arrays.to_torch_state_dict(), "final_model.pt")


# Imports grouped as in a standalone Flower app, where ecofed_flwr is an installed package
# and task the app's own module (this repository's ruff would group them the other way).
# ruff: noqa: I001
