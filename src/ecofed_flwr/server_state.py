"""The EcoFed server's state between rounds: what a checkpoint saves and a resume restores.

:class:`ServerState` is everything an :class:`~ecofed_flwr.server.EcoFedServer` holds
between two rounds; :func:`save_state` takes it and :func:`restore_state` checks a saved state
against the server before anything changes (the server's ``state``/``load_state`` call them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ecofed_flwr.buffer import BufferEntry, client_sort_key
from ecofed_flwr.ledger import LedgerRecord
from ecofed_flwr.rounds import RoundReport

if TYPE_CHECKING:
    from ecofed_flwr.server import EcoFedServer

__all__ = [
    "ServerState",
    "StateMismatch",
    "cpu_state",
    "restore_state",
    "save_state",
    "server_settings",
    "weight_differences",
]


class StateMismatch(ValueError):
    """A saved :class:`ServerState` does not fit this server (other settings or model)."""


@dataclass
class ServerState:
    """Everything an :class:`EcoFedServer` holds between two rounds.

    Every random draw of a round depends only on ``(seed, round)``, so these values are all a
    run needs to go on after :attr:`round` exactly as it would have without a stop.

    Attributes
    ----------
    round : int
        The last finished round (0: before the first, after round 0's evaluation if
        ``reports`` holds it).
    settings : dict[str, Any]
        The server's settings that decide its results (:meth:`EcoFedServer.settings`); a
        state is only loaded into a server with the same.
    reports : list[RoundReport]
        The reports of the finished rounds, round 0 first.
    ledger : list[LedgerRecord]
        Every byte count so far.
    back : dict[str, torch.Tensor]
        The back's current weights (on the CPU).
    best : dict[str, torch.Tensor]
        The weights of the back the run keeps so far (on the CPU).
    best_round : int
        The round of ``best`` (0: the untrained back).
    best_val_accuracy : float | None
        Its validation accuracy.
    refresh : dict[str, Any]
        The refresh policy's state (:meth:`RefreshPolicy.state_dict`).
    buffer : Mapping[str, BufferEntry]
        The replay buffer's entries by client. A mapping that reads entries only when asked
        (as a checkpoint's does) keeps a restore within a bounded buffer's budget.
    """

    round: int
    settings: dict[str, Any]
    reports: list[RoundReport]
    ledger: list[LedgerRecord]
    back: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor]
    best_round: int
    best_val_accuracy: float | None
    refresh: dict[str, Any]
    buffer: Mapping[str, BufferEntry]


def server_settings(server: EcoFedServer) -> dict[str, Any]:
    """The settings that decide this server's results, as plain JSON values.

    The number of rounds is not among them: a strategy sets it when the run starts (and
    the app checks its whole configuration on a resume). Nor is the training device.
    """
    trainer = asdict(server.trainer.config)
    del trainer["device"]
    return {
        "fingerprint": server.fingerprint,
        "activation_shape": list(server.activation_shape),
        "num_classes": server.num_classes,
        "codec": server.codec.name,
        "refresh": server.refresh.name,
        "replay": server.replay,
        "lr_schedule": server.schedule.name,
        "validation_fraction": server.validation_fraction,
        "keep": server.keep,
        "fraction_train": server.fraction_train,
        "min_train_nodes": server.min_train_nodes,
        "seed": server.seed,
        "trainer": trainer,
    }


def save_state(server: EcoFedServer) -> ServerState:
    """The server's whole state between rounds (see :class:`ServerState`).

    Weights are copied; reports, ledger records and buffer entries are shared (a finished
    round's are never changed).

    Raises
    ------
    RuntimeError
        During a round (between :meth:`begin_round` and :meth:`end_round`).
    """
    if server._plan is not None:
        raise RuntimeError(f"round {server._plan.round} is in progress: no state to save")
    return ServerState(
        round=server.round,
        settings=server.settings(),
        reports=list(server.reports),
        ledger=list(server.ledger.records),
        back=cpu_state(server.trainer.back),
        best=server.result_state(),
        best_round=server.best_round,
        best_val_accuracy=server.best_val_accuracy,
        refresh=server.refresh.state_dict(),
        buffer=server.buffer.entries(),
    )


def restore_state(server: EcoFedServer, state: ServerState) -> None:
    """Make this server what :meth:`state` saw; the next round is ``state.round + 1``.

    Everything is checked before anything changes, except the buffer entries, which are
    read one at a time as they are stored (a checkpoint's entries check themselves).

    Raises
    ------
    StateMismatch
        If the state's settings or weights do not fit this server, or its rounds,
        reports and best round disagree; the message names each difference.
    RuntimeError
        During a round.
    """
    if server._plan is not None:
        raise RuntimeError(f"round {server._plan.round} is in progress: cannot load a state")
    mine = server.settings()
    diffs = [
        f"{key}: this server has {mine.get(key)!r}, the state has {state.settings.get(key)!r}"
        for key in sorted(set(mine) | set(state.settings))
        if mine.get(key) != state.settings.get(key)
    ]
    own = server.trainer.back.state_dict()
    diffs += weight_differences("back", own, state.back)
    diffs += weight_differences("best back", own, state.best)
    rounds = [r.round for r in state.reports]
    if rounds != sorted(set(rounds)) or (rounds and rounds[-1] != state.round):
        diffs.append(
            f"reports: expected increasing rounds ending with round {state.round}, got {rounds}"
        )
    if state.best_round not in {0, *rounds}:
        diffs.append(f"best_round: {state.best_round} is not a reported round ({rounds})")
    if diffs:
        raise StateMismatch("the saved state does not fit this server: " + "; ".join(diffs))
    try:
        server.refresh.load_state_dict(state.refresh)
    except ValueError as err:
        raise StateMismatch(str(err)) from err
    server.trainer.back.load_state_dict(state.back)
    server._best_state = {k: v.detach().to("cpu", copy=True) for k, v in state.best.items()}
    server.best_round, server.best_val_accuracy = state.best_round, state.best_val_accuracy
    server.ledger.records = list(state.ledger)
    server.reports = list(state.reports)
    server._current = server.reports[-1] if server.reports else RoundReport(round=state.round)
    server._stats = None
    server.buffer.clear()
    for client in sorted(state.buffer, key=client_sort_key):
        server.buffer.put_entry(client, state.buffer[client])


def weight_differences(
    what: str, own: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]
) -> list[str]:
    """What keeps ``given`` from loading into a module whose state dict is ``own``."""
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    shapes = sorted(
        f"{k}: {_describe(given[k])} for {_describe(own[k])}"
        for k in set(own) & set(given)
        if _describe(given[k]) != _describe(own[k])
    )
    out = []
    if missing or unexpected or shapes:
        out.append(
            f"{what} weights: {len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} "
            f"unexpected (e.g. {unexpected[:3]}), {len(shapes)} of another shape or dtype "
            f"(e.g. {shapes[:3]})"
        )
    return out


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"{tuple(value.shape)} {value.dtype}"
    return type(value).__name__


def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
