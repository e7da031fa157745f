"""EcoFed on a Flower Grid, and its device side as a ClientApp, built from one config.

The Flower App (:mod:`ecofed_flwr.app`) and the comparison harness
(:mod:`ecofed_flwr.baselines.harness`) both run EcoFed through these two functions:
:func:`run_federation` builds the strategy, wires it to a
:class:`~ecofed_flwr.lifecycle.RunLifecycle` (the run folder, checkpoint and results) and
runs it on a Grid; :func:`make_client_app` is the matching ClientApp.
"""

from __future__ import annotations

import copy
import functools
import os
import sys
import time
from collections.abc import Callable
from logging import INFO
from typing import Any

import torch
from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.supercore import log

from ecofed_flwr.app.task import (
    build_split,
    client_data,
    describe_config,
    num_classes_of,
    partition_draw,
    test_set,
    train_size,
)
from ecofed_flwr.clients import add_ecofed_handlers
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.data import LocalData
from ecofed_flwr.handshake import describe_split
from ecofed_flwr.lifecycle import RunLifecycle
from ecofed_flwr.models import SplitModel, run_front
from ecofed_flwr.strategies import EcoFedStrategy
from ecofed_flwr.strategies.ecofed import NoUploadError
from ecofed_flwr.trainer import evaluate_back, resolve_device

__all__ = ["make_client_app", "run_federation"]


def run_federation(
    grid: Grid,
    cfg: EcoFedConfig,
    num_nodes_hint: int = 0,
    evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None,
) -> dict[str, Any]:
    """Run EcoFed as ``cfg`` says on ``grid``; write and return the results document.

    ``evaluate_fn(round, arrays)``, when given, replaces the test-set evaluation of every
    round (the test set is then not loaded): a benchmark that scores the test set once,
    at a round it selects itself, passes its own.

    The run folder and its files are those of :class:`~ecofed_flwr.lifecycle.RunLifecycle`.
    With ``resume`` the run goes on from the checkpoint after its last finished round. The
    run is ``"completed"`` only when uploads were accepted and the kept back is clearly
    above chance on the validation hold-out; otherwise ``"failed"`` with the reason.

    Raises
    ------
    CheckpointError
        With ``resume``, if the checkpoint is missing, damaged, or from other settings.
    """
    cfg.apply_offline()
    started = time.perf_counter()
    split = build_split(cfg)
    num_classes = num_classes_of(cfg)
    device = resolve_device(cfg.device)
    if evaluate_fn is None:
        images, labels = test_set(cfg)
    else:  # the caller scores every round itself
        images, labels = torch.zeros(0, 1), torch.zeros(0, dtype=torch.int64)
    # The front is frozen, so the test activations are computed once for the whole run.
    test_activations = run_front(split.front, images, cfg.front_batch_size)
    eval_back = copy.deepcopy(split.back).to(device)
    eval_back.to(memory_format=torch.channels_last)
    log(
        INFO,
        "EcoFed: %s cut %s (%s weights), activation %s, %d test samples, %.1f s set-up",
        split.model_name,
        split.cut,
        split.weights,
        split.activation_shape,
        len(labels),
        time.perf_counter() - started,
    )

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        # Test figures are reported only: selection uses the uploads' hold-out.
        eval_back.load_state_dict(arrays.to_torch_state_dict())
        loss, accuracy = evaluate_back(eval_back, test_activations, labels)
        return MetricRecord({"accuracy": accuracy, "loss": loss})

    strategy = EcoFedStrategy(
        # A copy: the split is cached per process and must not carry training between runs.
        back=copy.deepcopy(split.back),
        fingerprint=split.fingerprint,
        activation_shape=split.activation_shape,
        num_classes=num_classes,
        min_available_nodes=cfg.nodes_to_wait_for(num_nodes_hint),
        upload_config={"front-batch-size": cfg.front_batch_size},
        front_description=describe_split(split),
        partition_assignment=cfg.partition_assignment,
        num_partitions=cfg.num_partitions,
        **cfg.server_settings(),
    )
    lifecycle = RunLifecycle(
        cfg,
        strategy.server,
        split,
        adapter_state=strategy.state_dict,
        load_adapter_state=strategy.load_state_dict,
        excluded_nodes=lambda: strategy.excluded_nodes,
        num_test_samples=len(labels),
        started=started,
    )
    lifecycle.start()
    strategy.on_round = lifecycle.on_round
    failure = ""
    try:
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(),
            num_rounds=cfg.num_server_rounds,
            timeout=cfg.round_timeout,
            evaluate_fn=evaluate if evaluate_fn is None else evaluate_fn,
        )
    except NoUploadError as err:
        failure = str(err)
    num_partitions = strategy.num_partitions or len(list(grid.get_node_ids()))
    samples = train_size(cfg)
    lifecycle.extra["ray"] = ray_in_use()
    if lifecycle.extra["ray"]:
        log(INFO, "EcoFed: devices ran on %s", describe_ray(lifecycle.extra["ray"]))
    lifecycle.extra["data_partitions"] = {
        "draw": partition_draw(cfg, num_partitions, samples),
        "num_partitions": num_partitions,
        "train_samples": samples,
        "assignment": cfg.partition_assignment,
    }
    return lifecycle.finish(failure)


def ray_in_use() -> dict[str, Any] | None:
    """The Ray this process drives (Flower's simulation), or None outside one.

    ``address`` is ``RAY_ADDRESS`` as the run got it (``local``, ``auto``, ``HOST:PORT``);
    ``nodes`` the Ray nodes alive at the end of the run, with their CPUs and GPUs.
    """
    ray = sys.modules.get("ray")  # imported by Flower's simulation engine, never by us
    if ray is None or not ray.is_initialized():
        return None
    alive = [n for n in ray.nodes() if n.get("Alive")]
    resources = ray.cluster_resources()
    return {
        "address": os.environ.get("RAY_ADDRESS", ""),
        "nodes": len(alive),
        "node_addresses": sorted(str(n.get("NodeManagerAddress", "")) for n in alive),
        "cpus": float(resources.get("CPU", 0.0)),
        "gpus": float(resources.get("GPU", 0.0)),
    }


def describe_ray(info: dict[str, Any]) -> str:
    """One line: which Ray, how many nodes, CPUs and GPUs."""
    return (
        f"Ray {info['address'] or '(started by Flower)'}: {info['nodes']} node(s) "
        f"({', '.join(info['node_addresses'])}), {info['cpus']:g} CPUs, {info['gpus']:g} GPUs"
    )


def make_client_app(cfg: EcoFedConfig | None = None) -> ClientApp:
    """A ClientApp serving EcoFed uploads with ``cfg``, or with the run config when None.

    The device's partition comes from its node config (``partition-id``, ``num-partitions``).
    It answers the handshake from the config alone
    (:func:`~ecofed_flwr.app.task.describe_config`): no front is built and no data read
    until the first upload request.
    """

    def config(context: Context) -> EcoFedConfig:
        settings = cfg or EcoFedConfig.from_mapping(context.run_config)
        settings.apply_offline()  # on every node: Ray workers elsewhere have their own env
        return settings

    def front(context: Context) -> SplitModel:
        return build_split(config(context))

    def data(context: Context) -> LocalData:
        node = context.node_config
        try:
            partition_id = int(node["partition-id"])
            num_partitions = int(node["num-partitions"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                "node config needs partition-id and num-partitions "
                "(flower-supernode --node-config 'partition-id=0 num-partitions=10')"
            ) from err
        return _cached_data(config(context), partition_id, num_partitions)

    def describe(context: Context) -> dict[str, str | int]:
        return describe_config(config(context))

    return add_ecofed_handlers(ClientApp(), front, data, describe=describe)


@functools.lru_cache(maxsize=2)
def _cached_data(cfg: EcoFedConfig, partition_id: int, num_partitions: int) -> LocalData:
    # Ray actors live for the whole simulation: prepare each partition once per process.
    return client_data(cfg, partition_id, num_partitions)
