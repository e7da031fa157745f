"""Server side of EcoFed on Flower."""

from ecofed_flwr.strategies.ecofed import EcoFedStrategy, ReplyError, RoundReport

__all__ = ["EcoFedStrategy", "ReplyError", "RoundReport"]
