"""Device side of EcoFed on Flower."""

from ecofed_flwr.clients.ecofed import LocalData, add_ecofed_handlers, upload_reply

__all__ = ["LocalData", "add_ecofed_handlers", "upload_reply"]
