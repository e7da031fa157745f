"""Server side of EcoFed on Flower: the Message-API strategy, its legacy twin, evaluation."""

from ecofed_flwr.server import NoUploadError, RoundReport
from ecofed_flwr.strategies.ecofed import EcoFedStrategy, ReplyError
from ecofed_flwr.strategies.evaluate import make_evaluate_fn
from ecofed_flwr.strategies.legacy import EcoFedLegacyStrategy

__all__ = [
    "EcoFedLegacyStrategy",
    "EcoFedStrategy",
    "NoUploadError",
    "ReplyError",
    "RoundReport",
    "make_evaluate_fn",
]
