"""EcoFed for Flower: split federated learning with a frozen pre-trained front-end, quantized
activation uploads and a server-side replay buffer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["EcoFedClassifier", "__version__", "load_classifier"]

if TYPE_CHECKING:
    from ecofed_flwr.classifier import EcoFedClassifier, load_classifier


def __getattr__(name: str) -> Any:
    # Loaded on first use, so that what needs no torch (the launcher, `ecofed supernode`)
    # does not import it with the package.
    if name in ("EcoFedClassifier", "load_classifier"):
        from ecofed_flwr import classifier

        return getattr(classifier, name)
    raise AttributeError(f"module 'ecofed_flwr' has no attribute {name!r}")
