"""A seeded generator of malformed (and valid) EcoFed upload replies, for fuzzing the server.

Every case is a Flower ``Message`` replying to an upload request, built the way the client
builds it (:func:`ecofed_flwr.clients.upload_reply`: ``encoded_to_records``, uint labels of
``label_dtype``, a MetricRecord with ``num-examples``, ``front-seconds``, ``encode-seconds``),
then broken in one way. Import it with ``tests/`` on ``sys.path`` (pytest puts it there)::

    from fuzz_replies_test import FuzzSetting, generate_cases

    setting = FuzzSetting()
    for case in generate_cases(1000, seed=0, setting=setting):
        spec = setting.spec(case.codec)  # the UploadSpec the server should hold
        ...  # case.reply, case.must_refuse, case.must_accept, case.category

How ``must_refuse`` / ``must_accept`` are decided (no case guesses):

- Valid replies and documented variants (other integer label dtypes, absent seconds, a zstd
  frame without checksum): ``must_accept``.
- Breaks that violate the protocol by construction (missing, extra, shared or retyped records,
  wrong keys, foreign or truncated ``.npy`` bytes, declared shapes or sample counts beyond the
  spec, another codec or fingerprint, wrong metadata, labels or metrics): ``must_refuse``.
- Value-level breaks whose verdict depends on the values (random byte flips in the data of a
  payload array, scales/offsets/codes set to random magnitudes, forged zstd frames) and
  payload arrays of another dtype or shape: the payload is rebuilt by trusted means (numpy
  operations on the original arrays, never by parsing the mutated bytes) and judged by
  :func:`reference_refuses`, which decodes it in full and checks every value the payload can
  represent (``Codec.value_range``, computed in float64) against the bound; a correct server
  must refuse exactly what it refuses and accept the rest.
- Random byte flips in an ``.npy`` header: ``numpy.load`` (``allow_pickle=False``, warnings as
  errors; the arrays are small, so its allocation is harmless here) is the reference reader.
  If it fails, or reads another dtype, shape or data than the codec's layout, the reply must
  be refused. If it reads the original array exactly, the flip only changed formatting
  (whitespace): ``must_refuse`` is False, and ``must_accept`` too, since a stricter header
  parser may still refuse it. Same for a Fortran-order array of the right shape, which the
  server may refuse (the protocol sends C order).

A pickled object whose unpickling would call :func:`_tripwire` is among the foreign payloads:
``UNPICKLED`` stays empty unless something unpickles wire data.
"""

from __future__ import annotations

import io
import math
import pickle
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zstandard
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Message,
    Metadata,
    MetricRecord,
    RecordDict,
)

from ecofed_flwr.codec import Codec, CodecError, EncodedBatch, make_codec
from ecofed_flwr.protocol import (
    ACTIVATIONS_KEY,
    CONFIG_KEY,
    FINGERPRINT_KEY,
    LABELS_KEY,
    META_KEY,
    METRICS_KEY,
    UPLOAD_MESSAGE_TYPE,
    UploadSpec,
    encoded_to_records,
    label_dtype,
)

#: Codecs fuzzed by default: per-tensor, paper, float, per-channel, fitted levels, zstd stages.
DEFAULT_CODECS = ("u4", "paper", "fp16", "fp32", "u2-ch+zstd", "u8-g16+zstd", "lq2-ch+zstd")

#: Names of the objects whose unpickling would mean wire data was unpickled.
UNPICKLED: list[str] = []


def _tripwire(name: str) -> str:
    UNPICKLED.append(name)
    return name


class _Tripwire:
    def __reduce__(self) -> tuple[Callable[[str], str], tuple[str]]:
        return _tripwire, ("tripwire",)


@dataclass(frozen=True)
class FuzzSetting:
    """What the fuzzed server accepts (see :meth:`spec`); small, so every case is cheap.

    Parameters
    ----------
    fingerprint : str
        The server's front fingerprint.
    activation_shape : tuple[int, ...] (default: (8, 4, 4))
        Shape of one sample's activation.
    num_classes : int (default: 10)
        Number of classes.
    max_samples : int (default: 64)
        Largest accepted upload.
    max_abs_value : float (default: 1e4)
        Bound on decoded activations.
    """

    fingerprint: str = "f00d" * 16
    activation_shape: tuple[int, ...] = (8, 4, 4)
    num_classes: int = 10
    max_samples: int = 64
    max_abs_value: float = 1e4

    def spec(self, codec: str) -> UploadSpec:
        """The server's :class:`UploadSpec` for uploads of ``codec``."""
        return UploadSpec(
            codec=make_codec(codec),
            fingerprint=self.fingerprint,
            activation_shape=self.activation_shape,
            num_classes=self.num_classes,
            max_samples=self.max_samples,
            max_abs_value=self.max_abs_value,
        )


@dataclass(frozen=True)
class FuzzCase:
    """One generated reply and what a correct server must do with it.

    Attributes
    ----------
    category : str
        The generator that made it (``"valid"``, ``"flip-data"``, ``"structure"``, ...).
    codec : str
        The codec the server asks for (the reply may use another).
    reply : Message
        The reply, as the server receives it.
    must_refuse : bool
        A correct server refuses it.
    must_accept : bool
        A correct server accepts it (both False: either is right).
    expect : str | None
        The :class:`~ecofed_flwr.protocol.UploadRefused` category when it is determined.
    note : str
        What was done, for failure messages.
    sendable : bool
        Whether Flower can serialize the reply. False for ints beyond int64 in records or
        Array shapes: such a reply never arrives over the wire (``wire_nbytes`` raises on it)
        and only tests the validator's robustness in process.
    """

    category: str
    codec: str
    reply: Message
    must_refuse: bool
    must_accept: bool
    expect: str | None
    note: str
    sendable: bool = True


# --------------------------------------------------------------------------------------------
# building blocks


@dataclass
class _Draft:
    """A reply in pieces: records are built from these at the end."""

    codec: str  # the codec the reply was built with (the one the server asks for)
    acts: dict[str, Array]
    labels: dict[str, Array]
    meta: dict[str, Any]
    metrics: dict[str, Any]
    records: dict[str, Any] | None = None  # when set, the content as is

    def content(self) -> RecordDict:
        if self.records is not None:
            return RecordDict(self.records)
        return RecordDict(
            {
                ACTIVATIONS_KEY: _record(self.acts),
                LABELS_KEY: _record(self.labels),
                META_KEY: ConfigRecord(self.meta),
                METRICS_KEY: MetricRecord(self.metrics),
            }
        )


def _record(arrays: dict[str, Array]) -> ArrayRecord:
    """An ArrayRecord holding these very Array objects (``ArrayRecord(dict)`` copies them)."""
    record = ArrayRecord()
    for key, array in arrays.items():
        record[key] = array
    return record


@dataclass
class _Base:
    """A valid upload, kept as trusted numpy objects."""

    codec: Codec
    batch: EncodedBatch
    labels: np.ndarray
    metrics: dict[str, Any]

    def draft(self, setting: FuzzSetting) -> _Draft:
        return _draft(self.batch, self.labels, self.metrics, setting)


@dataclass(frozen=True)
class _Outcome:
    draft: _Draft
    must_refuse: bool
    must_accept: bool
    expect: str | None
    note: str


def _draft(
    batch: EncodedBatch, labels: np.ndarray, metrics: dict[str, Any], setting: FuzzSetting
) -> _Draft:
    arrays, meta = encoded_to_records(batch, setting.fingerprint)
    return _Draft(
        codec=str(batch.meta["codec"]),
        acts=dict(arrays),
        labels={"labels": Array(labels)},
        meta=dict(meta),
        metrics=dict(metrics),
    )


def _refuse(draft: _Draft, expect: str | None, note: str) -> _Outcome:
    return _Outcome(draft, True, False, expect, note)


def _accept(draft: _Draft, note: str) -> _Outcome:
    return _Outcome(draft, False, True, None, note)


def _either(draft: _Draft, note: str) -> _Outcome:
    return _Outcome(draft, False, False, None, note)


def _judged(
    base: _Base, batch: EncodedBatch, labels: np.ndarray, setting: FuzzSetting, note: str
) -> _Outcome:
    """A payload rebuilt by trusted means, judged by :func:`reference_refuses`."""
    draft = _draft(batch, labels, {**base.metrics, "num-examples": len(labels)}, setting)
    refuse = reference_refuses(base.codec, batch, labels, setting)
    return _Outcome(draft, refuse, not refuse, None, note)


def reference_refuses(
    codec: Codec, batch: EncodedBatch, labels: np.ndarray, setting: FuzzSetting
) -> bool:
    """Whether a correct server must refuse this (trusted, already parsed) payload.

    Refuse iff the codec cannot decode it, it has more samples than allowed or another sample
    shape, any decoded value is non-finite, any value it can represent (quantizers:
    ``value_range``, in float64; floats: the decoded values) exceeds ``max_abs_value``, or the
    labels are not ``num_samples`` integers in ``[0, num_classes)``.
    """
    try:
        plain = codec.without_lossless(batch)
        codec.validate(plain)
        n = plain.num_samples
        if n > setting.max_samples or plain.sample_shape != setting.activation_shape:
            return True
        decoded = codec.decode(plain)
        if codec.is_quantizer:
            lo, hi = codec.value_range(plain)
            worst = max(float(np.abs(lo).max()), float(np.abs(hi).max()))
        else:
            worst = float(np.abs(decoded.astype(np.float64)).max())
    except CodecError:
        return True
    if not np.isfinite(decoded).all() or worst > setting.max_abs_value:
        return True
    if labels.dtype.kind not in "iu" or labels.shape != (n,):
        return True
    return bool(labels.min() < 0 or labels.max() >= setting.num_classes)


def upload_request(node_id: int, server_round: int = 1, codec: str = "u4") -> Message:
    """An upload request as the server sends it, with explicit metadata (no Flower run)."""
    metadata = Metadata(
        run_id=1,
        message_id=f"{node_id:064x}",
        src_node_id=1,
        dst_node_id=node_id,
        reply_to_message_id="",
        group_id=str(server_round),
        created_at=0.0,
        ttl=43_200.0,
        message_type=UPLOAD_MESSAGE_TYPE,
    )
    content = RecordDict({CONFIG_KEY: ConfigRecord({"codec": codec, "server-round": server_round})})
    return Message(content, metadata=metadata)  # type: ignore[call-overload]


def _activations(
    rng: np.random.Generator, n: int, shape: tuple[int, ...], top: float
) -> np.ndarray:
    kind = rng.choice(["relu", "signed", "constant", "sparse"])
    magnitude = float(rng.choice([1e-3, 1.0, 10.0, 100.0, top]))
    size = (n, *shape)
    if kind == "constant":
        x = np.full(size, rng.uniform(-magnitude, magnitude))
    elif kind == "sparse":
        x = rng.exponential(magnitude / 4, size) * (rng.random(size) < 0.1)
    else:
        x = rng.normal(0.0, magnitude / 4, size)
        x = np.maximum(x, 0.0) if kind == "relu" else x
    return np.clip(x, -magnitude, magnitude).astype(np.float32)


def _base(
    rng: np.random.Generator, codec: Codec, setting: FuzzSetting, n: int | None = None
) -> _Base:
    n = int(rng.integers(1, setting.max_samples + 1)) if n is None else n
    x = _activations(rng, n, setting.activation_shape, setting.max_abs_value / 2)
    labels = rng.integers(0, setting.num_classes, n).astype(label_dtype(setting.num_classes))
    metrics = {
        "num-examples": n,
        "front-seconds": float(rng.uniform(0, 2)),
        "encode-seconds": float(rng.uniform(0, 0.1)),
    }
    return _Base(codec, codec.encode(x), labels, metrics)


def _with_arrays(batch: EncodedBatch, **arrays: np.ndarray) -> EncodedBatch:
    return EncodedBatch(arrays={**batch.arrays, **arrays}, meta=dict(batch.meta))


def _npy_header(text: str, body: bytes, version: tuple[int, int] = (1, 0)) -> bytes:
    """``.npy`` bytes with an arbitrary header text (no checks: for foreign headers)."""
    raw = text.encode("latin1", errors="replace")
    size = 2 if version == (1, 0) else 4
    pad = -(6 + 2 + size + len(raw) + 1) % 64
    raw = raw + b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + len(raw).to_bytes(size, "little") + raw + body


def _raw_array(array: Array, data: bytes) -> Array:
    return Array(dtype=array.dtype, shape=tuple(array.shape), stype=array.stype, data=data)


def _header_len(data: bytes) -> int:
    """Offset of the data in ``np.save`` bytes of version 1.0."""
    return 10 + int.from_bytes(data[8:10], "little")


def rle_frame(content_size: int | None, produced: int, byte: int = 0) -> bytes:
    """A hand-made zstd frame of RLE blocks: tiny, whatever size it declares or produces.

    Parameters
    ----------
    content_size
        Size written in the frame header (``None``: no size, a window descriptor instead).
    produced
        Bytes the blocks actually decompress to (may differ from ``content_size``).
    byte
        The repeated byte.
    """
    if content_size is None:
        header = bytes([0b00000000, 0x58])  # no size, window descriptor (2 MiB window)
    else:
        header = bytes([0b11100000]) + content_size.to_bytes(8, "little")  # single segment
    block = 128 << 10
    full, rest = divmod(produced, block)
    sizes = [block] * full + ([rest] if rest else [])
    parts = [b"\x28\xb5\x2f\xfd", header]
    if not sizes:
        parts.append((1).to_bytes(3, "little"))  # one empty raw block, last
    for i, size in enumerate(sizes):
        last = int(i == len(sizes) - 1)
        parts.append(((size << 3) | (1 << 1) | last).to_bytes(3, "little") + bytes([byte]))
    return b"".join(parts)


def _brief(value: object) -> str:
    """A short repr for notes (some values are too long to print)."""
    try:
        text = repr(value)
    except ValueError:
        return f"<a {type(value).__name__} too long to print>"
    return text if len(text) <= 60 else text[:57] + "..."


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _zstd_codec(rng: np.random.Generator, codecs: Sequence[str]) -> Codec:
    names = [c for c in codecs if "+zstd" in c] or ["u4+zstd"]
    return make_codec(_pick(rng, names))


# --------------------------------------------------------------------------------------------
# generators: each takes (rng, base, setting, codecs) and returns an _Outcome

Gen = Callable[[np.random.Generator, _Base, FuzzSetting, Sequence[str]], _Outcome]


def _valid(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    return _accept(base.draft(setting), f"valid, {base.batch.num_samples} samples")


def _valid_edge(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    kind = _pick(
        rng, ["max-samples", "one-sample", "zeros", "label-dtype", "no-seconds", "no-checksum"]
    )
    if kind == "max-samples":
        return _accept(_base(rng, base.codec, setting, setting.max_samples).draft(setting), kind)
    if kind == "one-sample":
        return _accept(_base(rng, base.codec, setting, 1).draft(setting), kind)
    if kind == "zeros":
        n = setting.max_samples
        batch = base.codec.encode(np.zeros((n, *setting.activation_shape), np.float32))
        labels = np.zeros(n, np.uint8)
        return _accept(_draft(batch, labels, {"num-examples": n}, setting), kind)
    if kind == "label-dtype":
        dtype = _pick(rng, [np.int8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64])
        draft = base.draft(setting)
        draft.labels = {"labels": Array(base.labels.astype(dtype))}
        return _accept(draft, f"labels as {np.dtype(dtype).name}")
    if kind == "no-seconds":
        draft = base.draft(setting)
        draft.metrics = {"num-examples": base.batch.num_samples}
        return _accept(draft, "no seconds reported")
    codec = _zstd_codec(rng, codecs)
    zbase = _base(rng, codec, setting)
    raw = codec.without_lossless(zbase.batch).arrays["codes"].tobytes()
    frame = zstandard.ZstdCompressor(write_checksum=False).compress(raw)
    batch = _with_arrays(zbase.batch, codes_zstd=np.frombuffer(frame, np.uint8).copy())
    return _accept(
        _draft(batch, zbase.labels, zbase.metrics, setting), "zstd frame without checksum"
    )


def _payload_key(rng: np.random.Generator, draft: _Draft) -> tuple[dict[str, Array], str]:
    keys = [(draft.acts, k) for k in sorted(draft.acts)] + [(draft.labels, "labels")]
    return _pick(rng, keys)


def _empty_data(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    draft = base.draft(setting)
    record, key = _payload_key(rng, draft)
    cut = int(rng.integers(0, 10))
    record[key] = _raw_array(record[key], record[key].data[:cut])
    return _refuse(draft, "bad-array", f"{key}: data cut to {cut} bytes")


def _zip_data(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    draft = base.draft(setting)
    record, key = _payload_key(rng, draft)
    kind = _pick(rng, ["npz", "zip-signature", "zip-archive"])
    if kind == "npz":
        buf = io.BytesIO()
        np.savez(buf, payload=np.frombuffer(record[key].data, np.uint8))
        data = buf.getvalue()
    elif kind == "zip-signature":
        data = b"PK\x03\x04" + rng.bytes(int(rng.integers(0, 200)))
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            archive.writestr("x.npy", record[key].data)
        data = buf.getvalue()
    record[key] = _raw_array(record[key], data)
    return _refuse(draft, "bad-array", f"{key}: {kind}")


def _broken_header(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    draft = base.draft(setting)
    record, key = _payload_key(rng, draft)
    array = record[key]
    body = array.data[_header_len(array.data) :]
    descr = str(np.lib.format.dtype_to_descr(np.dtype(array.dtype)))
    shape = tuple(array.shape)

    def header(descr: Any = descr, shape: Any = shape) -> str:
        return f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"

    good = header()
    variants = {
        "unterminated": good[:-3],
        "open-string": "{'descr': '" + descr + ", 'shape': (",
        "triple-quote": '{"""descr' + good,
        "not-a-dict": f"[{descr!r}, False, {shape!r}]",
        "missing-key": f"{{'descr': {descr!r}, 'shape': {shape!r}}}",
        "extra-key": good[:-1] + "'x': 1, }",
        "object-dtype": header(descr="|O"),
        "struct-dtype": header(descr=[("a", descr)]),
        "str-dtype": header(descr="<U4"),
        "other-dtype": header(descr="<f8"),
        "negative-shape": header(shape=(-1,)),
        "float-shape": header(shape=(2.5,)),
        "huge-shape": header(shape=(10**15, 10**9)),
        "big-int": header(shape=(int("9" * 4000),)),
        "nested": "{'descr': " + "(" * 300 + ")" * 300 + "}",
        "python2-long": good.replace(")", "L)", 1) if shape else good + "L",
        "binary": rng.bytes(60).decode("latin1"),
    }
    kind = _pick(rng, sorted(variants))
    data = _npy_header(variants[kind], body)
    if kind == "binary" or rng.random() < 0.2:
        version = _pick(rng, [(3, 0), (9, 9), (0, 0), (2, 0)])
        if version == (2, 0):  # v2 reads a 4-byte length: the v1 layout no longer parses
            data = data[:6] + b"\x02\x00" + data[8:]
        else:
            data = _npy_header(variants[kind], body, version)
        kind += f" v{version}"
    record[key] = _raw_array(array, data)
    if kind.startswith("big-int"):  # a header longer than any upload's: too large or unreadable
        return _refuse(draft, None, f"{key}: header {kind}")
    if kind == "python2-long":
        # numpy still reads headers of Python 2 writers ("64L") with a warning: either is right.
        return _either(draft, f"{key}: header {kind}")
    return _refuse(draft, "bad-array", f"{key}: header {kind}")


def _pickled(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    draft = base.draft(setting)
    record, key = _payload_key(rng, draft)
    payload = pickle.dumps(_Tripwire())
    shape = tuple(record[key].shape)
    data = _npy_header(f"{{'descr': '|O', 'fortran_order': False, 'shape': {shape!r}, }}", payload)
    dtype = _pick(rng, [record[key].dtype, "object"])
    record[key] = Array(dtype=dtype, shape=shape, stype=record[key].stype, data=data)
    return _refuse(draft, None, f"{key}: pickled object (declared {dtype})")


def _huge_declared(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    draft = base.draft(setting)
    record, key = _payload_key(rng, draft)
    array = record[key]
    huge = (int(rng.integers(10**6, 10**12)), *tuple(array.shape)[1:])
    body = array.data[_header_len(array.data) :]
    descr = np.lib.format.dtype_to_descr(np.dtype(array.dtype))
    header = _npy_header(
        f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {huge!r}, }}", body
    )
    where = _pick(rng, ["metadata", "header", "both", "ndim", "negative", "bigint"])
    if where == "metadata":
        record[key] = Array(dtype=array.dtype, shape=huge, stype=array.stype, data=array.data)
    elif where == "header":
        record[key] = _raw_array(array, header)
    elif where == "both":
        record[key] = Array(dtype=array.dtype, shape=huge, stype=array.stype, data=header)
    elif where == "bigint":
        shape = (10**4000, *tuple(array.shape)[1:])
        record[key] = Array(dtype=array.dtype, shape=shape, stype=array.stype, data=array.data)
    elif where == "ndim":
        record[key] = Array(dtype=array.dtype, shape=(2,) * 64, stype=array.stype, data=array.data)
    else:
        shape = (-1, *tuple(array.shape)[1:])
        record[key] = Array(dtype=array.dtype, shape=shape, stype=array.stype, data=array.data)
    expect = "too-large" if where in ("metadata", "both") else None
    return _refuse(draft, expect, f"{key}: huge declared shape ({where})")


def _huge_samples(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    """A sample count beyond the cap; for zstd codecs with a tiny frame that really inflates."""
    codec = _zstd_codec(rng, codecs) if rng.random() < 0.7 else base.codec
    base = _base(rng, codec, setting)
    values = math.prod(setting.activation_shape)
    zstd = "codes_zstd" in codec.array_specs(1, setting.activation_shape)
    row_bytes = -(-values * codec.bits // 8)
    target = int(rng.choice([setting.max_samples + 1, 10**6, (8 << 30) // row_bytes]))
    draft = base.draft(setting)
    draft.meta["num_samples"] = target
    draft.metrics["num-examples"] = target
    if zstd:
        raw = target * row_bytes
        draft.meta["zstd_raw_nbytes"] = raw
        frame = rle_frame(raw, raw if raw <= (8 << 30) else 0)
        draft.acts["codes_zstd"] = Array(np.frombuffer(frame, np.uint8))
    return _refuse(draft, "too-large", f"num_samples {target} (cap {setting.max_samples})")


def _zstd_frame(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    """Forged or damaged frames within the cap; judged by the reference decoder."""
    codec = _zstd_codec(rng, codecs)
    base = _base(rng, codec, setting)
    blob = base.batch.arrays["codes_zstd"]
    raw_n = int(base.batch.meta["zstd_raw_nbytes"])  # type: ignore[arg-type]
    kinds: dict[str, Callable[[], bytes]] = {
        "rle-honest": lambda: rle_frame(raw_n, raw_n),
        "rle-inflates": lambda: rle_frame(raw_n, raw_n * int(rng.integers(2, 5000))),
        "rle-short": lambda: rle_frame(raw_n, raw_n // 2),
        "rle-claims-8GiB": lambda: rle_frame(8 << 30, raw_n),
        "no-content-size": lambda: rle_frame(None, raw_n),
        "truncated": lambda: blob.tobytes()[: int(rng.integers(0, blob.size))],
        "trailing": lambda: blob.tobytes() + rng.bytes(int(rng.integers(1, 9))),
        "two-frames": lambda: blob.tobytes() * 2,
        "skippable-first": lambda: (
            b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"abcd" + blob.tobytes()
        ),
        "other-level": lambda: zstandard.ZstdCompressor(level=19, write_checksum=True).compress(
            codec.without_lossless(base.batch).arrays["codes"].tobytes()
        ),
    }
    kind = _pick(rng, sorted(kinds))
    frame = kinds[kind]()
    if not frame:
        frame = b"\x28"
    batch = _with_arrays(base.batch, codes_zstd=np.frombuffer(frame, np.uint8).copy())
    return _judged(base, batch, base.labels, setting, f"zstd {kind}")


def _codes_of(codec: Codec, batch: EncodedBatch) -> np.ndarray:
    return codec.without_lossless(batch).arrays["codes"].copy()


def _with_codes(codec: Codec, batch: EncodedBatch, codes: np.ndarray) -> EncodedBatch:
    if codec.zstd_level is None:
        return _with_arrays(batch, codes=codes)
    frame = zstandard.ZstdCompressor(write_checksum=True).compress(codes.tobytes())
    return _with_arrays(batch, codes_zstd=np.frombuffer(frame, np.uint8).copy())


def _code_values(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    codec = base.codec
    if codec.scheme not in ("paper", "fp16", "fp32"):
        codec = make_codec(
            _pick(
                rng,
                [c for c in codecs if make_codec(c).scheme in ("paper", "fp16", "fp32")]
                or ["paper"],
            )
        )
        base = _base(rng, codec, setting)
    codes = _codes_of(codec, base.batch)
    flat = codes.reshape(-1)
    count = int(rng.integers(1, 4))
    where = rng.integers(0, flat.size, count)
    if codec.scheme == "paper":
        flat[where] = -128
        note = "paper code -128"
    else:
        value = _pick(rng, [np.nan, np.inf, -np.inf, 2e4, -6e4, 1e30, 3e38, 5e3, -0.0, 1e-40])
        with np.errstate(over="ignore"):
            flat[where] = value
        note = f"{codec.scheme} code {value}"
    return _judged(base, _with_codes(codec, base.batch, codes), base.labels, setting, note)


def _extreme_stats(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    if not base.codec.is_quantizer:
        base = _base(
            rng,
            make_codec(_pick(rng, [c for c in codecs if not c.startswith("fp")] or ["u4"])),
            setting,
        )
    key = _pick(rng, [k for k in ("scales", "offsets") if k in base.batch.arrays])
    stats = base.batch.arrays[key].copy()
    kind = _pick(rng, ["set", "scale-by", "negate"])
    flat = stats.reshape(-1)
    i = int(rng.integers(flat.size))
    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "set":
            value = _pick(
                rng, [2e37, 3e38, -3e38, np.inf, np.nan, 0.0, 1e-45, 1e-30, 1e3, 1e5, 40.0]
            )
            flat[i] = value
            note = f"{key}[{i}] = {value}"
        elif kind == "scale-by":
            factor = float(_pick(rng, [1e-6, 0.5, 3.0, 1e3, 1e6, 1e40]))
            flat[:] = (flat.astype(np.float64) * factor).astype(np.float32)
            note = f"{key} x {factor}"
        else:
            flat[i] = -flat[i]
            note = f"{key}[{i}] negated"
    batch = _with_arrays(base.batch, **{key: stats})
    return _judged(base, batch, base.labels, setting, note)


def _flip_data(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    """Random byte flips in the data region of one array; judged by the reference."""
    arrays = {**base.batch.arrays, "labels": base.labels}
    key = _pick(rng, sorted(arrays))
    original = np.ascontiguousarray(arrays[key])
    raw = bytearray(original.tobytes())
    for _ in range(int(rng.integers(1, 4))):
        raw[int(rng.integers(len(raw)))] ^= int(rng.integers(1, 256))
    flipped = np.frombuffer(bytes(raw), original.dtype).reshape(original.shape).copy()
    if key == "labels":
        return _judged(base, base.batch, flipped, setting, "labels bytes flipped")
    return _judged(
        base,
        _with_arrays(base.batch, **{key: flipped}),
        base.labels,
        setting,
        f"{key} bytes flipped",
    )


def _flip_header(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    """A random byte flip in one ``.npy`` header; numpy.load is the reference reader."""
    draft = base.draft(setting)
    record, key = _payload_key(rng, draft)
    array = record[key]
    data = bytearray(array.data)
    pos = int(rng.integers(_header_len(array.data)))
    data[pos] ^= int(rng.integers(1, 256))
    record[key] = _raw_array(array, bytes(data))
    original = np.load(io.BytesIO(array.data), allow_pickle=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fp = io.BytesIO(bytes(data))
            loaded = np.load(fp, allow_pickle=False)
            trailing = fp.read()
    except Exception:
        return _refuse(draft, "bad-array", f"{key}: header byte {pos} flipped, unreadable")
    same = (
        isinstance(loaded, np.ndarray)
        and loaded.dtype == original.dtype
        and loaded.shape == original.shape
        and loaded.tobytes() == original.tobytes()
        and not trailing
    )
    if not same:
        return _refuse(draft, "bad-array", f"{key}: header byte {pos} flipped, another array")
    return _either(draft, f"{key}: header byte {pos} flipped, same array")


def _structure(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    draft = base.draft(setting)
    content = dict(draft.content())
    names = [ACTIVATIONS_KEY, LABELS_KEY, META_KEY, METRICS_KEY]
    kind = _pick(
        rng,
        [
            "missing",
            "extra",
            "renamed",
            "retyped",
            "shared",
            "act-keys",
            "label-keys",
            "empty",
            "shared-array",
        ],
    )
    expect: str | None = "structure"
    if kind == "missing":
        name = _pick(rng, names)
        del content[name]
        note, expect = f"no '{name}'", "missing-record"
    elif kind == "extra":
        extra_name = _pick(rng, ["config", "extra", "activations2", "Activations"])
        content[extra_name] = _pick(
            rng, [ArrayRecord(), ConfigRecord({"x": 1}), MetricRecord({"x": 1.0})]
        )
        note = f"extra record '{extra_name}'"
    elif kind == "renamed":
        name = _pick(rng, names)
        content[name.upper() if rng.random() < 0.5 else name + " "] = content.pop(name)
        note, expect = f"'{name}' renamed", "missing-record"
    elif kind == "retyped":
        name = _pick(rng, names)
        if name in (ACTIVATIONS_KEY, LABELS_KEY):
            record = draft.acts if name == ACTIVATIONS_KEY else draft.labels
            content[name] = _pick(
                rng,
                [
                    ConfigRecord({k: a.data for k, a in record.items()}),
                    MetricRecord({k: float(len(a.data)) for k, a in record.items()}),
                ],
            )
        elif name == META_KEY:
            numeric: dict[str, Any] = {
                k: v for k, v in draft.meta.items() if isinstance(v, int | float)
            }
            content[name] = MetricRecord(numeric)
        else:
            content[name] = _pick(rng, [ConfigRecord(draft.metrics), ArrayRecord()])
        note = f"'{name}' of another record type"
    elif kind == "shared":
        content[LABELS_KEY] = content[ACTIVATIONS_KEY]
        note = "labels is the activations record"
    elif kind == "act-keys":
        acts = dict(draft.acts)
        change = _pick(rng, ["drop", "add", "rename"])
        victim = _pick(rng, sorted(acts))
        if change == "drop":
            del acts[victim]
        elif change == "add":
            acts[_pick(rng, ["extra", "codes" if "codes_zstd" in acts else "codes_zstd"])] = Array(
                np.zeros(3, np.uint8)
            )
        else:
            acts[victim + "_"] = acts.pop(victim)
        content[ACTIVATIONS_KEY] = _record(acts)
        note = f"activations arrays: {change} {victim}"
    elif kind == "label-keys":
        labels = dict(draft.labels)
        if rng.random() < 0.5:
            labels["extra"] = Array(np.zeros(3, np.uint8))
        else:
            labels = {"label": labels["labels"]}
        content[LABELS_KEY] = _record(labels)
        note = "labels arrays changed"
    elif kind == "empty":
        content = {}
        note, expect = "empty content", "missing-record"
    else:
        labels = {"labels": draft.acts[sorted(draft.acts)[0]]}
        content[LABELS_KEY] = _record(labels)
        note = "an Array shared by activations and labels"
    draft.records = content
    return _refuse(draft, expect, note)


def _dtype_shape(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    """Payload arrays of another dtype or shape (valid .npy, trusted numpy ops)."""
    arrays = dict(base.batch.arrays)
    key = _pick(rng, sorted(arrays))
    a = arrays[key]
    kind = _pick(
        rng, ["astype", "flatten", "row-more", "row-less", "transpose", "0-d", "empty", "fortran"]
    )
    if kind == "astype":
        target = _pick(
            rng,
            [
                d
                for d in (np.uint8, np.int8, np.float16, np.float32, np.float64, np.int64)
                if np.dtype(d) != a.dtype
            ],
        )
        with np.errstate(over="ignore", invalid="ignore"):
            new = a.astype(target)
    elif kind == "flatten":
        new = a.reshape(-1) if a.ndim > 1 else a.reshape(1, -1)
    elif kind == "row-more":
        new = np.concatenate([a, a[:1]])
    elif kind == "row-less":
        new = a[:-1] if a.shape[0] > 1 else a[:, :0] if a.ndim > 1 else a[:0]
    elif kind == "transpose":
        new = np.ascontiguousarray(a.T) if a.ndim > 1 else a[None, :]
    elif kind == "0-d":
        new = np.asarray(a.reshape(-1)[0])
    elif kind == "empty":
        new = a[:0]
    else:
        if a.ndim < 2 or min(a.shape) < 2:
            new = a.reshape(-1)[None, :].repeat(2, axis=0)
        else:
            # Right dtype and shape, Fortran order: same values, a server may refuse it.
            draft = base.draft(setting)
            draft.acts[key] = Array(np.asfortranarray(a))
            return _either(draft, f"{key}: Fortran order")
    batch = _with_arrays(base.batch, **{key: new})
    draft = base.draft(setting)
    draft.acts[key] = Array(new)
    must = reference_refuses(base.codec, batch, base.labels, setting)
    if not must:
        return _accept(draft, f"{key}: {kind} (still valid)")
    return _refuse(draft, None, f"{key}: {kind} -> {new.dtype} {new.shape}")


def _meta(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    draft = base.draft(setting)
    meta = draft.meta
    n = base.batch.num_samples
    zstd = "zstd_raw_nbytes" in meta
    other_codecs = [
        c for c in (*codecs, "u4-ch", "u8", "paper-g5", "u4+zstd9") if c != base.codec.name
    ]
    edits: list[tuple[str, Any, str, str | None]] = [
        ("codec", _pick(rng, other_codecs), "codec", "codec"),
        ("codec", _pick(rng, ["", "U4", "zstd", base.codec.name + " "]), "codec", "codec"),
        ("codec", 4, "codec", "codec"),
        (FINGERPRINT_KEY, setting.fingerprint[:-1] + "0", "fingerprint", "fingerprint"),
        (FINGERPRINT_KEY, setting.fingerprint.encode(), "fingerprint", "fingerprint"),
        (FINGERPRINT_KEY, None, "fingerprint", "fingerprint"),
        ("num_samples", n + 1 if n < setting.max_samples else n - 1 if n > 1 else 2, "num", None),
        ("num_samples", _pick(rng, [0, -1, float(n), True, str(n), [n]]), "num", "codec"),
        ("num_samples", None, "num", "codec"),
        (
            "sample_shape",
            list(setting.activation_shape[::-1])
            if len(set(setting.activation_shape)) > 1
            else [1, *setting.activation_shape],
            "shape",
            "shape",
        ),
        (
            "sample_shape",
            _pick(
                rng,
                [
                    [*setting.activation_shape, 1],
                    [math.prod(setting.activation_shape)],
                    "8,4,4",
                    [8.0, 4.0, 4.0],
                    [],
                ],
            ),
            "shape",
            None,
        ),
        ("sample_shape", None, "shape", "codec"),
        ("group_size", _pick(rng, [0, -1, 10**9, True, 1.5]), "group", None),
        ("zstd_raw_nbytes", _pick(rng, [0, 1, 10**12, -5, "1"]), "zstd", "codec"),
        ("extra", _pick(rng, [1, "x", b"x", [1, 2]]), "extra", "codec"),
        # Sizes no codec metadata has: bounded before anything formats or compares them.
        ("num_samples", _pick(rng, [10**5000, -(10**5000), 2**63]), "num", "codec"),
        ("group_size", "x" * 100_000, "group", "codec"),
        ("sample_shape", [4] * 100_000, "shape", "codec"),
        (FINGERPRINT_KEY, "f" * 1_000_000, "fingerprint", "fingerprint"),
    ]
    if zstd:
        edits.append(("zstd_raw_nbytes", None, "zstd", "codec"))
        edits.append(
            (
                "zstd_raw_nbytes",
                int(meta["zstd_raw_nbytes"]) + int(rng.choice([-1, 1])),
                "zstd",
                "codec",
            )
        )
    if base.codec.is_quantizer:
        edits.append(("group_size", None, "group", "codec"))
        edits.append(("group_size", int(meta["group_size"]) + 1, "group", "codec"))
    key, value, what, expect = _pick(rng, edits)
    if key == "group_size" and not base.codec.is_quantizer or key == "zstd_raw_nbytes" and not zstd:
        expect = "codec"  # a key this codec's metadata does not have
    if value is None:
        del meta[key]
    else:
        meta[key] = value
    if (
        key == "num_samples"
        and isinstance(value, int)
        and not isinstance(value, bool)
        and value >= 1
    ):
        draft.metrics["num-examples"] = value
    return _refuse(draft, expect, f"meta[{key!r}] = {_brief(value)}")


def _labels(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    n = base.batch.num_samples
    labels = base.labels.astype(np.int64)
    kind = _pick(
        rng,
        [
            "negative",
            "too-big",
            "float",
            "bool",
            "2-D",
            "short",
            "long",
            "0-d",
            "uint64-wrap",
            "complex",
        ],
    )
    i = int(rng.integers(n))
    if kind == "negative":
        new: np.ndarray = labels.astype(_pick(rng, [np.int8, np.int64]))
        new[i] = -1
    elif kind == "too-big":
        new = labels.copy()
        new[i] = _pick(rng, [setting.num_classes, 255, 2**40])
    elif kind == "float":
        new = labels.astype(_pick(rng, [np.float32, np.float64, np.float16]))
    elif kind == "bool":
        new = labels.astype(bool)
    elif kind == "2-D":
        new = labels[:, None] if rng.random() < 0.5 else np.stack([labels, labels])
    elif kind == "short":
        new = labels[:-1]
    elif kind == "long":
        new = np.concatenate([labels, labels[:1]])
    elif kind == "0-d":
        new = np.asarray(labels[0])
    elif kind == "uint64-wrap":
        new = labels.astype(np.uint64)
        new[i] = 2**63 + 3  # negative if cast to int64 before the range check
    else:
        new = labels.astype(np.complex64)
    draft = base.draft(setting)
    draft.labels = {"labels": Array(new)}  # (not ascontiguousarray: it makes 0-d arrays 1-D)
    return _refuse(draft, None, f"labels {kind} ({new.dtype} {new.shape})")


def _metrics(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    draft = base.draft(setting)
    n = base.batch.num_samples
    edits: list[tuple[str, Any]] = [
        ("num-examples", None),
        ("num-examples", n + 1),
        ("num-examples", n - 1),
        ("num-examples", float(n)),
        ("num-examples", [n]),
        ("num-examples", -n),
        ("front-seconds", _pick(rng, [-1.0, float("nan"), float("inf"), -float("inf"), [1.0]])),
        ("encode-seconds", _pick(rng, [-0.5, float("nan"), float("inf"), [0.1, 0.2]])),
        ("front-seconds+", 1e308),
        ("front-seconds", 10**400),
        ("num-examples", 10**5000),
        ("extra", _pick(rng, [1, 1.0, [1]])),
    ]
    key, value = _pick(rng, edits)
    if key == "front-seconds+":
        draft.metrics["front-seconds"] = draft.metrics["encode-seconds"] = value
    elif value is None:
        del draft.metrics[key]
    else:
        draft.metrics[key] = value
    return _refuse(draft, "metrics", f"metrics[{key!r}] = {_brief(value)}")


def _too_large(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    kind = _pick(rng, ["samples", "trailing-junk", "labels-junk"])
    if kind == "samples":
        extra = int(rng.integers(1, 100))
        big = _base(rng, base.codec, setting, setting.max_samples + extra)
        return _refuse(big.draft(setting), "too-large", f"{setting.max_samples + extra} samples")
    draft = base.draft(setting)
    record, key = (
        (draft.acts, _pick(rng, sorted(draft.acts)))
        if kind == "trailing-junk"
        else (draft.labels, "labels")
    )
    junk = int(rng.choice([1, 7, 4096, 2 << 20]))
    record[key] = _raw_array(record[key], record[key].data + bytes(junk))
    expect = "bad-array" if junk < 1024 else "too-large" if junk > (1 << 20) else None
    return _refuse(draft, expect, f"{key}: {junk} bytes after the data")


def _array_fields(
    rng: np.random.Generator, base: _Base, setting: FuzzSetting, codecs: Sequence[str]
) -> _Outcome:
    """Array metadata that disagrees with its bytes: stype, dtype name, data type."""
    draft = base.draft(setting)
    record, key = _payload_key(rng, draft)
    array = record[key]
    kind = _pick(rng, ["stype", "dtype-name", "dtype-junk", "bytearray", "dtype-other"])
    if kind == "stype":
        record[key] = Array(
            dtype=array.dtype,
            shape=tuple(array.shape),
            stype=_pick(rng, ["torch", "", "numpy.ndarray "]),
            data=array.data,
        )
    elif kind == "dtype-name":
        record[key] = Array(
            dtype=_pick(rng, ["<f4", "u1", "float", "O", "V8"]),
            shape=tuple(array.shape),
            stype=array.stype,
            data=array.data,
        )
    elif kind == "dtype-junk":
        record[key] = Array(
            dtype="x" * 5000, shape=tuple(array.shape), stype=array.stype, data=array.data
        )
    elif kind == "bytearray":
        copy = Array(
            dtype=array.dtype, shape=tuple(array.shape), stype=array.stype, data=array.data
        )
        copy.data = bytearray(array.data)  # type: ignore[assignment]
        record[key] = copy
        # Not bytes, as Array promises; the same bytes arrive as bytes over the wire.
        return _either(draft, f"{key}: Array data as bytearray")
    else:
        other = "float32" if array.dtype != "float32" else "uint8"
        record[key] = Array(
            dtype=other, shape=tuple(array.shape), stype=array.stype, data=array.data
        )
    return _refuse(draft, None, f"{key}: Array {kind}")


#: The generators and their weights.
GENERATORS: dict[str, tuple[int, Gen]] = {
    "valid": (14, _valid),
    "valid-edge": (5, _valid_edge),
    "empty-data": (3, _empty_data),
    "zip-data": (3, _zip_data),
    "broken-header": (6, _broken_header),
    "pickle": (2, _pickled),
    "huge-declared-shape": (6, _huge_declared),
    "huge-samples": (5, _huge_samples),
    "zstd-frame": (6, _zstd_frame),
    "code-values": (6, _code_values),
    "extreme-stats": (7, _extreme_stats),
    "flip-data": (12, _flip_data),
    "flip-header": (6, _flip_header),
    "structure": (9, _structure),
    "dtype-shape": (6, _dtype_shape),
    "array-fields": (3, _array_fields),
    "meta": (7, _meta),
    "labels": (5, _labels),
    "metrics": (5, _metrics),
    "too-large": (3, _too_large),
}


def generate_cases(
    count: int,
    seed: int = 0,
    setting: FuzzSetting | None = None,
    codecs: Sequence[str] = DEFAULT_CODECS,
    categories: Sequence[str] | None = None,
) -> Iterator[FuzzCase]:
    """Yield ``count`` seeded cases, each a reply to its own upload request.

    Parameters
    ----------
    count : int
        Number of cases.
    seed : int (default: 0)
        Same seed, same cases.
    setting : FuzzSetting, optional
        What the server accepts (default: ``FuzzSetting()``); the valid replies fit it.
    codecs : Sequence[str] (default: DEFAULT_CODECS)
        Codecs the server may ask for; each case picks one (``case.codec``).
    categories : Sequence[str], optional
        Restrict to these generators (names of :data:`GENERATORS`).

    Yields
    ------
    FuzzCase
        Replies come from node ``1000 + i`` for case ``i`` (``reply.metadata.src_node_id``).
    """
    setting = setting or FuzzSetting()
    names = list(categories or GENERATORS)
    unknown = sorted(set(names) - set(GENERATORS))
    if unknown:
        raise ValueError(f"unknown categories {unknown}; known: {sorted(GENERATORS)}")
    weights = np.array([GENERATORS[name][0] for name in names], dtype=float)
    rng = np.random.default_rng(seed)
    for i in range(count):
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        base = _base(rng, make_codec(_pick(rng, codecs)), setting)
        outcome = GENERATORS[name][1](rng, base, setting, codecs)
        asked = outcome.draft.codec
        request = upload_request(1000 + i, codec=asked)
        reply = Message(content=outcome.draft.content(), reply_to=request)
        yield FuzzCase(
            category=name,
            codec=asked,
            reply=reply,
            must_refuse=outcome.must_refuse,
            must_accept=outcome.must_accept,
            expect=outcome.expect,
            note=outcome.note,
            sendable=_fits_wire(outcome.draft),
        )


def _fits_wire(draft: _Draft) -> bool:
    """Whether every int of the records and Array shapes fits Flower's int64 fields."""

    def fits(value: object) -> bool:
        if isinstance(value, list | tuple):
            return all(fits(v) for v in value)
        return not isinstance(value, int) or -(1 << 63) <= value < (1 << 63)

    arrays = [*draft.acts.values(), *draft.labels.values()]
    return all(fits(v) for v in (*draft.meta.values(), *draft.metrics.values())) and all(
        fits(a.shape) for a in arrays
    )
