"""EcoFed on Flower's legacy API: a ``flwr.server.strategy.Strategy`` for ServerAppComponents.

For apps built on ``ServerApp(server_fn=...)`` with ``NumPyClient`` devices
(:class:`~ecofed_flwr.clients.EcoFedNumPyClient`). The round logic is
:class:`~ecofed_flwr.server.EcoFedServer`'s; every setting, the node registry, the
validation spec and the byte meter are those of
:class:`~ecofed_flwr.strategies.base.EcoFedAdapter`, shared with the Message-API strategy;
this class only maps the legacy hooks onto the core server's one round driver:

============================ =====================================================
legacy hook                  EcoFed
============================ =====================================================
``initialize_parameters``    the back's weights (never sent to devices)
``configure_fit``            handshake with new clients (``get_properties``), then
                             ``begin_round``: the clients the refresh policy names
``aggregate_fit``            ``decode_upload`` each reply, ``accept``/``refuse``,
                             ``train``
``evaluate``                 ``close_round``: train (unless ``aggregate_fit`` did;
                             Flower skips it in replay rounds), validate, test
                             (``evaluate_fn``), end the round
``configure_evaluate``       nothing: EcoFed evaluates at the server
============================ =====================================================
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Mapping
from logging import INFO, WARNING
from typing import Any

from flwr.app import Message, RecordDict
from flwr.common import (
    Code,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    GetPropertiesIns,
    GetPropertiesRes,
    Parameters,
    Scalar,
    ndarrays_to_parameters,
)
from flwr.common.constant import MessageTypeLegacy
from flwr.compat.common.recorddict_compat import (
    fitins_to_recorddict,
    fitres_to_recorddict,
    getpropertiesins_to_recorddict,
    getpropertiesres_to_recorddict,
)
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import Strategy
from flwr.supercore import log

from ecofed_flwr import defaults
from ecofed_flwr.meter import Part
from ecofed_flwr.nodes import wait_for_nodes
from ecofed_flwr.protocol import UploadRefused
from ecofed_flwr.protocol.legacy import LAYOUT_KEY, content_from_fit_result
from ecofed_flwr.round_log import short_reason
from ecofed_flwr.strategies.base import EcoFedAdapter
from ecofed_flwr.strategies.ecofed import FlowerEvaluateFn, state_to_arrays

_PARAMETERS_KEY = "fitres.parameters"
_TRAIN = "train"


class EcoFedLegacyStrategy(EcoFedAdapter, Strategy):
    """EcoFed for ``ServerApp(server_fn=...)``: the legacy-API twin of ``EcoFedStrategy``.

    Devices run a frozen, pre-trained front forward only and upload its encoded activations
    with their labels from ``NumPyClient.fit``; the server keeps them in a replay buffer and
    trains the back on them, round after round, without asking for them again and without
    sending any weight down (https://arxiv.org/abs/2304.05495).

    Parameters
    ----------
    num_rounds : int (default: ``defaults.NUM_SERVER_ROUNDS``)
        Rounds of the run: give ``ServerConfig(num_rounds=...)``'s value (the legacy API does
        not tell strategies). It spans the learning-rate schedule; after this round the run's
        kept back is logged, and ``NoUploadError`` is raised if no upload was ever accepted.
    evaluate_fn : Callable[[int, ArrayRecord], MetricRecord | None], optional
        Centralized test evaluation of the back after every round (and round 0), with the
        signature of ``EcoFedStrategy.start``'s ``evaluate_fn`` (e.g.
        :func:`~ecofed_flwr.strategies.make_evaluate_fn`); reported only.
    **settings
        Every EcoFed setting of :class:`~ecofed_flwr.strategies.base.EcoFedAdapter`
        (``back``, ``fingerprint``, ``activation_shape``, ``num_classes``, ``codec``,
        ``refresh``, ``replay``, ``trainer``, sampling, limits, ``on_round``, ``seed``), with
        their defaults from ``ecofed_flwr.defaults``.

    Notes
    -----
    Bytes: Flower's legacy ``ClientProxy`` hides its messages, so each exchange
    (``get_properties`` and ``fit``, request and reply) is rebuilt from the same records
    Flower's compat layer sends (``fitins_to_recorddict``, ``fitres_to_recorddict``, ...), in
    a message of the same type to the same node, and measured by the same
    :class:`~ecofed_flwr.meter.ByteMeter` as the Message API's.

    Checkpoints: ``on_round`` sees every round's report; ``self.server.state()`` and
    :meth:`state_dict` then hold the run. A strategy restored from them
    (``self.server.load_state`` and :meth:`load_state_dict`) goes on after the restored
    round: Flower's legacy loop counts rounds from 1 again, and the rounds already finished
    are answered from their reports, without asking any device.
    """

    def __init__(
        self,
        num_rounds: int = defaults.NUM_SERVER_ROUNDS,
        evaluate_fn: FlowerEvaluateFn | None = None,
        **settings: Any,
    ) -> None:
        if num_rounds < 1:
            raise ValueError(f"num_rounds must be >= 1, got {num_rounds}")
        super().__init__(**settings)
        self.num_rounds = num_rounds
        self.evaluate_fn = evaluate_fn
        self.server.num_rounds = num_rounds
        if evaluate_fn is not None:
            self.server.evaluate_fn = self._evaluate_back
        self._proxies: dict[str, ClientProxy] = {}  # client name -> proxy, connected now

    @classmethod
    def from_split(
        cls,
        split: Any,
        num_rounds: int = defaults.NUM_SERVER_ROUNDS,
        evaluate_fn: FlowerEvaluateFn | None = None,
        **settings: Any,
    ) -> EcoFedLegacyStrategy:
        """The legacy strategy for a split (the drop-in); ``settings`` are
        :meth:`EcoFedAdapter.from_split`'s (``codec=``, ``refresh=``, ``learning_rate=``...,
        and Flower's FedAvg names). An unknown setting raises a TypeError naming this class
        and the closest setting.
        """
        return super().from_split(split, num_rounds=num_rounds, evaluate_fn=evaluate_fn, **settings)

    def __repr__(self) -> str:
        server = self.server
        return (
            f"EcoFedLegacyStrategy(codec={server.codec.name}, refresh={server.refresh.name}, "
            f"replay={server.replay}, num_rounds={self.num_rounds})"
        )

    # ------------------------------------------------------------------ hooks

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        """The back's weights: the legacy server's "global model" (devices never get it)."""
        self.begin_run(self.num_rounds)
        return self._back_parameters()

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """Handshake with new clients, sample (seeded, by partition id) and ask the uploaders.

        ``parameters`` is not sent: devices never receive weights in EcoFed.
        """
        if server_round <= self.server.round:  # finished before the run was restored
            log(INFO, "EcoFed round %d: finished before the resume, skipped", server_round)
            return []
        if server_round == self.num_rounds + 1:
            log(
                WARNING,
                "EcoFed: round %d beyond num_rounds=%d: the learning-rate schedule has ended; "
                "give the strategy ServerConfig's num_rounds",
                server_round,
                self.num_rounds,
            )
        self._discover(client_manager, server_round)
        plan = self.server.begin_round(server_round, list(self._proxies))
        config: dict[str, Scalar] = self.upload_request(server_round, {})
        instructions = []
        for client in plan.uploaders:
            proxy = self._proxies[client]
            ins = FitIns(Parameters(tensors=[], tensor_type="numpy.ndarray"), dict(config))
            content = fitins_to_recorddict(ins, keep_input=True)
            self.meter.book(
                server_round, client, "down", _request(content, _TRAIN, proxy, server_round)
            )
            instructions.append((proxy, ins))
        if not instructions:
            log(
                INFO,
                "EcoFed round %d: a replay round, no device is asked (Flower's own "
                "'configure_fit: no clients selected, cancel' below is expected); the server "
                "trains on its buffer",
                server_round,
            )
        return instructions

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Validate and buffer the uploads (``decode_upload``), then train the back."""
        server = self.server
        for proxy, res in results:
            client = self.nodes.client_of(proxy.node_id)
            self._book_reply(server_round, client, proxy, res)
            try:
                content = content_from_fit_result(
                    res.parameters.tensors,
                    res.num_examples,
                    res.metrics,
                    res.parameters.tensor_type,
                )
            except UploadRefused as err:
                self.take_reply(client, None, f"{err.category}: {err}")
                continue
            self.take_reply(client, content, None)
        errors: list[str] = []
        for failure in failures:
            if isinstance(failure, BaseException):
                short = self.device_error("?", f"{type(failure).__name__}: {failure}")
                if short not in errors:
                    errors.append(short)
                continue
            proxy, res = failure
            client = self.nodes.client_of(proxy.node_id)
            reason = f"client status {res.status.code.name}: {short_reason(res.status.message)}"
            self.take_reply(client, None, reason)
        if errors:
            # The legacy server does not say which client an exception came from.
            for client in server.plan.uploaders:
                server.refuse(client, "no reply; this round's failed fits: " + "; ".join(errors))
            log(WARNING, "EcoFed round %d: failed fits: %s", server_round, "; ".join(errors))
        server.train()
        return self._back_parameters(), dict(server.train_metrics())

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        """EcoFed evaluates at the server (hold-out and ``evaluate_fn``): no requests."""
        return []

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        """No federated evaluation (see :meth:`configure_evaluate`)."""
        return None, {}

    def evaluate(
        self, server_round: int, parameters: Parameters
    ) -> tuple[float, dict[str, Scalar]] | None:
        """Close the round (``close_round``): train (replay rounds), validate, test, report.

        ``parameters`` is ignored: the core server holds the back. Returns the test loss
        (else the validation loss) and the round's metrics (test metrics of ``evaluate_fn``
        plus ``val_accuracy``/``val_loss``), or None when there are none. A round finished
        before a resume returns its stored figures.

        Raises
        ------
        NoUploadError
            After round ``num_rounds`` if no upload at all was accepted.
        """
        server = self.server
        done = {r.round: r for r in server.reports}
        if server_round in done and (server_round > 0 or len(done) > 1):
            report = done[server_round]  # restored from a checkpoint: not run again
        elif server_round == 0:
            report = self.report(server.evaluate_initial())
        else:
            report = self.report(server.close_round())
        if server_round == self.num_rounds and server_round not in done:
            self.finish_run()
        metrics: dict[str, Scalar] = dict(report.metrics)
        if report.val_accuracy is not None and report.val_loss is not None:
            metrics.update(val_accuracy=report.val_accuracy, val_loss=report.val_loss)
        loss = metrics.get("loss", metrics.get("val_loss"))
        if loss is None:
            return None
        return float(loss), metrics

    # ------------------------------------------------------------------ internals

    def _evaluate_back(self, back: Any) -> dict[str, float]:
        assert self.evaluate_fn is not None
        result = self.evaluate_fn(self.server.round, state_to_arrays(back.state_dict()))
        return {} if result is None else {k: float(v) for k, v in result.items()}  # type: ignore[arg-type]

    def _back_parameters(self) -> Parameters:
        state = self.server.trainer.back.state_dict()
        return ndarrays_to_parameters([v.detach().cpu().numpy() for v in state.values()])

    def _discover(self, client_manager: ClientManager, server_round: int) -> None:
        """Wait for enough clients, ask each new one ``get_properties``; keep the proxies of
        the clients connected now."""

        def connected() -> list[int]:
            return [p.node_id for p in client_manager.all().values()]

        wait_for_nodes(connected, self.min_available_nodes, self.timeout, server_round)
        proxies = {p.node_id: p for p in client_manager.all().values()}
        new = self.nodes.connected(proxies)
        if new:
            with concurrent.futures.ThreadPoolExecutor() as pool:
                answers = list(pool.map(self._ask_properties, [proxies[n] for n in new]))
            for node, (properties, request, reply) in zip(new, answers, strict=True):
                self.admit(server_round, node, properties, request, reply)
        self._proxies = {c: proxies[n] for c, n in self.nodes.clients().items()}

    def _ask_properties(
        self, proxy: ClientProxy
    ) -> tuple[dict[str, Scalar], Message, Message | None]:
        ins = GetPropertiesIns(config=dict(self.front_description))
        request = _request(
            getpropertiesins_to_recorddict(ins), MessageTypeLegacy.GET_PROPERTIES, proxy
        )
        try:
            res: GetPropertiesRes = proxy.get_properties(ins, self.timeout, None)
        except Exception as err:  # a device without EcoFed (or a failing one) still takes part
            log(WARNING, "EcoFed: client %s did not answer get_properties: %s", proxy.cid, err)
            return {}, request, None
        reply = Message(getpropertiesres_to_recorddict(res), reply_to=request)
        return (dict(res.properties) if res.status.code == Code.OK else {}), request, reply

    def _book_reply(self, server_round: int, client: str, proxy: ClientProxy, res: FitRes) -> None:
        """One ledger message per reply, its bytes by purpose (as Flower sends them)."""
        request = _request(RecordDict(), _TRAIN, proxy, server_round)
        reply = Message(fitres_to_recorddict(res, keep_input=True), reply_to=request)
        self.meter.book(server_round, client, "up", reply, _layout_parts(reply, res.metrics))


def _request(
    content: RecordDict, message_type: str, proxy: ClientProxy, server_round: int = 0
) -> Message:
    """The message Flower's ``GridClientProxy`` sends for ``content`` (the legacy server
    passes the round as group id to fits, none to our ``get_properties``)."""
    group_id = str(server_round) if server_round else ""
    message = Message(
        content=content, message_type=message_type, dst_node_id=proxy.node_id, group_id=group_id
    )
    # The id a pushed message gets (its object id): a reply carries it as reply_to_message_id.
    message.metadata.__dict__["_message_id"] = message.object_id
    return message


def _layout_parts(reply: Message, metrics: Mapping[str, Scalar]) -> dict[str, list[Part]]:
    """The activation and label arrays of a legacy fit reply, for the byte meter.

    The arrays of ``fitres.parameters`` are keyed by position; the layout string (the
    device's claim, used only to attribute bytes) names each one's record.
    """
    record = reply.content.array_records.get(_PARAMETERS_KEY)
    layout = metrics.get(LAYOUT_KEY)
    parts: dict[str, list[Part]] = {"activations": [], "labels": []}
    if record is None or not isinstance(layout, str):
        return parts
    for index, entry in enumerate(layout.split(";")[: len(record)]):
        name = entry.partition("/")[0]
        array = record.get(str(index))
        if name in parts and array is not None:
            parts[name].append(array)
    return parts
