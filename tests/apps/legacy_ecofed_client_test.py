"""The app's ClientApp (legacy API: client_fn and a NumPyClient)."""

from ecofed_flwr.clients import EcoFedNumPyClient
from ecofed_flwr.models import create_split
from flwr.client import ClientApp, NumPyClient
from flwr.common import Context

from task_test import evaluate_model, get_weights, load_data, set_weights, train_model

split = create_split("tiny_cnn", weights="random")


class FlowerClient(NumPyClient):
    def __init__(self, net, trainloader, testloader):
        self.net, self.trainloader, self.testloader = net, trainloader, testloader

    def get_parameters(self, config):
        return get_weights(self.net)

    def fit(self, parameters, config):
        set_weights(self.net, parameters)
        train_loss = train_model(self.net, self.trainloader, epochs=1, lr=0.05)
        return get_weights(self.net), len(self.trainloader.dataset), {"train_loss": train_loss}

    def evaluate(self, parameters, config):
        set_weights(self.net, parameters)
        loss, accuracy = evaluate_model(self.net, self.testloader)
        return loss, len(self.testloader.dataset), {"accuracy": accuracy}


def client_fn(context: Context):
    partition_id = context.node_config["partition-id"]
    num_partitions = context.node_config["num-partitions"]
    trainloader, testloader = load_data(partition_id, num_partitions)
    return EcoFedNumPyClient(split, trainloader, partition_id).to_client()


app = ClientApp(client_fn=client_fn)

# Imports grouped as in a standalone Flower app, where ecofed_flwr is an installed package
# and task the app's own module (this repository's ruff would group them the other way).
# ruff: noqa: I001
