"""Communication of each protocol, measured on the messages its own code builds.

:func:`client_round_ledger` builds the messages one client exchanges in one round (a refresh
round for EcoFed) with the code the protocol runs in a federation: Flower's ``FedAvg`` and
our FL client for ``fl``, the split-learning engine for ``dpfl`` and ``lgl`` (one real round
of training), the EcoFed strategy and client for EcoFed. Inputs are random: the bytes of
fp32 and fixed-width integer payloads depend on shapes, not values (entropy-coded codecs,
``zstd``, are the exception and need real data). :func:`communication_report` scales one
client round to a whole run under stated assumptions.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import FedAvg

from ecofed_flwr.baselines.contenders import SPLIT_PROTOCOLS, is_ecofed, protocol_config
from ecofed_flwr.baselines.fl import fit_reply, full_model, model_arrays, train_config
from ecofed_flwr.baselines.loopback import LoopbackGrid
from ecofed_flwr.baselines.training import LocalTraining
from ecofed_flwr.baselines.wire import (
    OfflineGrid,
    as_pushed,
    node_id_for,
    record_message,
    task_identity,
)
from ecofed_flwr.buffer import PeriodicRefresh, RefreshOnce, make_refresh_policy
from ecofed_flwr.clients.ecofed import add_ecofed_handlers, upload_reply
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.data import LocalData
from ecofed_flwr.ledger import PURPOSES, Ledger
from ecofed_flwr.models import SplitModel, create_split
from ecofed_flwr.strategies import EcoFedStrategy
from ecofed_flwr.trainer import TrainerConfig

CLIENT = "client-0"


def random_local_data(split: SplitModel, num_samples: int, seed: int = 0) -> LocalData:
    """``num_samples`` random normalised inputs of ``split``'s size, with random labels."""
    generator = torch.Generator().manual_seed(seed)
    shape = (num_samples, split.in_chans, split.input_size, split.input_size)
    images = torch.randn(shape, generator=generator)
    labels = np.random.default_rng(seed).integers(0, split.num_classes, num_samples)
    return LocalData(images, labels.astype(np.int64), split.num_classes)


def client_round_ledger(
    protocol: str, cfg: EcoFedConfig, num_samples: int, num_classes: int = 10
) -> Ledger:
    """Messages one client exchanges in one round of ``protocol``, in a new Ledger.

    Parameters
    ----------
    protocol : str
        A name of :data:`~ecofed_flwr.baselines.contenders.PROTOCOLS`.
    cfg : EcoFedConfig
        The protocol's settings (see :func:`~ecofed_flwr.baselines.protocol_config`).
    num_samples : int
        The client's number of training samples (random inputs).
    num_classes : int (default: 10)

    Returns
    -------
    Ledger
        Round 1 of client ``client-0``; for EcoFed, a refresh round (an upload exchange).
    """
    split = create_split(cfg.model, cfg.cut, cfg.weights, num_classes, cfg.input_size, cfg.seed)
    data = random_local_data(split, num_samples, cfg.seed)
    ledger = Ledger()
    if protocol == "fl":
        _fl_exchange(split, data, cfg, ledger)
    elif protocol in SPLIT_PROTOCOLS:
        engine = SPLIT_PROTOCOLS[protocol](split, LocalTraining.from_config(cfg), ledger)
        engine.train_round(1, {CLIENT: data})
    elif is_ecofed(protocol):
        _ecofed_exchange(split, data, cfg, ledger)
    else:
        raise ValueError(f"unknown protocol {protocol!r}")
    return ledger


def _fl_exchange(split: SplitModel, data: LocalData, cfg: EcoFedConfig, ledger: Ledger) -> None:
    model = full_model(split)
    strategy = FedAvg(
        fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=1, min_available_nodes=1
    )
    grid = OfflineGrid([node_id_for(CLIENT)])
    config = train_config(LocalTraining.from_config(cfg))
    with task_identity():
        (request,) = strategy.configure_train(1, model_arrays(model), config, grid)
    as_pushed(request)
    # No training: the reply's size does not depend on the weights' values.
    reply = fit_reply(request, model, len(data.labels), train_loss=0.0, seconds=0.0)
    record_message(ledger, 1, CLIENT, "down", request)
    record_message(ledger, 1, CLIENT, "up", reply)


def _ecofed_exchange(split: SplitModel, data: LocalData, cfg: EcoFedConfig, ledger: Ledger) -> None:
    strategy = EcoFedStrategy(
        back=copy.deepcopy(split.back),
        fingerprint=split.fingerprint,
        activation_shape=split.activation_shape,
        num_classes=split.num_classes,
        codec=cfg.codec,
        refresh=cfg.refresh,
        replay=cfg.replay,
        trainer=TrainerConfig(device="cpu"),
        fraction_train=1.0,
        min_train_nodes=1,
        min_available_nodes=1,
        upload_config={"front-batch-size": cfg.front_batch_size},
    )
    # The strategy's node handshake (once per node, not counted here) needs a device that
    # answers: the in-process loopback node of partition 0, named CLIENT.
    device = add_ecofed_handlers(ClientApp(), lambda _: split, lambda _: data)
    with task_identity():
        (request,) = strategy.configure_train(
            1, ArrayRecord(), ConfigRecord(), LoopbackGrid(device, 1)
        )
    as_pushed(request)
    reply = upload_reply(request, split.front, data, batch_size=cfg.front_batch_size)
    strategy.validate_reply(reply)  # the server would accept it: the count is of a real upload
    record_message(ledger, 1, CLIENT, "down", request)
    record_message(ledger, 1, CLIENT, "up", reply)


def exchanges_per_client(
    protocol: str, cfg: EcoFedConfig, rounds: int, clients_per_round: int, num_clients: int
) -> float:
    """Expected number of rounds in which one client exchanges messages, over a run.

    Every round it is sampled for FL and DPFL; for EcoFed, only the refresh rounds its
    policy names: ``every:P`` rounds 1, 1+P, ... when sampled; ``once`` exactly once
    (assuming it is sampled at least once: probability ``1 - (1 - K/N)^rounds`` each).
    """
    sampled = rounds * clients_per_round / num_clients
    if not is_ecofed(protocol):
        return sampled
    policy = make_refresh_policy(cfg.refresh)
    if isinstance(policy, PeriodicRefresh):
        return math.ceil(rounds / policy.period) * clients_per_round / num_clients
    if isinstance(policy, RefreshOnce):
        return 1.0
    raise ValueError(f"refresh {cfg.refresh!r} has no schedule known in advance")


def _breakdown(ledger: Ledger) -> dict[str, int]:
    out = {d: ledger.total(d) for d in ("up", "down")}
    for d in ("up", "down"):
        for p in PURPOSES:
            if ledger.total(d, p):
                out[f"{d}_{p}"] = ledger.total(d, p)
    out["messages"] = ledger.messages()
    return out


def communication_report(
    config: EcoFedConfig,
    protocols: Sequence[str] = ("fl", "dpfl", "lgl", "ecofed-paper", "ecofed-best"),
    num_clients: int = 100,
    samples_per_client: int = 500,
    clients_per_round: int = 20,
    rounds: int = 500,
    reference: str = "ecofed-paper",
) -> dict[str, Any]:
    """Bytes per client per round and over a run for ``protocols``, with ratios.

    One client round is measured per protocol (:func:`client_round_ledger`); since all
    clients hold ``samples_per_client`` samples, it stands for every client. A run's total
    is that exchange times :func:`exchanges_per_client` times ``num_clients``; the
    per-client-round figure averages it over the ``rounds * clients_per_round`` sampled
    client rounds (so EcoFed's replay rounds count as zero).
    """
    per_exchange: dict[str, dict[str, int]] = {}
    per_client_round: dict[str, float] = {}
    totals: dict[str, float] = {}
    exchanges: dict[str, float] = {}
    settings: dict[str, dict[str, Any]] = {}
    for name in protocols:
        cfg = protocol_config(name, config)
        ledger = client_round_ledger(name, cfg, samples_per_client)
        per_exchange[name] = _breakdown(ledger)
        exchanges[name] = exchanges_per_client(name, cfg, rounds, clients_per_round, num_clients)
        totals[name] = ledger.total() * exchanges[name] * num_clients
        per_client_round[name] = totals[name] / (rounds * clients_per_round)
        settings[name] = {
            k: v
            for k, v in cfg.to_dict().items()
            if k in ("codec", "refresh", "batch-size", "local-epochs")
        }
    ratios = {
        f"ratio_{name.replace('-', '_')}_to_{reference.replace('-', '_')}": (
            per_client_round[name] / per_client_round[reference]
        )
        for name in protocols
        if name != reference and reference in per_client_round
    }
    return {
        "setting": {
            "model": config.model,
            "cut": config.cut,
            "num_clients": num_clients,
            "samples_per_client": samples_per_client,
            "clients_per_round": clients_per_round,
            "rounds": rounds,
        },
        "protocol_settings": settings,
        "bytes_per_exchange": per_exchange,
        "exchanges_per_client": exchanges,
        "bytes_per_client_round": per_client_round,
        **ratios,
        "total_bytes": totals,
    }
