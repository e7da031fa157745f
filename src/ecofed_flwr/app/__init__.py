"""The EcoFed Flower App (``flwr run .`` target): ServerApp and ClientApp from run config."""
