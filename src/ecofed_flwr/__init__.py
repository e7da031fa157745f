"""EcoFed for Flower: split federated learning with a frozen pre-trained front-end, quantized
activation uploads and a server-side replay buffer."""

__version__ = "0.1.0"
