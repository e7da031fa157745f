"""Communication ledger: bytes per round, client, direction and purpose, and a bandwidth model."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, cast

Direction = Literal["up", "down"]
PURPOSES = ("activations", "labels", "weights", "gradients", "control")


@dataclass(frozen=True)
class LedgerRecord:
    """Bytes of one kind moved in one direction for one client in one round."""

    round: int
    client: str
    direction: Direction
    purpose: str
    nbytes: int
    messages: int = 1


class Ledger:
    """An append-only list of :class:`LedgerRecord` with sums over any of its fields."""

    def __init__(self) -> None:
        self.records: list[LedgerRecord] = []

    def add(
        self,
        round: int,
        client: str,
        direction: Direction,
        purpose: str,
        nbytes: int,
        messages: int = 1,
    ) -> None:
        """Record ``nbytes`` of ``purpose`` sent ``direction`` for ``client`` in ``round``."""
        if direction not in ("up", "down"):
            raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
        if purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
        if nbytes < 0 or messages < 0:
            raise ValueError(f"byte and message counts must be >= 0, got {nbytes}, {messages}")
        self.records.append(LedgerRecord(round, client, direction, purpose, nbytes, messages))

    def total(
        self,
        direction: Direction | None = None,
        purpose: str | None = None,
        round: int | None = None,
        client: str | None = None,
    ) -> int:
        """Sum of bytes over the records matching every given field."""
        return sum(r.nbytes for r in self._select(direction, purpose, round, client))

    def messages(
        self,
        direction: Direction | None = None,
        round: int | None = None,
        client: str | None = None,
    ) -> int:
        """Number of messages over the records matching every given field."""
        return sum(r.messages for r in self._select(direction, None, round, client))

    def _select(
        self, direction: str | None, purpose: str | None, round: int | None, client: str | None
    ) -> list[LedgerRecord]:
        return [
            r
            for r in self.records
            if (direction is None or r.direction == direction)
            and (purpose is None or r.purpose == purpose)
            and (round is None or r.round == round)
            and (client is None or r.client == client)
        ]

    def by_round(self) -> dict[int, dict[str, int]]:
        """Per round: bytes keyed ``"<direction>"`` and ``"<direction>_<purpose>"``."""
        table: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in self.records:
            table[r.round][r.direction] += r.nbytes
            table[r.round][f"{r.direction}_{r.purpose}"] += r.nbytes
        return {k: dict(v) for k, v in sorted(table.items())}

    def to_json(self) -> list[dict[str, object]]:
        """All records as plain dicts."""
        return [asdict(r) for r in self.records]

    @classmethod
    def from_json(cls, records: Iterable[Mapping[str, Any]]) -> Ledger:
        """Inverse of :meth:`to_json`, every record checked as :meth:`add` checks it.

        Raises
        ------
        ValueError
            If a record has other fields, or values of the wrong type or range; the message
            names the record's index.
        """
        ledger = cls()
        names = [f.name for f in fields(LedgerRecord)]
        for i, doc in enumerate(records):
            if not isinstance(doc, Mapping) or not set(names) - {"messages"} <= set(doc) <= set(
                names
            ):
                got = sorted(doc) if isinstance(doc, Mapping) else type(doc).__name__
                raise ValueError(f"ledger record {i}: expected the fields {names}, got {got}")
            counts = [doc["round"], doc["nbytes"], doc.get("messages", 1)]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts) or not (
                isinstance(doc["client"], str) and isinstance(doc["direction"], str)
            ):
                raise ValueError(
                    f"ledger record {i}: expected int round, nbytes and messages and str client "
                    f"and direction, got {dict(doc)}"
                )
            try:
                ledger.add(
                    doc["round"],
                    doc["client"],
                    cast(Direction, doc["direction"]),
                    doc["purpose"],
                    doc["nbytes"],
                    doc.get("messages", 1),
                )
            except ValueError as err:
                raise ValueError(f"ledger record {i}: {err}") from err
        return ledger


@dataclass(frozen=True)
class BandwidthModel:
    """Turns bytes into transfer seconds on a link of fixed rates and per-message latency.

    Parameters
    ----------
    uplink_mbps : float (default: 10.0)
        Device-to-server rate in Mbit/s.
    downlink_mbps : float (default: 50.0)
        Server-to-device rate in Mbit/s.
    latency_s : float (default: 0.05)
        Fixed cost of each message, in seconds.
    """

    uplink_mbps: float = 10.0
    downlink_mbps: float = 50.0
    latency_s: float = 0.05

    def __post_init__(self) -> None:
        if self.uplink_mbps <= 0 or self.downlink_mbps <= 0 or self.latency_s < 0:
            raise ValueError(
                "bandwidths must be > 0 and latency >= 0, got "
                f"{self.uplink_mbps}, {self.downlink_mbps}, {self.latency_s}"
            )

    def seconds(self, nbytes: int, direction: Direction, messages: int = 1) -> float:
        """Seconds to move ``nbytes`` in ``messages`` messages in ``direction``."""
        rate = self.uplink_mbps if direction == "up" else self.downlink_mbps
        return nbytes * 8 / (rate * 1e6) + messages * self.latency_s

    def client_round_seconds(self, ledger: Ledger, round: int, client: str) -> float:
        """Transfer seconds of one client in one round (up and down, one after the other)."""
        return sum(
            self.seconds(
                ledger.total(direction=d, round=round, client=client),
                d,
                ledger.messages(direction=d, round=round, client=client),
            )
            for d in ("up", "down")
            if ledger.messages(direction=d, round=round, client=client)
        )
