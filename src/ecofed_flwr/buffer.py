"""Server-side replay buffer of encoded activations, refresh policies and replay selection."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ecofed_flwr.codec import Codec, EncodedBatch


@dataclass(frozen=True)
class BufferEntry:
    """One client's stored upload, kept encoded.

    Attributes
    ----------
    batch : EncodedBatch
        The activations, with any lossless stage removed (still quantized and bit-packed).
    labels : np.ndarray
        int64 labels, one per sample of the upload.
    round : int
        Round of the upload.
    train_rows : np.ndarray
        Sorted rows of the upload the server trains on.
    holdout_rows : np.ndarray
        Sorted rows held out for validation: never in a training batch.
    """

    batch: EncodedBatch
    labels: np.ndarray
    round: int
    train_rows: np.ndarray
    holdout_rows: np.ndarray

    @property
    def num_samples(self) -> int:
        """Training samples (the hold-out excluded)."""
        return int(self.train_rows.shape[0])

    @property
    def num_uploaded(self) -> int:
        """Samples of the upload, hold-out included."""
        return int(self.labels.shape[0])

    @property
    def nbytes(self) -> int:
        return self.batch.nbytes + self.labels.nbytes


class ReplayBuffer:
    """Per-client storage of encoded activation uploads.

    A refresh replaces the client's entry; nothing is ever dequantized in storage, batches are
    decoded on the fly when training reads them.

    Parameters
    ----------
    codec : Codec
        The codec every stored batch must use.
    """

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._entries: dict[str, BufferEntry] = {}

    def put(
        self,
        client: str,
        batch: EncodedBatch,
        labels: np.ndarray,
        round: int,
        holdout_rows: np.ndarray | None = None,
    ) -> None:
        """Store (or replace) ``client``'s entry; the batch must already be validated.

        ``holdout_rows`` (default: none) are kept for validation and never trained on.
        """
        n = batch.num_samples
        if n != labels.shape[0]:
            raise ValueError(
                f"client {client}: {n} activation samples but {labels.shape[0]} labels"
            )
        held = np.unique(np.asarray([] if holdout_rows is None else holdout_rows, dtype=np.int64))
        if held.size and (held[0] < 0 or held[-1] >= n):
            raise ValueError(f"client {client}: hold-out rows outside [0, {n})")
        train = np.setdiff1d(np.arange(n, dtype=np.int64), held, assume_unique=True)
        packed = self.codec.without_lossless(batch)
        self._entries[client] = BufferEntry(
            packed, labels.astype(np.int64, copy=False), round, train, held
        )

    def __contains__(self, client: object) -> bool:
        return client in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, client: str) -> BufferEntry:
        """The entry of ``client`` (KeyError if it has none)."""
        return self._entries[client]

    def clients(self) -> list[str]:
        """Clients that have an entry, sorted (the order never depends on arrival)."""
        return sorted(self._entries, key=client_sort_key)

    def remove(self, client: str) -> None:
        """Drop ``client``'s entry (no error when it has none)."""
        self._entries.pop(client, None)

    def num_samples(self, clients: Sequence[str] | None = None) -> int:
        """Stored training samples of ``clients`` (default: all)."""
        keys = self._entries if clients is None else clients
        return sum(self._entries[c].num_samples for c in keys)

    def num_uploaded(self) -> int:
        """Samples of every stored upload, hold-out included."""
        return sum(e.num_uploaded for e in self._entries.values())

    def num_holdout(self) -> int:
        """Samples held out for validation, over all clients."""
        return sum(int(e.holdout_rows.shape[0]) for e in self._entries.values())

    def holdout(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded hold-out activations and labels of every client (sorted by client)."""
        xs, ys = [], []
        for client in self.clients():
            entry = self._entries[client]
            if entry.holdout_rows.size:
                xs.append(self.decode(client, entry.holdout_rows))
                ys.append(torch.from_numpy(entry.labels[entry.holdout_rows]))
        if not xs:
            return torch.zeros(0), torch.zeros(0, dtype=torch.int64)
        return torch.cat(xs), torch.cat(ys)

    @property
    def nbytes(self) -> int:
        """Bytes held: encoded activations plus labels."""
        return sum(e.nbytes for e in self._entries.values())

    def decode(self, client: str, index: np.ndarray | None = None) -> torch.Tensor:
        """Float activations of ``client``'s samples at ``index`` (default: all)."""
        entry = self._entries[client]
        return torch.from_numpy(self.codec.decode(entry.batch, index))

    def iter_batches(
        self,
        clients: Sequence[str],
        batch_size: int,
        generator: np.random.Generator,
        shuffle: bool = True,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(activations, labels)`` training batches mixed across ``clients``.

        Every training sample of the distinct clients in ``clients`` appears once (hold-out
        rows never do); batches are decoded only when reached.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        owners = list(dict.fromkeys(clients))
        sizes = [self._entries[c].num_samples for c in owners]
        owner = np.repeat(np.arange(len(owners)), sizes)
        row = (
            np.concatenate([self._entries[c].train_rows for c in owners])
            if sizes
            else np.zeros(0, np.int64)
        )
        order = generator.permutation(len(row)) if shuffle else np.arange(len(row))
        for start in range(0, len(order), batch_size):
            picked = order[start : start + batch_size]
            xs, ys = [], []
            for k in np.unique(owner[picked]):
                rows = np.sort(row[picked[owner[picked] == k]])
                entry = self._entries[owners[k]]
                xs.append(self.decode(owners[k], rows))
                ys.append(torch.from_numpy(entry.labels[rows]))
            yield torch.cat(xs), torch.cat(ys)


class RefreshPolicy:
    """Decides which sampled clients upload activations in a round.

    Rounds are Flower's (the first is 1).
    """

    name = "abstract"

    def needs_upload(self, server_round: int, client: str, buffer: ReplayBuffer) -> bool:
        """Whether ``client``, sampled in ``server_round``, uploads its activations."""
        raise NotImplementedError

    def observe(self, server_round: int, accuracy: float) -> None:
        """Tell the policy the round's evaluation result (used by adaptive policies)."""


class PeriodicRefresh(RefreshPolicy):
    """The paper's schedule: every ``period`` rounds, starting with the first.

    Round ``r`` is a refresh round when ``(r - 1) % period == 0``: with ``period=2``, rounds 1,
    3, 5 refresh (every sampled client uploads its whole data set) and 2, 4, 6 replay (no
    device work, no traffic).
    """

    def __init__(self, period: int = 2) -> None:
        if period < 1:
            raise ValueError(f"refresh period must be >= 1, got {period}")
        self.period = period
        self.name = f"every:{period}"

    def needs_upload(self, server_round: int, client: str, buffer: ReplayBuffer) -> bool:
        return (server_round - 1) % self.period == 0


class RefreshOnce(RefreshPolicy):
    """Each client uploads once, the first time it is sampled; replayed ever after."""

    name = "once"

    def needs_upload(self, server_round: int, client: str, buffer: ReplayBuffer) -> bool:
        return client not in buffer


class RefreshOnStall(RefreshPolicy):
    """Upload once, then refresh only when accuracy has stalled.

    A stall is ``patience`` evaluated rounds without an improvement of at least ``min_delta``
    over the best accuracy so far. After a stall the next round is a refresh round for every
    sampled client, and the count starts again. Useful with device-side augmentation, where a
    refresh brings a new draw of augmented samples; without it, a refresh only re-sends the
    same activations, so the stall never triggers more than needed.
    """

    def __init__(self, patience: int = 3, min_delta: float = 0.002) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.patience = patience
        self.min_delta = min_delta
        self.name = f"stall:{patience}"
        self._best = -1.0
        self._since_best = 0
        self._refresh_round: int | None = None

    def observe(self, server_round: int, accuracy: float) -> None:
        if accuracy >= self._best + self.min_delta:
            self._best, self._since_best = accuracy, 0
            return
        self._since_best += 1
        if self._since_best >= self.patience:
            self._refresh_round, self._since_best = server_round + 1, 0

    def needs_upload(self, server_round: int, client: str, buffer: ReplayBuffer) -> bool:
        return client not in buffer or server_round == self._refresh_round


def make_refresh_policy(spec: str) -> RefreshPolicy:
    """Parse ``every:P`` (paper: ``every:2``), ``once`` or ``stall[:PATIENCE]``."""
    kind, _, arg = spec.partition(":")
    try:
        if kind == "every":
            return PeriodicRefresh(int(arg or 2))
        if kind == "once" and not arg:
            return RefreshOnce()
        if kind == "stall":
            return RefreshOnStall(int(arg or 3))
    except ValueError as err:
        raise ValueError(f"bad refresh policy {spec!r}: {err}") from err
    raise ValueError(f"unknown refresh policy {spec!r}; use 'every:P', 'once' or 'stall:N'")


REPLAY_SELECTIONS = ("all", "paper", "sampled")


def client_sort_key(client: str) -> tuple[int, int, str]:
    """Sort key of client names: numeric names (partition ids) numerically, then the rest."""
    return (0, int(client), "") if client.isdigit() else (1, 0, client)


def select_replay(
    selection: str,
    num_slots: int,
    sampled: Sequence[str],
    buffer: ReplayBuffer,
    generator: np.random.Generator,
) -> list[str]:
    """Clients whose buffered activations fill the round's replay slots.

    ``all``: every client that has an entry (one pass over the whole buffer; the number of
    slots is ignored). ``paper``: each slot draws a random client that has an entry (with
    replacement, as the public code does). ``sampled``: the round's sampled clients that
    have entries.
    """
    if selection == "all":
        return buffer.clients()
    if selection == "paper":
        stored = buffer.clients()
        if not stored or num_slots <= 0:
            return []
        return [stored[i] for i in generator.integers(0, len(stored), size=num_slots)]
    if selection == "sampled":
        return [c for c in sampled if c in buffer][: max(num_slots, 0)]
    raise ValueError(f"unknown replay selection {selection!r}; use one of {REPLAY_SELECTIONS}")
