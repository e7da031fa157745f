"""EcoFed ClientApp: a device runs the frozen front on its partition and uploads activations.

The app is :func:`~ecofed_flwr.federation.make_client_app` with the run config.
"""

from __future__ import annotations

from ecofed_flwr.federation import make_client_app

app = make_client_app()
