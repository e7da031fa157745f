"""EcoFed ClientApp: a device runs the frozen front on its partition and uploads activations.

The app is :func:`~ecofed_flwr.federation.make_client_app` with the run config. When the
environment names a device worker (``ECOFED_DEVICE_WORKER``, see
:mod:`ecofed_flwr.device_worker`), it is instead a thin ClientApp that imports Flower only
and hands each message to that warm process.
"""

from __future__ import annotations

import os

from flwr.clientapp import ClientApp

from ecofed_flwr.device_worker import WORKER_ENV, WarmClientApp

app: ClientApp
if os.environ.get(WORKER_ENV):
    app = WarmClientApp(os.environ[WORKER_ENV])
else:
    from ecofed_flwr.federation import make_client_app

    app = make_client_app()
