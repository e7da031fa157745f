"""EcoFed for Flower: split federated learning with a frozen pre-trained front-end, quantized
activation uploads and a server-side replay buffer."""

__version__ = "0.1.0"

from ecofed_flwr.classifier import EcoFedClassifier, load_classifier  # noqa: E402

__all__ = ["EcoFedClassifier", "__version__", "load_classifier"]
