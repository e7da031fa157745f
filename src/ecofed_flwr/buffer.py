"""Server-side replay buffer of encoded activations, refresh policies and replay selection.

The buffer may be given a memory budget: entries that do not fit are written once to ``.npy``
files and read back through memory maps (``np.load(mmap_mode="r")``), which training reads
like any other array, so a bounded buffer trains on exactly the same batches as an unbounded
one.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecofed_flwr.batching import split_batches
from ecofed_flwr.codec import Codec, EncodedBatch, MetaValue

#: Prefix of an encoded batch's arrays in :meth:`BufferEntry.arrays` (``batch.codes``...).
BATCH_PREFIX = "batch."

#: The other arrays of :meth:`BufferEntry.arrays`, besides the encoded batch's.
ENTRY_ARRAYS = ("labels", "train_rows", "holdout_rows")

_SAFE_CLIENT = re.compile(r"[A-Za-z0-9_-]{1,64}")


def entry_name(client: str, round: int) -> str:
    """A file-name-safe name for ``client``'s upload of ``round``, unique per pair.

    ``00003-c7`` for client ``7`` in round 3; a client name with other characters is
    replaced by its SHA-256 (``00003-h1f2e...``), so no name can reach outside a folder.
    """
    if _SAFE_CLIENT.fullmatch(client):
        return f"{round:05d}-c{client}"
    return f"{round:05d}-h{hashlib.sha256(client.encode()).hexdigest()[:32]}"


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
        """Encoded activations plus labels (the ``buffer_bytes`` of a round report)."""
        return self.batch.nbytes + self.labels.nbytes

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the entry by name: ``batch.<name>`` for the encoded batch's arrays,
        then ``labels``, ``train_rows`` and ``holdout_rows`` (see :meth:`from_arrays`)."""
        out = {BATCH_PREFIX + k: v for k, v in self.batch.arrays.items()}
        out.update(labels=self.labels, train_rows=self.train_rows, holdout_rows=self.holdout_rows)
        return out

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, MetaValue], round: int
    ) -> BufferEntry:
        """Inverse of :meth:`arrays` (``meta`` is the encoded batch's); no checks are made."""
        batch = EncodedBatch(
            arrays={
                k[len(BATCH_PREFIX) :]: v for k, v in arrays.items() if k.startswith(BATCH_PREFIX)
            },
            meta=dict(meta),
        )
        return cls(batch, arrays["labels"], round, arrays["train_rows"], arrays["holdout_rows"])

    @property
    def resident_nbytes(self) -> int:
        """Bytes of the entry's arrays held in memory (rows included, memory maps excluded)."""
        return sum(int(a.nbytes) for a in self.arrays().values() if not isinstance(a, np.memmap))

    @property
    def mapped_nbytes(self) -> int:
        """Bytes of the entry's arrays read through memory-mapped files."""
        return sum(int(a.nbytes) for a in self.arrays().values() if isinstance(a, np.memmap))


class ReplayBuffer:
    """Per-client storage of encoded activation uploads.

    A refresh replaces the client's entry; nothing is ever dequantized in storage, batches are
    decoded on the fly when training reads them.

    Parameters
    ----------
    codec : Codec
        The codec every stored batch must use.
    memory_budget : int (default: 0)
        Bytes of entries (encoded activations, labels and row indices) the buffer keeps in
        memory; 0 means no bound. An entry that would go beyond it is written to
        ``spill_dir`` and memory-mapped instead: reading it costs disk I/O (or page cache),
        never a change in what training sees.
    spill_dir : str | Path, optional
        Folder for memory-mapped entries (needed with a budget). The buffer writes one
        sub-folder per entry there and deletes it when the entry is replaced or removed.
    """

    def __init__(
        self, codec: Codec, memory_budget: int = 0, spill_dir: str | Path | None = None
    ) -> None:
        self.codec = codec
        self._entries: dict[str, BufferEntry] = {}
        self._spilled: dict[str, Path] = {}
        self.memory_budget = 0
        self.spill_dir: Path | None = None
        self.set_memory_budget(memory_budget, spill_dir)

    def set_memory_budget(self, memory_budget: int, spill_dir: str | Path | None = None) -> None:
        """Bound the bytes held in memory (see the class docstring); only while empty.

        Raises
        ------
        ValueError
            If the budget is negative, a budget comes without ``spill_dir``, or the buffer
            already holds entries.
        """
        if memory_budget < 0:
            raise ValueError(f"memory_budget must be >= 0 bytes, got {memory_budget}")
        if memory_budget and spill_dir is None:
            raise ValueError("a memory budget needs a spill_dir for the memory-mapped entries")
        if self._entries:
            raise ValueError(
                f"set the memory budget before the first entry; the buffer holds {len(self)}"
            )
        self.memory_budget = int(memory_budget)
        self.spill_dir = None if spill_dir is None else Path(spill_dir)

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
        self.put_entry(
            client, BufferEntry(packed, labels.astype(np.int64, copy=False), round, train, held)
        )

    def put_entry(self, client: str, entry: BufferEntry) -> None:
        """Store (or replace) ``client``'s entry as it is (e.g. one restored from a checkpoint).

        The entry must already be checked (:class:`ecofed_flwr.checkpoint.Checkpointer` does
        so for the entries it reads). With a memory budget, an entry that does not fit beside
        the entries held in memory is memory-mapped.
        """
        self.remove(client)
        if self.memory_budget and self.resident_nbytes + entry.resident_nbytes > self.memory_budget:
            entry = self._spill(client, entry)
        self._entries[client] = entry

    def _spill(self, client: str, entry: BufferEntry) -> BufferEntry:
        """Write ``entry``'s arrays to ``.npy`` files once and return it read through maps."""
        assert self.spill_dir is not None  # set_memory_budget requires it with a budget
        folder = self.spill_dir / entry_name(client, entry.round)
        folder.mkdir(parents=True, exist_ok=True)
        self._spilled[client] = folder
        mapped: dict[str, np.ndarray] = {}
        for name, array in entry.arrays().items():
            if array.size == 0:  # nothing to map (and an empty file cannot be mapped)
                mapped[name] = np.array(array)
                continue
            path = folder / f"{name}.npy"
            np.save(path, np.ascontiguousarray(array), allow_pickle=False)
            mapped[name] = np.load(path, mmap_mode="r", allow_pickle=False)
        return BufferEntry.from_arrays(mapped, entry.batch.meta, entry.round)

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
        """Drop ``client``'s entry and its memory-mapped files (no error when it has none)."""
        self._entries.pop(client, None)
        folder = self._spilled.pop(client, None)
        if folder is not None:
            # Unlinking mapped files is safe: a map stays valid until its array is freed.
            shutil.rmtree(folder, ignore_errors=True)

    def clear(self) -> None:
        """Drop every entry."""
        for client in self.clients():
            self.remove(client)

    def entries(self) -> dict[str, BufferEntry]:
        """Every entry by client, sorted by client."""
        return {c: self._entries[c] for c in self.clients()}

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
        """Bytes held: encoded activations plus labels, in memory or mapped."""
        return sum(e.nbytes for e in self._entries.values())

    @property
    def resident_nbytes(self) -> int:
        """Bytes of every entry's arrays held in memory (what ``memory_budget`` bounds)."""
        return sum(e.resident_nbytes for e in self._entries.values())

    @property
    def mapped_nbytes(self) -> int:
        """Bytes of every entry's arrays read through memory-mapped files."""
        return sum(e.mapped_nbytes for e in self._entries.values())

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
        rows never do), cut as :func:`~ecofed_flwr.batching.batch_bounds` says (a last batch
        of one sample joins the batch before it); batches are decoded only when reached.
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
        for picked in split_batches(order, batch_size):
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

    def state_dict(self) -> dict[str, Any]:
        """What the policy has learnt so far (plain JSON values); ``{}`` for a stateless one."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`.

        Raises
        ------
        ValueError
            If ``state`` is not what this policy's :meth:`state_dict` produces.
        """
        if dict(state):
            raise ValueError(f"refresh policy {self.name}: expected no state, got {dict(state)}")


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

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self._best,
            "since_best": self._since_best,
            "refresh_round": self._refresh_round,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        best, since, refresh = (state.get(k) for k in ("best", "since_best", "refresh_round"))
        if (
            set(state) != {"best", "since_best", "refresh_round"}
            or not (isinstance(best, int | float) and not isinstance(best, bool))
            or not (isinstance(since, int) and not isinstance(since, bool) and since >= 0)
            or not (refresh is None or (isinstance(refresh, int) and not isinstance(refresh, bool)))
        ):
            raise ValueError(
                f"refresh policy {self.name}: expected {{'best': number, 'since_best': int >= 0, "
                f"'refresh_round': int or None}}, got {dict(state)}"
            )
        self._best, self._since_best, self._refresh_round = float(best), since, refresh


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
