"""Checkpoints of an EcoFed run: the core server's whole state, saved after every round.

A :class:`Checkpointer` keeps one :class:`~ecofed_flwr.server.ServerState`, plus a small
JSON ``extra`` of its caller (the app's settings, the Flower adapter's node maps), in
``RUN_DIR/checkpoint/``::

    state.json            the commit point: round, settings, reports, ledger, best round,
                          refresh-policy state, extra, and the size and SHA-256 of each
                          file below that belongs to this state
    weights-00003.pt      the current and the kept back (torch.save; read back with
                          torch.load(weights_only=True))
    buffer/00001-c7.npz   one file per upload (client 7's of round 1), written once
                          (np.savez; read back with allow_pickle=False)

:meth:`Checkpointer.save` writes the round's weights file and the uploads not yet on disk,
each under a temporary name that is then renamed, then replaces ``state.json`` the same way,
and only then deletes the files the new state no longer names. Wherever the process dies,
the folder holds one whole state: the previous one or the new one.

:meth:`Checkpointer.load` checks everything it reads (the JSON's structure and types, file
names, sizes and SHA-256 digests, the weights, every buffer entry through its codec) and
raises :class:`CheckpointError`, naming the file and what is wrong, rather than failing
later inside training. Nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from ecofed_flwr.buffer import BATCH_PREFIX, ENTRY_ARRAYS, BufferEntry, entry_name
from ecofed_flwr.codec import Codec, CodecError, make_codec
from ecofed_flwr.ledger import Ledger
from ecofed_flwr.server import RoundReport, ServerState

__all__ = [
    "CHECKPOINT_DIR",
    "STATE_FILE",
    "Checkpoint",
    "CheckpointError",
    "Checkpointer",
]

#: Folder of the checkpoint inside a run folder.
CHECKPOINT_DIR = "checkpoint"

#: The commit point: the state the folder holds is the one this file describes.
STATE_FILE = "state.json"

BUFFER_DIR = "buffer"
FORMAT = "ecofed-checkpoint"
VERSION = 1

_WEIGHTS_NAME = re.compile(r"weights-\d{5,}\.pt")
_HASH_CHUNK = 1 << 20


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged or unreadable; the message names the file and why."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back by :meth:`Checkpointer.load`.

    Attributes
    ----------
    state : ServerState
        The server's state; its buffer entries are read (and checked) when first asked for.
    extra : dict[str, Any]
        What the caller saved beside it.
    """

    state: ServerState
    extra: dict[str, Any]


@dataclass(frozen=True)
class _StoredFile:
    """A file of the checkpoint: its name relative to the checkpoint folder, size, digest."""

    name: str
    nbytes: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"file": self.name, "nbytes": self.nbytes, "sha256": self.sha256}


class Checkpointer:
    """Saves and restores a run's :class:`~ecofed_flwr.server.ServerState` as a whole.

    Parameters
    ----------
    run_dir : str | Path
        The run folder; the checkpoint lives in its ``checkpoint/`` sub-folder.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.directory = Path(run_dir) / CHECKPOINT_DIR
        # Upload files already on disk, by (client, round): they are never written twice.
        self._entry_files: dict[tuple[str, int], _StoredFile] = {}

    @property
    def state_path(self) -> Path:
        """The path of ``state.json``."""
        return self.directory / STATE_FILE

    def exists(self) -> bool:
        """Whether a state was saved (a folder with only unfinished files holds none)."""
        return self.state_path.is_file()

    def clear(self) -> None:
        """Delete the checkpoint folder (a fresh run in an old run folder starts with this)."""
        shutil.rmtree(self.directory, ignore_errors=True)
        self._entry_files.clear()

    # ---------------------------------------------------------------------------- save

    def save(self, state: ServerState, extra: Mapping[str, Any] | None = None) -> Path:
        """Write ``state`` (and ``extra``, plain JSON values) atomically; return ``state.json``.

        Only uploads not yet on disk are written; the weights file is rewritten every time.
        """
        (self.directory / BUFFER_DIR).mkdir(parents=True, exist_ok=True)
        weights = self._write(
            f"weights-{state.round:05d}.pt",
            lambda f: torch.save({"back": state.back, "best": state.best}, f),
        )
        stored: dict[tuple[str, int], _StoredFile] = {}
        index = []
        for client, entry in state.buffer.items():
            key = (client, entry.round)
            known = self._entry_files.get(key)
            if known is None or not (self.directory / known.name).is_file():
                arrays = entry.arrays()
                known = self._write(
                    f"{BUFFER_DIR}/{entry_name(client, entry.round)}.npz",
                    lambda f: np.savez(f, allow_pickle=False, **arrays),  # noqa: B023 (called at once)
                )
            stored[key] = known
            index.append(
                {"client": client, "round": entry.round, "meta": entry.batch.meta} | known.to_json()
            )
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "round": state.round,
            "settings": state.settings,
            "best_round": state.best_round,
            "best_val_accuracy": state.best_val_accuracy,
            "refresh": state.refresh,
            "reports": [r.to_json() for r in state.reports],
            "ledger": [dataclasses.asdict(r) for r in state.ledger],
            "weights": weights.to_json(),
            "buffer": index,
            "extra": dict(extra or {}),
        }
        text = json.dumps(_plain(doc), allow_nan=False, indent=1) + "\n"
        self._write(STATE_FILE, lambda f: f.write(text.encode("utf-8")))
        self._entry_files = stored
        self._remove_unreferenced({weights.name, *(s.name for s in stored.values())})
        return self.state_path

    def _write(self, name: str, write: Callable[[IO[bytes]], object]) -> _StoredFile:
        """Write ``name`` through a temporary file, synced and renamed into place."""
        path = self.directory / name
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        stored = _StoredFile(name, tmp.stat().st_size, _sha256(tmp))
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        return stored

    def _remove_unreferenced(self, keep: set[str]) -> None:
        candidates = [*self.directory.glob("weights-*"), *self.directory.glob("*.tmp")]
        candidates += list((self.directory / BUFFER_DIR).iterdir())
        for path in candidates:
            if path.relative_to(self.directory).as_posix() not in keep and path.is_file():
                path.unlink(missing_ok=True)

    # ---------------------------------------------------------------------------- load

    def peek(self) -> tuple[int, dict[str, Any]]:
        """The saved round and ``extra``, without reading weights or uploads.

        Raises
        ------
        CheckpointError
            If there is no readable ``state.json``.
        """
        doc = self._read_state()
        return _get(doc, "round", int, STATE_FILE), _get(doc, "extra", dict, STATE_FILE)

    def load(self) -> Checkpoint:
        """Read and check the saved state.

        Files are checked against their recorded sizes and digests first; buffer entries
        are then read one at a time when the state is loaded into a server, each checked
        through its codec (arrays, dtypes, shapes, statistics), its labels and its rows.

        Raises
        ------
        CheckpointError
            If anything is missing, damaged or malformed.
        """
        doc = self._read_state()
        where = STATE_FILE
        settings = _get(doc, "settings", dict, where)
        codec_name = _get(settings, "codec", str, f"{where}: settings")
        try:
            codec = make_codec(codec_name)
        except ValueError as err:
            raise CheckpointError(f"{where}: settings.codec {codec_name!r}: {err}") from err
        num_classes = _get(settings, "num_classes", int, f"{where}: settings")
        shape = _get(settings, "activation_shape", list, f"{where}: settings")
        best_val = doc.get("best_val_accuracy")
        if best_val is not None and not _is_number(best_val):
            raise CheckpointError(f"{where}: best_val_accuracy must be a number or null")
        reports = [
            _report(r, f"{where}: reports[{i}]")
            for i, r in enumerate(_get(doc, "reports", list, where))
        ]
        try:
            ledger = Ledger.from_json(_get(doc, "ledger", list, where)).records
        except ValueError as err:
            raise CheckpointError(f"{where}: {err}") from err
        back, best = self._load_weights(self._stored(_get(doc, "weights", dict, where), where))
        entries = _StoredEntries(self, codec, num_classes, shape)
        for i, item in enumerate(_get(doc, "buffer", list, where)):
            entries.add(item, f"{where}: buffer[{i}]")
        self._entry_files = {(c, info["round"]): f for c, (info, f) in entries.records.items()}
        state = ServerState(
            round=_get(doc, "round", int, where),
            settings=settings,
            reports=reports,
            ledger=ledger,
            back=back,
            best=best,
            best_round=_get(doc, "best_round", int, where),
            best_val_accuracy=None if best_val is None else float(best_val),
            refresh=_get(doc, "refresh", dict, where),
            buffer=entries,
        )
        return Checkpoint(state, _get(doc, "extra", dict, where))

    def _read_state(self) -> dict[str, Any]:
        path = self.state_path
        if not path.is_file():
            raise CheckpointError(f"no checkpoint to resume from: {path} does not exist")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(f"{path}: expected a JSON checkpoint state, got {err}") from err
        if not isinstance(doc, dict):
            raise CheckpointError(f"{path}: expected a JSON object, got {type(doc).__name__}")
        if doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise CheckpointError(
                f"{path}: expected format {FORMAT!r} version {VERSION}, got "
                f"{doc.get('format')!r} version {doc.get('version')!r}"
            )
        return doc

    def _stored(self, doc: Mapping[str, Any], where: str) -> _StoredFile:
        """The file ``doc`` names, after checking its name, size and digest."""
        name = _get(doc, "file", str, where)
        nbytes = _get(doc, "nbytes", int, where)
        digest = _get(doc, "sha256", str, where)
        parts = name.split("/")
        safe = (len(parts) == 1 and _WEIGHTS_NAME.fullmatch(name)) or (
            len(parts) == 2 and parts[0] == BUFFER_DIR and re.fullmatch(r"[\w-]+\.npz", parts[1])
        )
        if not safe:
            raise CheckpointError(f"{where}: unexpected file name {name!r}")
        path = self.directory / name
        try:
            size = path.stat().st_size
        except OSError as err:
            raise CheckpointError(f"{where}: {path} is missing ({err})") from err
        if size != nbytes:
            raise CheckpointError(f"{path}: expected {nbytes} bytes, found {size} (damaged)")
        actual = _sha256(path)
        if actual != digest:
            raise CheckpointError(f"{path}: expected SHA-256 {digest}, found {actual} (damaged)")
        return _StoredFile(name, nbytes, digest)

    def _load_weights(
        self, stored: _StoredFile
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        path = self.directory / stored.name
        try:
            doc = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for a bad file; all mean "damaged"
            raise CheckpointError(f"{path}: not a readable weights file ({err})") from err
        if not isinstance(doc, dict) or set(doc) != {"back", "best"}:
            got = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
            raise CheckpointError(f"{path}: expected a dict with 'back' and 'best', got {got}")
        out = []
        for key in ("back", "best"):
            weights = doc[key]
            if not isinstance(weights, dict) or not all(
                isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
            ):
                raise CheckpointError(f"{path}: expected '{key}' to map names to tensors")
            out.append(weights)
        return out[0], out[1]


class _StoredEntries(Mapping[str, BufferEntry]):
    """A checkpoint's buffer entries by client, each read and checked when asked for."""

    def __init__(
        self, checkpointer: Checkpointer, codec: Codec, num_classes: int, shape: list[Any]
    ) -> None:
        self.checkpointer = checkpointer
        self.codec = codec
        self.num_classes = num_classes
        self.shape = shape
        self.records: dict[str, tuple[dict[str, Any], _StoredFile]] = {}

    def add(self, item: Any, where: str) -> None:
        if not isinstance(item, dict):
            raise CheckpointError(f"{where}: expected an object, got {type(item).__name__}")
        client = _get(item, "client", str, where)
        round_ = _get(item, "round", int, where)
        meta = _get(item, "meta", dict, where)
        stored = self.checkpointer._stored(item, where)
        if stored.name != f"{BUFFER_DIR}/{entry_name(client, round_)}.npz":
            raise CheckpointError(f"{where}: file {stored.name!r} is not client {client}'s")
        if client in self.records:
            raise CheckpointError(f"{where}: a second entry of client {client}")
        self.records[client] = ({"round": round_, "meta": meta}, stored)

    def __getitem__(self, client: str) -> BufferEntry:
        info, stored = self.records[client]
        path = self.checkpointer.directory / stored.name
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise CheckpointError(f"{path}: expected an .npz of plain arrays, got {err}") from err
        try:
            return self._check(arrays, info["meta"], info["round"])
        except (CodecError, ValueError) as err:
            raise CheckpointError(f"{path} (client {client}): {err}") from err

    def _check(
        self, arrays: dict[str, np.ndarray], meta: dict[str, Any], round_: int
    ) -> BufferEntry:
        others = set(arrays) - set(ENTRY_ARRAYS)
        if not set(ENTRY_ARRAYS) <= set(arrays) or any(
            not k.startswith(BATCH_PREFIX) for k in others
        ):
            raise ValueError(
                f"expected the arrays {list(ENTRY_ARRAYS)} and {BATCH_PREFIX}*, got "
                f"{sorted(arrays)}"
            )
        entry = BufferEntry.from_arrays(arrays, meta, round_)
        self.codec.validate(entry.batch)
        n = entry.batch.num_samples
        if list(entry.batch.sample_shape) != list(self.shape):
            raise ValueError(
                f"expected activations of shape {self.shape}, got {list(entry.batch.sample_shape)}"
            )
        labels = entry.labels
        if labels.dtype != np.int64 or labels.shape != (n,):
            raise ValueError(f"labels: expected int64 ({n},), got {labels.dtype} {labels.shape}")
        if n and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels: expected values in [0, {self.num_classes})")
        rows = []
        for name in ("train_rows", "holdout_rows"):
            a = getattr(entry, name)
            if a.dtype != np.int64 or a.ndim != 1 or (a.size > 1 and not (np.diff(a) > 0).all()):
                raise ValueError(f"{name}: expected increasing int64 rows, got {a.dtype} {a.shape}")
            rows.append(a)
        if not np.array_equal(np.sort(np.concatenate(rows)), np.arange(n)):
            raise ValueError(f"train_rows and holdout_rows: expected a split of the {n} rows")
        return entry

    def __iter__(self) -> Iterator[str]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


# ------------------------------------------------------------------------------- helpers


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _plain(value: Any) -> Any:
    """Plain JSON values: NaN and infinities become null (JSON has none)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _get(doc: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = doc.get(key)
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok or (isinstance(value, int) and value < 0):
        expected = "an int >= 0" if kind is int else f"a {kind.__name__}"
        raise CheckpointError(f"{where}: {key} must be {expected}, got {value!r}")
    return value


_REPORT_CHECKS: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "float": _is_number,
    "float | None": _is_number,
    "metric": _is_number,
    "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "dict[str, str]": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
    "dict[str, float]": lambda v: isinstance(v, dict) and all(map(_is_number, v.values())),
}


def _report(doc: Any, where: str) -> RoundReport:
    """A round report from its JSON form, every field's type checked."""
    if not isinstance(doc, dict) or "round" not in doc:
        raise CheckpointError(f"{where}: expected a round report object with a round")
    kinds = {f.name: str(f.type) for f in dataclasses.fields(RoundReport) if f.name != "metrics"}
    clean = {}
    for key, value in doc.items():
        kind = kinds.get(key, "metric")
        if value is None and kind in ("float", "float | None", "metric"):
            continue  # NaN was saved as null: the field's default (NaN or None) stands
        if not _REPORT_CHECKS[kind](value):
            raise CheckpointError(f"{where}: {key} must be {kind}, got {value!r}")
        clean[key] = value
    return RoundReport.from_json(clean)
