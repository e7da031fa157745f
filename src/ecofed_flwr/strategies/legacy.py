"""EcoFed on Flower's legacy API: a ``flwr.server.strategy.Strategy`` for ServerAppComponents.

For apps built on ``ServerApp(server_fn=...)`` with ``NumPyClient`` devices
(:class:`~ecofed_flwr.clients.EcoFedNumPyClient`). The round logic is
:class:`~ecofed_flwr.server.EcoFedServer`'s, every setting, the validation spec and the ledger
are those of an :class:`~ecofed_flwr.strategies.EcoFedStrategy`; this class only maps the
legacy hooks onto the core server's round steps:

============================ =====================================================
legacy hook                  EcoFed
============================ =====================================================
``initialize_parameters``    the back's weights (never sent to devices)
``configure_fit``            handshake with new clients (``get_properties``), then
                             ``begin_round``: the clients the refresh policy names
``aggregate_fit``            ``decode_upload`` each reply, ``accept``/``refuse``,
                             ``train``
``evaluate``                 ``train`` (replay rounds, where Flower skips
                             ``aggregate_fit``), hold-out validation and
                             ``evaluate_fn``, ``end_round``
``configure_evaluate``       nothing: EcoFed evaluates at the server
============================ =====================================================
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Mapping
from logging import ERROR, INFO, WARNING
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
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

from ecofed_flwr import defaults
from ecofed_flwr.handshake import FINGERPRINT_KEY, PARTITION_KEY, front_differences
from ecofed_flwr.ledger import Ledger
from ecofed_flwr.legacy_protocol import LAYOUT_KEY, content_from_fit_result
from ecofed_flwr.models import SplitModel
from ecofed_flwr.protocol import ByteSplit, UploadRefused, decode_upload, wire_nbytes
from ecofed_flwr.server import EcoFedServer, RoundReport, UploadNotExpected
from ecofed_flwr.strategies.ecofed import (
    EcoFedStrategy,
    FlowerEvaluateFn,
    NoUploadError,
    _short_reason,
    _state_to_arrays,
    refusal_summary,
    split_settings,
)

_PARAMETERS_KEY = "fitres.parameters"
_TRAIN = "train"


class EcoFedLegacyStrategy(Strategy):
    """EcoFed for ``ServerApp(server_fn=...)``: the legacy-API twin of ``EcoFedStrategy``.

    Devices run a frozen, pre-trained front forward only and upload its encoded activations
    with their labels from ``NumPyClient.fit``; the server keeps them in a replay buffer and
    trains the back on them, round after round, without asking for them again and without
    sending any weight down (https://arxiv.org/abs/2304.05495).

    Parameters
    ----------
    ecofed : EcoFedStrategy
        Every EcoFed setting (codec, refresh, replay, trainer, validation, sampling, limits,
        ``on_round``, seed), with their defaults from ``ecofed_flwr.defaults``: this adapter
        drives its core server (``ecofed.server``), checks uploads against its spec and books
        bytes in its ledger. Its Message-API hooks are not used.
    num_rounds : int (default: ``defaults.NUM_SERVER_ROUNDS``)
        Rounds of the run: give ``ServerConfig(num_rounds=...)``'s value (the legacy API does
        not tell strategies). It spans the learning-rate schedule; after this round the run's
        kept back is logged, and ``NoUploadError`` is raised if no upload was ever accepted.
    evaluate_fn : Callable[[int, ArrayRecord], MetricRecord | None], optional
        Centralized test evaluation of the back after every round (and round 0), with the
        signature of ``EcoFedStrategy.start``'s ``evaluate_fn`` (e.g.
        :func:`~ecofed_flwr.strategies.make_evaluate_fn`); reported only.

    Notes
    -----
    Bytes: Flower's legacy ``ClientProxy`` hides its messages, so each exchange
    (``get_properties`` and ``fit``, request and reply) is rebuilt from the same records
    Flower's compat layer sends (``fitins_to_recorddict``, ``fitres_to_recorddict``, ...), in
    a message of the same type to the same node, and measured with
    :func:`~ecofed_flwr.protocol.wire_nbytes`, object by object as Flower transmits them.
    """

    def __init__(
        self,
        ecofed: EcoFedStrategy,
        num_rounds: int = defaults.NUM_SERVER_ROUNDS,
        evaluate_fn: FlowerEvaluateFn | None = None,
    ) -> None:
        if num_rounds < 1:
            raise ValueError(f"num_rounds must be >= 1, got {num_rounds}")
        self.ecofed = ecofed
        self.num_rounds = num_rounds
        self.evaluate_fn = evaluate_fn
        self.server.num_rounds = num_rounds
        if evaluate_fn is not None:
            self.server.evaluate_fn = self._evaluate_back
        self._client_of: dict[str, str] = {}  # ClientProxy.cid -> client key
        self._taken: set[str] = set()
        self._excluded: dict[str, str] = {}
        self._trained_round = 0
        self._started = time.perf_counter()

    @classmethod
    def from_split(
        cls,
        split: SplitModel,
        num_rounds: int = defaults.NUM_SERVER_ROUNDS,
        evaluate_fn: FlowerEvaluateFn | None = None,
        **settings: Any,
    ) -> EcoFedLegacyStrategy:
        """The legacy strategy for a split (the drop-in); ``settings`` are
        :meth:`EcoFedStrategy.from_split`'s (``codec=``, ``refresh=``, ``learning_rate=``...).
        An unknown setting raises a TypeError naming this class and the closest setting.
        """
        settings = split_settings(cls.__name__ + ".from_split", settings)
        return cls(EcoFedStrategy.from_split(split, **settings), num_rounds, evaluate_fn)

    # ------------------------------------------------------------------ views

    @property
    def server(self) -> EcoFedServer:
        """The core server: buffer, policies, trainer, hold-out, best back."""
        return self.ecofed.server

    @property
    def ledger(self) -> Ledger:
        """The communication ledger."""
        return self.ecofed.ledger

    @property
    def reports(self) -> list[RoundReport]:
        """The reports of the rounds run so far (round 0 first)."""
        return self.server.reports

    @property
    def split(self) -> SplitModel | None:
        """The split of :meth:`from_split`, else None."""
        return self.ecofed.split

    @property
    def excluded_clients(self) -> dict[str, str]:
        """Clients (by ``ClientProxy.cid``) never asked again, with the reason."""
        return dict(self._excluded)

    def __repr__(self) -> str:
        server = self.server
        return (
            f"EcoFedLegacyStrategy(codec={server.codec.name}, refresh={server.refresh.name}, "
            f"replay={server.replay}, num_rounds={self.num_rounds})"
        )

    # ------------------------------------------------------------------ hooks

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        """The back's weights: the legacy server's "global model" (devices never get it)."""
        self._started = time.perf_counter()
        log(INFO, "Starting %s strategy:", self.__class__.__name__)
        self.ecofed.summary()
        return self._back_parameters()

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """Handshake with new clients, sample (seeded, by partition id) and ask the uploaders.

        ``parameters`` is not sent: devices never receive weights in EcoFed.
        """
        if server_round == self.num_rounds + 1:
            log(
                WARNING,
                "EcoFed: round %d beyond num_rounds=%d: the learning-rate schedule has ended; "
                "give the strategy ServerConfig's num_rounds",
                server_round,
                self.num_rounds,
            )
        proxies = self._discover(client_manager, server_round)
        plan = self.server.begin_round(server_round, list(proxies))
        config: dict[str, Scalar] = {
            **self.ecofed.upload_config,
            **self.ecofed.front_description,
            "server-round": server_round,
            "codec": self.server.codec.name,
        }
        instructions = []
        for client in plan.uploaders:
            proxy = proxies[client]
            ins = FitIns(Parameters(tensors=[], tensor_type="numpy.ndarray"), dict(config))
            content = fitins_to_recorddict(ins, keep_input=True)
            request = _request(content, _TRAIN, proxy, server_round)
            self.ledger.add(server_round, client, "down", "control", wire_nbytes(request))
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
            client = self._key(proxy)
            self._record_reply(server_round, client, proxy, res)
            try:
                content = content_from_fit_result(
                    res.parameters.tensors, res.num_examples, res.metrics
                )
                upload = decode_upload(content, self.ecofed.upload_spec)
                server.accept(client, upload.batch, upload.labels, upload.device_seconds)
            except (UploadRefused, UploadNotExpected, ValueError) as err:
                reason = f"{err.category}: {err}" if isinstance(err, UploadRefused) else str(err)
                server.refuse(client, reason)
                log(
                    WARNING,
                    "EcoFed round %d: refused reply of %s: %s",
                    server_round,
                    client,
                    reason,
                )
        errors: list[str] = []
        for failure in failures:
            if isinstance(failure, BaseException):
                full = f"{type(failure).__name__}: {failure}"
                if not self.ecofed._logged_traceback:  # the first device error in full, once
                    self.ecofed._logged_traceback = True
                    log(ERROR, "EcoFed: first device error, in full:\n%s", full)
                short = _short_reason(full)
                if short not in errors:
                    errors.append(short)
                continue
            proxy, res = failure
            reason = f"client status {res.status.code.name}: {_short_reason(res.status.message)}"
            server.refuse(self._key(proxy), reason)
            log(WARNING, "EcoFed round %d: %s failed: %s", server_round, self._key(proxy), reason)
        if errors:
            # The legacy server does not say which client an exception came from.
            for client in server.plan.uploaders:
                server.refuse(client, "no reply; this round's failed fits: " + "; ".join(errors))
            log(WARNING, "EcoFed round %d: failed fits: %s", server_round, "; ".join(errors))
        stats = server.train()
        self._trained_round = server_round
        metrics: dict[str, Scalar] = {
            "train-loss": stats.loss if stats.samples else 0.0,
            "train-samples": stats.samples,
            "samples-uploaded": server.current.samples_uploaded,
            "buffer-bytes": server.buffer.nbytes,
        }
        return self._back_parameters(), metrics

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
        """Close the round: train (replay rounds), validate, test, report.

        ``parameters`` is ignored: the core server holds the back. Returns the test loss
        (else the validation loss) and the round's metrics (test metrics of ``evaluate_fn``
        plus ``val_accuracy``/``val_loss``), or None when there are none.

        Raises
        ------
        NoUploadError
            After round ``num_rounds`` if no upload at all was accepted.
        """
        server = self.server
        if server_round == 0:
            report = server.evaluate_initial()
        else:
            if self._trained_round != server_round:  # Flower skips aggregate_fit without fits
                server.train()
                self._trained_round = server_round
            server.evaluate()
            report = server.end_round()
        self.ecofed._log_round(report, self.num_rounds)
        if server_round == self.num_rounds:
            self._finish()
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
        arrays = _state_to_arrays(back.state_dict())
        result = self.evaluate_fn(self.server.round, arrays)
        return {} if result is None else {k: float(v) for k, v in result.items()}  # type: ignore[arg-type]

    def _back_parameters(self) -> Parameters:
        state = self.server.trainer.back.state_dict()
        return ndarrays_to_parameters([v.detach().cpu().numpy() for v in state.values()])

    def _key(self, proxy: ClientProxy) -> str:
        return self._client_of.get(proxy.cid, f"node-{proxy.cid}")

    def _finish(self) -> None:
        server = self.server
        if not len(server.buffer):
            raise NoUploadError(
                f"no upload was accepted in {self.num_rounds} round(s): "
                + refusal_summary(server.reports, self._excluded.values())
            )
        self.ecofed._log_summary(time.perf_counter() - self._started)
        self.ecofed._log_result_kind()

    def _discover(self, client_manager: ClientManager, server_round: int) -> dict[str, ClientProxy]:
        """Wait for enough clients, ask each new one ``get_properties``; the usable ones by key."""
        client_manager.wait_for(self.ecofed.min_available_nodes, int(self.ecofed.timeout))
        proxies = client_manager.all()
        new = [
            p
            for cid, p in proxies.items()
            if cid not in self._client_of and cid not in self._excluded
        ]
        if new:
            with concurrent.futures.ThreadPoolExecutor() as pool:
                answers = list(pool.map(self._ask_properties, new))
            for proxy, (properties, request, reply) in zip(new, answers, strict=True):
                self._admit(proxy, properties, server_round, request, reply)
        return {self._client_of[c]: p for c, p in proxies.items() if c in self._client_of}

    def _ask_properties(
        self, proxy: ClientProxy
    ) -> tuple[dict[str, Scalar], Message, Message | None]:
        ins = GetPropertiesIns(config=dict(self.ecofed.front_description))
        request = _request(
            getpropertiesins_to_recorddict(ins), MessageTypeLegacy.GET_PROPERTIES, proxy
        )
        try:
            res: GetPropertiesRes = proxy.get_properties(ins, self.ecofed.timeout, None)
        except Exception as err:  # a device without EcoFed (or a failing one) still takes part
            log(WARNING, "EcoFed: client %s did not answer get_properties: %s", proxy.cid, err)
            return {}, request, None
        reply = Message(getpropertiesres_to_recorddict(res), reply_to=request)
        return (dict(res.properties) if res.status.code == Code.OK else {}), request, reply

    def _admit(
        self,
        proxy: ClientProxy,
        info: Mapping[str, Scalar],
        server_round: int,
        request: Message,
        reply: Message | None,
    ) -> None:
        client = f"node-{proxy.cid}"
        partition = info.get(PARTITION_KEY)
        if isinstance(partition, int) and not isinstance(partition, bool) and partition >= 0:
            if str(partition) not in self._taken:
                client = str(partition)
        self.ledger.add(server_round, client, "down", "control", wire_nbytes(request))
        if reply is not None:
            self.ledger.add(server_round, client, "up", "control", wire_nbytes(reply))
        if info and info.get(FINGERPRINT_KEY) != self.server.fingerprint:
            diffs = front_differences(self.ecofed.front_description, info)
            reason = f"its front differs from the server's ({'; '.join(diffs)})"
            self._excluded[proxy.cid] = reason
            log(WARNING, "EcoFed: client %s (%s) is not asked again: %s", proxy.cid, client, reason)
            return
        self._client_of[proxy.cid] = client
        self._taken.add(client)

    def _record_reply(
        self, server_round: int, client: str, proxy: ClientProxy, res: FitRes
    ) -> None:
        """One ledger message per reply, its bytes split by purpose (as Flower sends them)."""
        request = _request(RecordDict(), _TRAIN, proxy, server_round)
        reply = Message(fitres_to_recorddict(res, keep_input=True), reply_to=request)
        sizes = _reply_bytes(reply, res.metrics.get(LAYOUT_KEY))
        if sizes.activations == 0:
            self.ledger.add(server_round, client, "up", "control", sizes.total)
            return
        self.ledger.add(server_round, client, "up", "activations", sizes.activations)
        self.ledger.add(server_round, client, "up", "labels", sizes.labels, messages=0)
        self.ledger.add(server_round, client, "up", "control", sizes.control, messages=0)


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


def _reply_bytes(reply: Message, layout: object) -> ByteSplit:
    """Serialized bytes of a legacy fit reply: activation arrays, label arrays and the rest.

    The arrays of ``fitres.parameters`` are keyed by position; the layout string (the
    device's claim, used only to attribute bytes) names each one's record.
    """
    tree = get_all_nested_objects(reply)
    sizes = {object_id: len(node.deflate()) for object_id, node in tree.items()}
    total = sum(sizes.values())
    record = reply.content.array_records.get(_PARAMETERS_KEY)
    if record is None or not isinstance(layout, str):
        return ByteSplit(total=total)
    parts = {"activations": 0, "labels": 0}
    counted: set[str] = set()
    for index, entry in enumerate(layout.split(";")[: len(record)]):
        name = entry.partition("/")[0]
        array = record.get(str(index))
        if name not in parts or array is None:
            continue
        ids = (set(get_all_nested_objects(array)) & sizes.keys()) - counted
        counted.update(ids)
        parts[name] += sum(sizes[i] for i in ids)
    return ByteSplit(total=total, activations=parts["activations"], labels=parts["labels"])
