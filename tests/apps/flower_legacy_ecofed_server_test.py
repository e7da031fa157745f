"""A ServerApp in the shape of Flower's legacy baselines: server_fn and a FedAvg subclass."""

from ecofed_flwr.models import create_split
from ecofed_flwr.strategies import EcoFedLegacyStrategy, make_evaluate_fn
from flwr.common import Context, FitRes, Metrics, Parameters, Scalar, ndarrays_to_parameters
from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg

from flower_task_test import Net, load_centralized_dataset
from task_test import get_weights


class CustomFedAvg(FedAvg):
    """FedAvg that logs how many clients each round aggregated."""

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list,
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        print(f"round {server_round}: {len(results)} results, {len(failures)} failures")
        return super().aggregate_fit(server_round, results, failures)


def weighted_average(metrics: list[tuple[int, Metrics]]) -> Metrics:
    accuracies = [n * float(m["accuracy"]) for n, m in metrics]
    return {"accuracy": sum(accuracies) / sum(n for n, _ in metrics)}


def fit_config(server_round: int) -> dict[str, Scalar]:
    return {"lr": 0.05, "current_round": server_round}


def server_fn(context: Context) -> ServerAppComponents:
    num_rounds = context.run_config["num-server-rounds"]
    fraction_fit = context.run_config["fraction-fit"]
    initial = ndarrays_to_parameters(get_weights(Net()))
    split = create_split("tiny_cnn", weights="random")
    strategy = EcoFedLegacyStrategy.from_split(
        split,
        num_rounds,
        make_evaluate_fn(split, load_centralized_dataset()),
        fraction_fit=fraction_fit,
        fraction_evaluate=context.run_config["fraction-evaluate"],
        min_available_clients=2,
        on_fit_config_fn=fit_config,
        evaluate_metrics_aggregation_fn=weighted_average,
        initial_parameters=initial,
    )
    config = ServerConfig(num_rounds=num_rounds)
    return ServerAppComponents(strategy=strategy, config=config)


app = ServerApp(server_fn=server_fn)

# Imports grouped as in a standalone Flower app, where ecofed_flwr is an installed package
# and the task the app's own module (this repository's ruff would group them the other way).
# ruff: noqa: I001, F401, F841
