"""EcoFed ServerApp: :func:`~ecofed_flwr.federation.run_federation` with the run config."""

from __future__ import annotations

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.federation import run_federation


def make_server_app(cfg: EcoFedConfig | None = None) -> ServerApp:
    """A ServerApp running EcoFed with ``cfg``, or with the run config when ``cfg`` is None."""
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        run_federation(grid, cfg or EcoFedConfig.from_mapping(context.run_config))

    return server_app


app = make_server_app()
