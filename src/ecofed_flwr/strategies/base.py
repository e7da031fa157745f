"""What both EcoFed strategies share: the core server, the node registry, the upload spec.

:class:`EcoFedAdapter` owns an :class:`~ecofed_flwr.server.EcoFedServer` (the round's logic
and its one driver: ``begin_round``, ``accept``/``refuse``, ``close_round``), a
:class:`~ecofed_flwr.nodes.NodeRegistry` (the handshake's decisions), the
:class:`~ecofed_flwr.protocol.UploadSpec` every reply is checked against and a
:class:`~ecofed_flwr.meter.ByteMeter`. The Message-API strategy and the legacy strategy only
adapt Flower's hooks and messages to it, so both APIs decide alike: the same handshake
answer, the same reply and the same failure get the same outcome and the same log line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from logging import ERROR, INFO, WARNING
from typing import Any, TypeVar

from flwr.app import RecordDict
from flwr.supercore import log
from torch import nn

from ecofed_flwr import defaults
from ecofed_flwr.buffer import RefreshPolicy
from ecofed_flwr.flower_waits import shorten_backoff
from ecofed_flwr.handshake import FINGERPRINT_KEY, describe_front, describe_split
from ecofed_flwr.ledger import Ledger
from ecofed_flwr.meter import ByteMeter
from ecofed_flwr.models import SplitModel
from ecofed_flwr.nodes import Admission, NodeRegistry
from ecofed_flwr.protocol import UploadRefused, UploadSpec, decode_upload
from ecofed_flwr.round_log import (
    log_round,
    log_run_summary,
    refusal_summary,
    short_reason,
    strip_ansi,
)
from ecofed_flwr.schedule import LRSchedule
from ecofed_flwr.server import EcoFedServer, RoundReport, UploadNotExpected
from ecofed_flwr.strategies.settings import keyword_settings, split_settings
from ecofed_flwr.trainer import TrainerConfig

RoundCallback = Callable[[RoundReport], None]
AdapterT = TypeVar("AdapterT", bound="EcoFedAdapter")


#: Waits between tries for a reply part the SuperLink is still receiving: first, and cap
#: (Flower's deployment Grid: 1 s doubling to 10 s, up to 500 tries; these keep about 16
#: minutes for a slow device's parts).
OBJECT_PULL_BACKOFF_SECONDS = (0.02, 2.0)


def shorten_object_waits(grid: Any) -> bool:
    """Make Flower's deployment Grid ask again for a reply's missing parts after 0.02 s.

    A reply is visible on the SuperLink as soon as its device pushed the message, before its
    arrays; Flower 1.42's ``HttpGrid.pull_messages`` then waits 1 s before asking for them
    again, which on loopback is most of an exchange. This wraps the ``pull_objects`` that
    ``flwr.superlink.grid.http_grid`` calls, in this (ServerApp) process, with shorter waits
    (:data:`OBJECT_PULL_BACKOFF_SECONDS`); nothing else changes. Returns whether ``grid`` is
    such a Grid (the simulation's has no parts to wait for).
    """
    from flwr.superlink.grid import http_grid

    if not isinstance(grid, http_grid.HttpGrid):
        return False
    shorten_backoff(http_grid, "pull_objects", *OBJECT_PULL_BACKOFF_SECONDS)
    return True


def exchange(
    grid: Any,
    messages: list[Any],
    timeout: float,
    poll_seconds: float = defaults.REPLY_POLL_SECONDS,
) -> list[Any]:
    """Send ``messages`` on a Message-API Grid and collect their replies, pulling every
    ``poll_seconds`` until all replied or ``timeout`` seconds passed.

    Flower's deployment Grid (``send_and_receive``) pulls every 3 s, which a real device's
    exchange then waits for; this pulls as soon as a reply can be there, and asks again for a
    reply's missing parts after 0.02 s instead of 1 s (:func:`shorten_object_waits`).
    """
    if not messages:
        return []
    shorten_object_waits(grid)
    order = {message_id: i for i, message_id in enumerate(grid.push_messages(messages))}
    waiting = list(order)
    deadline = time.monotonic() + timeout
    replies: list[Any] = []
    while waiting:
        got = list(grid.pull_messages(waiting))
        replies.extend(got)
        answered = {m.metadata.reply_to_message_id for m in got}
        waiting = [i for i in waiting if i not in answered]
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(poll_seconds)
    # In the order the requests were sent, not the order the replies came: a run's ledger
    # (booked reply by reply) then repeats exactly.
    replies.sort(key=lambda m: order.get(m.metadata.reply_to_message_id, len(order)))
    return replies


class EcoFedAdapter:
    """The Flower-facing half both EcoFed strategies share (see the module docstring).

    Parameters
    ----------
    back : nn.Module
        The back-end (server half) to train.
    fingerprint : str
        Fingerprint of the frozen front every upload must come from.
    activation_shape : tuple[int, ...]
        Shape of one sample's activation at the cut.
    num_classes : int
        Labels must lie in ``[0, num_classes)``.
    codec : str (default: ``defaults.CODEC``, "u4")
        Codec every upload must use (see :func:`ecofed_flwr.codec.make_codec`).
    refresh : str | RefreshPolicy (default: "once")
        Which sampled clients upload in a round: ``"every:P"`` (paper: ``every:2``),
        ``"once"`` or ``"stall:N"``.
    replay : str (default: "all")
        What the server trains on besides the round's uploads: ``"all"``, ``"paper"`` or
        ``"sampled"`` (see :class:`~ecofed_flwr.server.EcoFedServer`).
    trainer : TrainerConfig, optional
        Server training settings (default: ``TrainerConfig(seed=seed)``: pooled, lr 0.1,
        batch 128).
    lr_schedule : str | LRSchedule (default: "cosine")
        Learning-rate schedule over the run's server steps.
    validation_fraction : float (default: 0.1)
        Fraction of each upload held out for validation and model selection.
    keep : str (default: "best")
        The result is the back with the best validation accuracy (``"best"``) or the last.
    fraction_train : float (default: 1.0)
        Fraction of connected nodes sampled each round.
    min_train_nodes : int (default: 2)
        Minimum number of nodes sampled each round.
    min_available_nodes : int (default: 2)
        Connected nodes to wait for before the first round.
    max_samples_per_client : int (default: 1_000_000)
        Larger uploads are refused (protects server memory).
    upload_config : dict, optional
        Extra entries for every upload request's config (e.g. ``front-batch-size``).
    front_description : Mapping, optional
        Model, cut, weights and input size of the server's front (see
        :func:`ecofed_flwr.handshake.describe_front`), so that a device with another front
        is told what differs.
    on_round : Callable[[RoundReport], None], optional
        Called after each round (and round 0) with its report.
    seed : int (default: 0)
        Seeds sampling, replay selection, the hold-out and training.
    """

    def __init__(
        self,
        back: nn.Module,
        fingerprint: str,
        activation_shape: tuple[int, ...],
        num_classes: int,
        codec: str = defaults.CODEC,
        refresh: str | RefreshPolicy = defaults.REFRESH,
        replay: str = defaults.REPLAY,
        trainer: TrainerConfig | None = None,
        lr_schedule: str | LRSchedule = defaults.LR_SCHEDULE,
        validation_fraction: float = defaults.VALIDATION_FRACTION,
        keep: str = defaults.KEEP,
        fraction_train: float = defaults.FRACTION_TRAIN,
        min_train_nodes: int = defaults.MIN_TRAIN_NODES,
        min_available_nodes: int = defaults.MIN_AVAILABLE_NODES,
        max_samples_per_client: int = defaults.MAX_SAMPLES_PER_CLIENT,
        upload_config: dict[str, int | float | str | bool] | None = None,
        front_description: Mapping[str, str | int] | None = None,
        on_round: RoundCallback | None = None,
        seed: int = defaults.SEED,
    ) -> None:
        if min_available_nodes < 1:
            raise ValueError(f"min_available_nodes must be >= 1, got {min_available_nodes}")
        if max_samples_per_client < 1:
            raise ValueError(f"max_samples_per_client must be >= 1, got {max_samples_per_client}")
        self.server = EcoFedServer(
            back=back,
            fingerprint=fingerprint,
            activation_shape=activation_shape,
            num_classes=num_classes,
            codec=codec,
            refresh=refresh,
            replay=replay,
            trainer=trainer or TrainerConfig(seed=seed),
            lr_schedule=lr_schedule,
            validation_fraction=validation_fraction,
            keep=keep,
            fraction_train=fraction_train,
            min_train_nodes=min_train_nodes,
            seed=seed,
        )
        self.min_available_nodes = min_available_nodes
        self.upload_spec = UploadSpec(
            codec=self.server.codec,
            fingerprint=fingerprint,
            activation_shape=tuple(activation_shape),
            num_classes=num_classes,
            max_samples=max_samples_per_client,
        )
        self.upload_config = dict(upload_config or {})
        self.front_description = dict(front_description or describe_front(fingerprint))
        self.front_description[FINGERPRINT_KEY] = fingerprint
        self.nodes = NodeRegistry(self.front_description)
        self.meter = ByteMeter(self.server.ledger)
        self.on_round = on_round
        self.timeout = defaults.ROUND_TIMEOUT
        self._logged_traceback = False  # the first device error is logged in full, once
        self._started = time.perf_counter()
        #: The split of :meth:`from_split` (None when built from its parts).
        self.split: SplitModel | None = None

    @classmethod
    def from_split(cls: type[AdapterT], split: Any, **settings: Any) -> AdapterT:
        """An EcoFed strategy for a :class:`~ecofed_flwr.models.SplitModel` (the drop-in).

        ``settings`` are the class's keyword parameters; ``trainer`` may also be given as
        its fields (``learning_rate=0.1, batch_size=128``...) or as its mode
        (``trainer="copies"``). An unknown setting raises a TypeError that names the class
        and the closest known setting (Flower's ``fraction_fit`` -> ``fraction_train``).
        """
        known = keyword_settings(*(k.__init__ for k in cls.__mro__ if issubclass(k, EcoFedAdapter)))
        settings = split_settings(cls.__name__ + ".from_split", settings, known)
        trainer_fields = set(TrainerConfig.__dataclass_fields__)
        trainer_kwargs = {
            k: settings.pop(k) for k in list(settings) if k in trainer_fields - {"seed"}
        }
        if trainer_kwargs:
            if "trainer" in settings:
                raise TypeError(f"give either trainer= or its fields {sorted(trainer_kwargs)}")
            settings["trainer"] = TrainerConfig(
                seed=settings.get("seed", defaults.SEED), **trainer_kwargs
            )
        strategy = cls(
            back=split.back,
            fingerprint=split.fingerprint,
            activation_shape=split.activation_shape,
            num_classes=split.num_classes,
            front_description=describe_split(split),
            **settings,
        )
        strategy.split = split
        return strategy

    # ------------------------------------------------------------------ views

    @property
    def ledger(self) -> Ledger:
        """The communication ledger (every message's bytes)."""
        return self.server.ledger

    @property
    def reports(self) -> list[RoundReport]:
        """The reports of the rounds run so far (round 0 first)."""
        return self.server.reports

    @property
    def excluded_nodes(self) -> dict[int, str]:
        """Nodes never asked again, with the reason (e.g. a different front)."""
        return self.nodes.excluded

    def summary(self) -> None:
        """Log summary configuration of the strategy."""
        server, cfg = self.server, self.server.trainer.config
        log(INFO, "\t├──> EcoFed front fingerprint: %s", server.fingerprint[:16])
        log(
            INFO,
            "\t├──> Codec: %s | refresh: %s | replay: %s | validation %.2f, keep %s",
            server.codec.name,
            server.refresh.name,
            server.replay,
            server.validation_fraction,
            server.keep,
        )
        log(
            INFO,
            "\t├──> Sampling: fraction %.2f, min %d, wait for %d nodes",
            server.fraction_train,
            server.min_train_nodes,
            self.min_available_nodes,
        )
        log(
            INFO,
            "\t└──> Server trainer: %s, lr %g (%s), momentum %g, batch %d, epochs %d on %s",
            cfg.mode,
            cfg.learning_rate,
            server.schedule.name,
            cfg.momentum,
            cfg.batch_size,
            cfg.local_epochs,
            server.trainer.device,
        )

    # ------------------------------------------------------------------ run

    def begin_run(self, num_rounds: int) -> bool:
        """Log the start; True when the server already has rounds (a resumed run)."""
        self._started = time.perf_counter()
        log(INFO, "Starting %s strategy:", self.__class__.__name__)
        self.summary()
        self.server.num_rounds = num_rounds
        resumed = bool(self.server.reports)
        if resumed:
            log(INFO, "EcoFed: resuming after round %d of %d", self.server.round, num_rounds)
        return resumed

    def upload_request(self, server_round: int, config: Mapping[str, Any]) -> dict[str, Any]:
        """The config of a round's upload requests: the app's, ours, the front and codec."""
        return {
            **dict(config),
            **self.upload_config,
            **self.front_description,
            "server-round": server_round,
            "codec": self.server.codec.name,
        }

    def admit(
        self,
        server_round: int,
        node: int,
        info: Mapping[str, Any] | None,
        request: Any,
        reply: Any | None,
    ) -> Admission:
        """Decide a handshake answer (:meth:`NodeRegistry.admit`) and book its messages."""
        admission = self.nodes.admit(node, info)
        self.meter.book(server_round, admission.client, "down", request)
        if reply is not None:
            self.meter.book(server_round, admission.client, "up", reply)
        return admission

    def device_error(self, node: object, reason: str | None) -> str:
        """A device's error as a refusal reason; the run's first is logged in full, once."""
        if not self._logged_traceback:
            self._logged_traceback = True
            log(
                ERROR,
                "EcoFed: first device error (node %s), in full:\n%s",
                node,
                strip_ansi(reason or "(no reason given)"),
            )
        return short_reason(reason)

    def take_reply(self, client: str, content: RecordDict | None, error: str | None) -> None:
        """Validate one reply (``decode_upload``) and buffer it, or refuse it with the reason.

        ``error`` (a device error or failure, already a reason) refuses the reply as is.
        """
        server = self.server
        try:
            if error is not None or content is None:
                raise ValueError(error or "no content")
            upload = decode_upload(content, self.upload_spec)
            server.accept(client, upload.batch, upload.labels, upload.device_seconds)
            return
        except UploadRefused as err:
            reason = f"{err.category}: {err}"
        except (UploadNotExpected, ValueError) as err:
            reason = str(err)
        server.refuse(client, reason)
        log(WARNING, "EcoFed round %d: refused reply of %s: %s", server.round, client, reason)

    def report(self, report: RoundReport) -> RoundReport:
        """Log a finished round (and round 0) and hand it to ``on_round``."""
        log_round(report, self.server.num_rounds)
        if self.on_round:
            self.on_round(report)
        return report

    def finish_run(self) -> None:
        """Close the run: fail loudly without any upload, else log the summary.

        Raises
        ------
        NoUploadError
            If no upload at all was accepted in the whole run.
        """
        server = self.server
        server.check_trained(refusal_summary(server.reports, self.nodes.excluded.values()))
        log_run_summary(server, time.perf_counter() - self._started)
        split = self.split
        what = f"{split.model_name} cut {split.cut}" if split is not None else "the split"
        log(
            INFO,
            "EcoFed: Result.arrays holds the trained back (server half) of %s, not the app's "
            "own model: the classifier is back(front(x)); save both halves with "
            "ecofed_flwr.classifier.save_classifier(path, split, result.arrays."
            "to_torch_state_dict(), codec, settings) and reload with load_classifier(path)",
            what,
        )

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """The adapter's own state for a checkpoint: which node is which client, and the
        nodes never asked again (JSON values; the run's state is ``self.server.state()``)."""
        return self.nodes.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (see :meth:`NodeRegistry.load_state_dict`).

        Raises
        ------
        ValueError
            If ``state`` is not what :meth:`state_dict` produces.
        """
        self.nodes.load_state_dict(state)
