"""The app's ServerApp (Message API)."""

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from task_test import NUM_ROUNDS, Net

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    strategy = FedAvg()
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(Net().state_dict()),
        train_config=ConfigRecord({"lr": 0.05}),
        num_rounds=NUM_ROUNDS,
    )
    torch.save(result.arrays.to_torch_state_dict(), "final_model.pt")


# Imports grouped as in a standalone Flower app, where ecofed_flwr is an installed package
# and task the app's own module (this repository's ruff would group them the other way).
# ruff: noqa: I001
