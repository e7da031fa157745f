"""Device side of EcoFed on Flower: Message-API handlers, the legacy NumPyClient, drop-ins."""

from ecofed_flwr.clients.dropin import local_data_fn, local_data_from
from ecofed_flwr.clients.ecofed import add_ecofed_handlers, upload_content, upload_reply
from ecofed_flwr.clients.numpy_client import EcoFedNumPyClient

# Re-exported for user code that imports it from here; its home is ecofed_flwr.data.
from ecofed_flwr.data import LocalData

__all__ = [
    "EcoFedNumPyClient",
    "LocalData",
    "add_ecofed_handlers",
    "local_data_fn",
    "local_data_from",
    "upload_content",
    "upload_reply",
]
