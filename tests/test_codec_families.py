"""Each codec family on its own, built from its class rather than from a name.

One section per module of ``ecofed_flwr.codec``: the floats (:class:`FloatCodec`), the paper's
int8 (:class:`PaperCodec`), unsigned uniform (:class:`UniformCodec`), fitted levels
(:class:`LevelCodec`), the zstd stage (:class:`ZstdStage`), bit packing, and how the grammar
maps names to families. Each family round trips within its error bound and its validation
refuses a malformed payload of its own kind; the zstd stage round trips any codes and refuses
frames beyond its size cap.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import zstandard

from ecofed_flwr.codec import (
    MAX_DECOMPRESSED_BYTES,
    Codec,
    CodecError,
    EncodedBatch,
    FloatCodec,
    LevelCodec,
    PaperCodec,
    PayloadValueError,
    Quantizer,
    UniformCodec,
    ZstdStage,
    list_codecs,
    make_codec,
)
from ecofed_flwr.codec.names import FAMILIES
from ecofed_flwr.codec.packing import pack, packed_row_nbytes, unpack
from ecofed_flwr.codec.zstd import frame_bound


def _x(shape: tuple[int, ...] = (17, 3, 2, 5), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) * 3
    x[0] = 0.0
    return x.astype(np.float32)


def _replace(batch: EncodedBatch, **arrays: np.ndarray | None) -> EncodedBatch:
    new = {k: v for k, v in batch.arrays.items() if k not in arrays}
    new.update({k: v for k, v in arrays.items() if v is not None})
    return dataclasses.replace(batch, arrays=new)


def _roundtrip(codec: Codec, x: np.ndarray) -> EncodedBatch:
    """Encode, decode, and check the error bound inside the value range."""
    batch = codec.encode(x)
    y = codec.decode(batch)
    assert y.dtype == np.float32 and y.shape == x.shape
    lo, hi = codec.value_range(batch)
    err = np.abs(np.clip(x, lo, hi).astype(np.float64) - y)
    assert np.all(err <= codec.error_bound(batch))
    plain = codec.validate(batch, max_abs_value=math.inf)
    assert (
        plain is batch
        if codec.lossless is None
        else plain.meta["codec"] == codec.name.partition("+")[0]
    )
    return batch


def _refused(codec: Codec, batch: EncodedBatch, error: type[CodecError] = CodecError) -> None:
    with pytest.raises(error):
        codec.validate(batch, max_abs_value=math.inf)
    with pytest.raises(error):
        codec.decode(batch)


# ------------------------------------------------------------------------------ the base


def test_the_base_is_abstract_and_every_family_is_a_codec() -> None:
    with pytest.raises(TypeError):
        Codec("u4")  # type: ignore[abstract]
    built = [FloatCodec("fp32"), PaperCodec(), UniformCodec("u4"), LevelCodec("lq2")]
    assert all(isinstance(c, Codec) for c in built)
    assert [c.is_quantizer for c in built] == [False, True, True, True]
    assert [isinstance(c, Quantizer) for c in built] == [False, True, True, True]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_family_refuses_the_schemes_of_the_others(family: type[Codec]) -> None:
    for scheme in list_codecs():
        if scheme not in family.SCHEMES:
            with pytest.raises(CodecError, match="expected one of"):
                family(scheme)


def test_make_codec_builds_the_family_of_the_base() -> None:
    assert [s for f in FAMILIES for s in f.SCHEMES] == list_codecs()
    for family in FAMILIES:
        for scheme in family.SCHEMES:
            assert type(make_codec(scheme)) is family
            assert make_codec(scheme) == family(scheme)
    assert make_codec("u4-ch-g5+zstd9") == UniformCodec("u4", True, None, 5, 9)
    assert make_codec("u4") != LevelCodec("lq4")  # another family, even at the same width


# ------------------------------------------------------------------------------ fp


@pytest.mark.parametrize("scheme", ["fp32", "fp16"])
def test_float_roundtrip(scheme: str) -> None:
    codec = FloatCodec(scheme)
    batch = _roundtrip(codec, _x())
    dtype = np.dtype({"fp32": np.float32, "fp16": np.float16}[scheme])
    assert set(batch.arrays) == {"codes"} and batch.arrays["codes"].dtype == dtype
    assert codec.bits == {"fp32": 32, "fp16": 16}[scheme] and codec.name == scheme
    if scheme == "fp32":
        assert np.array_equal(codec.decode(batch), _x())


@pytest.mark.parametrize("scheme", ["fp32", "fp16"])
def test_float_refuses_its_malformed_payloads(scheme: str) -> None:
    codec = FloatCodec(scheme)
    batch = codec.encode(_x())
    codes = batch.arrays["codes"]
    nan = codes.copy()
    nan[3, 4] = np.nan
    _refused(codec, _replace(batch, codes=nan), PayloadValueError)
    other = np.float16 if scheme == "fp32" else np.float32
    _refused(codec, _replace(batch, codes=codes.astype(other)))  # the other width
    _refused(codec, _replace(batch, scales=np.ones(1, np.float32)))  # floats have no statistics
    with pytest.raises(PayloadValueError, match=r"\|value\|"):
        codec.validate(batch, max_abs_value=1.0)


def test_float_refuses_quantizer_options() -> None:
    for options in ({"per_channel": True}, {"clip": 99.0}, {"group_size": 4}):
        with pytest.raises(CodecError, match="quantizing"):
            FloatCodec("fp16", **options)
    with pytest.raises(CodecError, match="float16"):
        FloatCodec("fp16").encode(np.array([[7e4]], np.float32))


# ------------------------------------------------------------------------------ paper


def test_paper_roundtrip_and_defaults() -> None:
    codec = PaperCodec()
    assert codec.scheme == "paper" and codec.bits == 8 and codec.name == "paper"
    assert PaperCodec(group_size=10).name == "paper" and PaperCodec(group_size=4).name == "paper-g4"
    batch = _roundtrip(codec, _x())
    assert batch.meta["group_size"] == 10 and batch.arrays["scales"].shape == (2,)
    codes = batch.arrays["codes"]
    assert codes.dtype == np.int8 and codes.min() >= -127 and codes.max() <= 127
    _roundtrip(PaperCodec(per_channel=True, clip=99.0, group_size=3), _x())


def test_paper_refuses_its_malformed_payloads() -> None:
    codec = PaperCodec()
    batch = codec.encode(_x())
    codes = batch.arrays["codes"].copy()
    codes[11, 0] = -128  # never produced: the code range is symmetric
    _refused(codec, _replace(batch, codes=codes), PayloadValueError)
    assert codec.decode(_replace(batch, codes=codes), slice(0, 10)).shape == (10, 3, 2, 5)
    _refused(codec, _replace(batch, scales=-batch.arrays["scales"]), PayloadValueError)
    _refused(codec, _replace(batch, offsets=batch.arrays["scales"]))  # paper has no offsets
    _refused(codec, _replace(batch, codes=batch.arrays["codes"].view(np.uint8)))


# ------------------------------------------------------------------------------ u*


@pytest.mark.parametrize("scheme", ["u8", "u4", "u2", "u1"])
def test_uniform_roundtrip(scheme: str) -> None:
    codec = UniformCodec(scheme)
    bits = int(scheme[1:])
    assert codec.bits == bits
    batch = _roundtrip(codec, _x())
    assert batch.arrays["codes"].shape == (17, packed_row_nbytes(30, bits))
    assert batch.meta["group_size"] == 17  # the whole batch by default
    assert np.all(np.abs(codec.decode(batch) - _x()) <= codec.error_bound(batch))
    _roundtrip(UniformCodec(scheme, per_channel=True, clip=97.5, group_size=4), _x())


def test_uniform_refuses_its_malformed_payloads() -> None:
    codec = UniformCodec("u2", per_channel=True)
    batch = codec.encode(_x())
    offsets, scales = batch.arrays["offsets"], batch.arrays["scales"]
    _refused(codec, _replace(batch, offsets=np.full_like(offsets, np.nan)), PayloadValueError)
    _refused(codec, _replace(batch, scales=np.zeros_like(scales)), PayloadValueError)
    _refused(codec, _replace(batch, scales=np.full_like(scales, 3e38)), PayloadValueError)
    _refused(codec, _replace(batch, offsets=None))
    _refused(codec, _replace(batch, scales=scales[:, :2]))  # one channel short
    _refused(codec, _replace(batch, codes=batch.arrays["codes"][:, :-1]))  # a packed byte short


# ------------------------------------------------------------------------------ lq*


@pytest.mark.parametrize("scheme", ["lq4", "lq2", "lq1"])
def test_level_roundtrip(scheme: str) -> None:
    codec = LevelCodec(scheme, per_channel=True)
    bits = int(scheme[2:])
    batch = _roundtrip(codec, _x())
    assert batch.arrays["offsets"].shape == (1, 3)
    assert batch.arrays["scales"].shape == (1, 3, (1 << bits) - 1)
    assert (batch.arrays["scales"] > 0).all()
    # Every decoded value is one of its channel's levels.
    levels = np.cumsum(
        np.concatenate([batch.arrays["offsets"][..., None], batch.arrays["scales"]], -1),
        -1,
        dtype=np.float32,
    )[0]
    y = codec.decode(batch)
    for c in range(3):
        assert np.isin(y[:, c], levels[c]).all()
    _roundtrip(LevelCodec(scheme, group_size=5, zstd_level=1), _x())


def test_level_refuses_its_malformed_payloads_and_clipping() -> None:
    codec = LevelCodec("lq2")
    batch = codec.encode(_x())
    steps = batch.arrays["scales"].copy()
    steps[0, 1] = 0.0  # two equal levels: the steps must be > 0
    _refused(codec, _replace(batch, scales=steps), PayloadValueError)
    steps[0, 1] = 3e38  # the top level leaves float32
    steps[0, 2] = 3e38
    _refused(codec, _replace(batch, scales=steps), PayloadValueError)
    _refused(codec, _replace(batch, scales=batch.arrays["scales"][:, :2]))  # a step short
    with pytest.raises(CodecError, match="-clip"):
        LevelCodec("lq2", clip=99.0)


# ------------------------------------------------------------------------------ zstd stage


@pytest.mark.parametrize(
    "codes",
    [
        np.arange(91, dtype=np.uint8).reshape(7, 13),
        np.arange(-60, 60, dtype=np.int8).reshape(10, 12),
        np.linspace(-3, 3, 24, dtype=np.float16).reshape(4, 6),
        np.random.default_rng(1).random((50, 40), dtype=np.float32),
    ],
)
def test_zstd_stage_roundtrips_any_codes(codes: np.ndarray) -> None:
    stage = ZstdStage(19)
    frame, raw_n = stage.compress(codes)
    assert frame.dtype == np.uint8 and frame.ndim == 1 and raw_n == codes.nbytes
    assert frame.nbytes <= stage.spec(raw_n).max_nbytes == frame_bound(raw_n)
    meta = {"zstd_raw_nbytes": raw_n}
    got = stage.decompress(frame, meta, codes.dtype, codes.shape)  # type: ignore[arg-type]
    assert got.dtype == codes.dtype and got.tobytes() == codes.tobytes()


def test_zstd_stage_names_and_levels() -> None:
    assert ZstdStage().suffix == "+zstd" and ZstdStage(3).suffix == "+zstd"
    assert ZstdStage(22).suffix == "+zstd22"
    for level in (0, 23, True, 3.0):
        with pytest.raises(CodecError, match="1..22"):
            ZstdStage(level)  # type: ignore[arg-type]


def test_zstd_stage_refuses_frames_beyond_its_size_cap() -> None:
    stage = ZstdStage()
    codes = np.zeros((8, 16), np.uint8)
    frame, raw_n = stage.compress(codes)
    shape = (8, 16)

    def refused(data: np.ndarray, raw: int, match: str, want: tuple[int, int] = shape) -> None:
        with pytest.raises(CodecError, match=match):
            stage.decompress(data, {"zstd_raw_nbytes": raw}, np.dtype(np.uint8), want)

    # The size the layout dictates is more than the cap: refused before any byte is read.
    huge = (1 << 20, (MAX_DECOMPRESSED_BYTES >> 20) + 1)
    refused(frame, huge[0] * huge[1], "at most", huge)
    refused(frame, raw_n + 1, "expected 128")  # the meta disagrees with the layout
    padded = np.concatenate([frame, np.zeros(frame_bound(raw_n), np.uint8)])
    refused(padded, raw_n, "at most")  # longer than any frame of that size
    refused(np.concatenate([frame, frame[:2]]), raw_n, "intact")  # trailing bytes
    big = np.frombuffer(zstandard.ZstdCompressor().compress(b"\0" * 256), np.uint8)
    refused(big, raw_n, "header says")
    refused(frame.astype(np.int8), raw_n, "dtype")
    refused(frame[None, :], raw_n, "1-D")
    from fuzz_replies_test import rle_frame  # tiny frames that inflate beyond their header

    refused(np.frombuffer(rle_frame(raw_n, raw_n * 1000), np.uint8), raw_n, "zstd")


@pytest.mark.parametrize(
    "codec",
    [FloatCodec("fp16"), PaperCodec(), UniformCodec("u1", per_channel=True), LevelCodec("lq4")],
    ids=lambda c: c.name,
)
def test_zstd_stage_is_the_same_over_every_family(codec: Codec) -> None:
    packed = dataclasses.replace(codec, zstd_level=7)
    assert packed.name == codec.name + "+zstd7" and packed.lossless == ZstdStage(7)
    assert codec.lossless is None
    x = _x()
    plain, batch = codec.encode(x), packed.encode(x)
    assert "codes" not in batch.arrays and batch.meta["zstd_raw_nbytes"] == plain.nbytes - sum(
        a.nbytes for k, a in plain.arrays.items() if k != "codes"
    )
    stripped = packed.without_lossless(batch)
    assert stripped.meta == plain.meta
    assert all(np.array_equal(stripped.arrays[k], a) for k, a in plain.arrays.items())
    assert packed.decode(batch).tobytes() == codec.decode(plain).tobytes()
    spec = packed.array_specs(17, (3, 2, 5))["codes_zstd"]
    assert spec.shape is None and batch.arrays["codes_zstd"].nbytes <= spec.max_nbytes


# ------------------------------------------------------------------------------ packing


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@pytest.mark.parametrize("values", [1, 3, 8, 13])
def test_pack_unpack_roundtrip(bits: int, values: int) -> None:
    codes = np.random.default_rng(bits * values).integers(0, 1 << bits, (5, values), np.uint8)
    packed = pack(codes, bits)
    assert packed.dtype == np.uint8 and packed.shape == (5, packed_row_nbytes(values, bits))
    for dtype in (np.float32, np.intp):
        out = unpack(packed, bits, values, dtype)
        assert out.dtype == dtype and np.array_equal(out, codes)
    assert np.array_equal(unpack(packed[2:4], bits, values, np.intp), codes[2:4])


def test_pack_puts_the_first_code_in_the_top_bits() -> None:
    codes = np.array([[1, 2, 3]], np.uint8)
    assert pack(codes, 2).tolist() == [[0b01101100]]
    assert pack(codes, 4).tolist() == [[0x12, 0x30]]
    assert pack(np.array([[1, 0, 1]], np.uint8), 1).tolist() == [[0b10100000]]
