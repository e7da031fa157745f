"""A ClientApp in the shape of Flower's legacy examples: a NumPyClient and client_fn."""

from flwr.client import ClientApp, NumPyClient
from flwr.common import Context

from flower_task_test import Net, load_data, test, train
from task_test import get_weights, set_weights


class FlowerClient(NumPyClient):
    def __init__(self, net, trainloader, valloader, local_epochs):  # type: ignore[no-untyped-def]
        self.net = net
        self.trainloader = trainloader
        self.valloader = valloader
        self.local_epochs = local_epochs

    def fit(self, parameters, config):  # type: ignore[no-untyped-def]
        set_weights(self.net, parameters)
        train_loss = train(self.net, self.trainloader, self.local_epochs, config["lr"], "cpu")
        return get_weights(self.net), len(self.trainloader.dataset), {"train_loss": train_loss}

    def evaluate(self, parameters, config):  # type: ignore[no-untyped-def]
        set_weights(self.net, parameters)
        loss, accuracy = test(self.net, self.valloader, "cpu")
        return loss, len(self.valloader.dataset), {"accuracy": accuracy}


def client_fn(context: Context):  # type: ignore[no-untyped-def]
    partition_id = context.node_config["partition-id"]
    num_partitions = context.node_config["num-partitions"]
    batch_size = context.run_config["batch-size"]
    trainloader, valloader = load_data(partition_id, num_partitions, batch_size)
    local_epochs = context.run_config["local-epochs"]
    return FlowerClient(Net(), trainloader, valloader, local_epochs).to_client()


app = ClientApp(client_fn)

# Imports grouped as in a standalone Flower app, where ecofed_flwr is an installed package
# and the task the app's own module (this repository's ruff would group them the other way).
# ruff: noqa: I001, F401, F841
