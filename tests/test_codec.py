"""Tests for the activation codecs (``ecofed_flwr.codec``)."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ecofed_flwr.codec import (
    Codec,
    CodecError,
    EncodedBatch,
    PayloadValueError,
    list_codecs,
    make_codec,
)

FAST = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

ROUNDTRIP_NAMES = [
    "fp32",
    "fp16",
    "paper",
    "u8",
    "u4",
    "u2",
    "u1",
    "paper-ch",
    "u8-ch",
    "u4-ch",
    "u2-ch",
    "u1-ch",
    "u4-g3",
    "paper-ch-g4",
    "paper-clip99.5",
    "u4-clip99+zstd",
    "u2-ch+zstd",
    "u2-ch-clip99.9-g5+zstd",
    "u8+zstd9",
    "fp16+zstd",
    "lq2",
    "lq2-ch",
    "lq1-ch",
    "lq4-ch-g5",
    "lq2-ch+zstd",
    "lq4+zstd",
]
PLAIN_NAMES = [n for n in ROUNDTRIP_NAMES if "+zstd" not in n]
SAMPLE_SHAPES = [(1,), (7,), (3, 5), (2, 3, 3), (4, 1, 1), (3, 2, 5)]


@st.composite
def activations(draw: st.DrawFn) -> np.ndarray:
    """Small float32 batches: random (signed), non-negative (post-ReLU like) or constant."""
    n = draw(st.integers(1, 23))
    shape = (n, *draw(st.sampled_from(SAMPLE_SHAPES)))
    kind = draw(st.sampled_from(["signed", "relu", "constant"]))
    if kind == "constant":
        value = draw(st.floats(-1e3, 1e3, width=32))
        return np.full(shape, value, dtype=np.float32)
    lo = -1e4 if kind == "signed" else 0.0
    elements = st.floats(lo, 1e4, width=32, allow_subnormal=False)
    return draw(hnp.arrays(np.float32, shape, elements=elements))


def _replace(batch: EncodedBatch, **changes: object) -> EncodedBatch:
    """Copy of ``batch`` with array/meta entries replaced (value None deletes the entry)."""
    arrays, meta = dict(batch.arrays), dict(batch.meta)
    for key, value in changes.items():
        target = meta if key.startswith("meta_") else arrays
        key = key.removeprefix("meta_")
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value  # type: ignore[assignment]
    return dataclasses.replace(batch, arrays=arrays, meta=meta)


def _named_codec(batch: EncodedBatch) -> Codec:
    """The codec that ``batch``'s metadata names."""
    name = batch.meta["codec"]
    assert isinstance(name, str)
    return make_codec(name)


# ------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("name", ROUNDTRIP_NAMES)
@FAST
@given(x=activations())
def test_roundtrip_within_error_bound(name: str, x: np.ndarray) -> None:
    codec = make_codec(name)
    batch = codec.encode(x)
    y = codec.decode(batch)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.isfinite(y).all()
    lo, hi = codec.value_range(batch)
    bound = codec.error_bound(batch)
    # Clipped values (and for fitted levels the tails beyond the outer levels) decode to the
    # nearest end of the representable range; all others must be within the bound of themselves.
    assert np.all(np.abs(np.clip(x, lo, hi).astype(np.float64) - y) <= bound)
    if codec.clip is None and not name.startswith("lq"):
        assert np.all(np.abs(x.astype(np.float64) - y) <= bound)
    assert _named_codec(batch).decode(batch).tobytes() == y.tobytes()
    assert batch.meta["codec"] == codec.name
    assert batch.num_samples == x.shape[0]
    assert batch.num_values == x.size


@pytest.mark.parametrize("name", [n for n in ROUNDTRIP_NAMES if n[0] in "ul"])
@pytest.mark.parametrize("value", [-2.75, 0.0, 3e4])
def test_unsigned_and_level_constant_batch_is_exact(name: str, value: float) -> None:
    codec = make_codec(name)
    x = np.full((6, 3, 5), value, dtype=np.float32)
    batch = codec.encode(x)
    assert np.array_equal(codec.decode(batch), x)
    if name.startswith("lq"):  # levels stay on the data (u* stores a step of 1 instead)
        codec.validate(batch, max_abs_value=max(abs(value), 1e-30))


@pytest.mark.parametrize("name", ["paper", "paper-ch"])
def test_paper_zero_batch_is_exact(name: str) -> None:
    codec = make_codec(name)
    x = np.zeros((12, 4), dtype=np.float32)
    batch = codec.encode(x)
    assert np.array_equal(codec.decode(batch), x)
    assert np.isfinite(batch.arrays["scales"]).all() and (batch.arrays["scales"] > 0).all()


def test_paper_matches_definition() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(25, 8, 2, 2)).astype(np.float32)
    codec = make_codec("paper")
    batch = codec.encode(x)
    assert batch.meta["group_size"] == 10
    assert batch.arrays["codes"].dtype == np.int8
    scales = batch.arrays["scales"]
    assert scales.shape == (3,)  # groups of 10, 10 and 5 samples
    for g, (start, stop) in enumerate([(0, 10), (10, 20), (20, 25)]):
        assert scales[g] == np.float32(np.abs(x[start:stop]).max() / 127)
    codes = batch.arrays["codes"]
    assert codes.min() >= -127 and codes.max() <= 127
    expected = np.clip(
        np.rint(x.reshape(25, -1) / np.repeat(scales, [10, 10, 5])[:, None]), -127, 127
    )
    assert np.array_equal(codes, expected.astype(np.int8))


def test_unsigned_matches_definition() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(9, 5)).astype(np.float32)
    codec = make_codec("u2")
    batch = codec.encode(x)
    assert batch.meta["group_size"] == 9  # whole batch is one group
    assert batch.arrays["offsets"].tolist() == [x.min()]
    assert batch.arrays["scales"][0] == np.float32((float(x.max()) - float(x.min())) / 3)
    assert batch.arrays["codes"].shape == (9, 2)  # 5 values * 2 bits -> 2 bytes per sample
    expected = np.clip(np.rint((x - x.min()) / batch.arrays["scales"][0]), 0, 3).astype(np.uint8)
    # Codes are packed MSB first, zero padded; unpack by hand to check the layout.
    bits = np.unpackbits(batch.arrays["codes"], axis=1).reshape(9, 8, 2)
    unpacked = (bits[:, :, 0] * 2 + bits[:, :, 1])[:, :5]
    assert np.array_equal(unpacked, expected)
    assert (bits.reshape(9, 16)[:, 10:] == 0).all()


def _levels_of(batch: EncodedBatch) -> np.ndarray:
    """The levels of an lq* payload, ``(groups, [C,] K)`` float32, as the definition says."""
    offsets, steps = batch.arrays["offsets"], batch.arrays["scales"]
    return np.cumsum(np.concatenate([offsets[..., None], steps], axis=-1), -1, dtype=np.float32)


def test_levels_match_definition() -> None:
    # Four well-separated clusters: Lloyd-Max puts one level on the mean of each.
    rng = np.random.default_rng(20)
    centres = np.array([-10.0, -1.0, 2.0, 30.0])
    x = (centres[rng.integers(0, 4, (50, 2, 3))] + rng.normal(0, 0.1, (50, 2, 3))).astype(
        np.float32
    )
    x[:4, :, 0] = centres[:, None]  # every cluster present in every channel
    codec = make_codec("lq2-ch")
    batch = codec.encode(x)
    assert batch.meta["group_size"] == 50
    assert batch.arrays["offsets"].shape == (1, 2) and batch.arrays["scales"].shape == (1, 2, 3)
    assert (batch.arrays["scales"] > 0).all()
    levels = _levels_of(batch)[0]  # (C, 4)
    assert np.all(np.diff(levels, axis=1) > 0)
    for c in range(2):
        values = x[:, c].ravel()
        near = np.abs(values[:, None] - centres).argmin(1)
        means = np.array([values[near == j].mean() for j in range(4)])
        np.testing.assert_allclose(levels[c], means, rtol=1e-5)
    # Codes are nearest-level indices, packed MSB first like u2; decode is a table lookup.
    bits = np.unpackbits(batch.arrays["codes"], axis=1).reshape(50, 8, 2)[:, :6]
    codes = (bits[:, :, 0] * 2 + bits[:, :, 1]).reshape(50, 2, 3)
    dist = np.abs(x[..., None] - levels[None, :, None, :])
    assert np.array_equal(codes, dist.argmin(-1))
    expected = np.take_along_axis(levels[None, :, None, :], codes[..., None].astype(int), -1)
    assert np.array_equal(codec.decode(batch), expected[..., 0])


def test_levels_beat_the_affine_range_on_heavy_tails() -> None:
    # Student-t (3 degrees of freedom) channels with their own scale and offset: the fitted
    # levels follow the bulk, the min/max range of u2-ch spends its codes on the tails.
    rng = np.random.default_rng(21)
    scale, shift = rng.uniform(0.5, 5, (1, 8, 1, 1)), rng.uniform(-3, 3, (1, 8, 1, 1))
    x = (rng.standard_t(3, (400, 8, 4, 4)) * scale + shift).astype(np.float32)

    def mse(name: str) -> float:
        codec = make_codec(name)
        return float(np.mean((codec.decode(codec.encode(x)) - x) ** 2 / scale**2))

    assert mse("lq2-ch") < 0.5 * mse("u2-ch")
    assert mse("lq2-ch") < mse("u2-ch-clip99")
    assert mse("lq1-ch") < mse("u1-ch")
    assert mse("lq4-ch") < mse("u4-ch")


def test_level_groups_are_fitted_apart() -> None:
    rng = np.random.default_rng(22)
    x = rng.normal(size=(12, 3, 4)).astype(np.float32)
    x[5:] *= 100  # a later group with a 100x range must not coarsen the first one
    codec = make_codec("lq2-ch-g5")
    batch = codec.encode(x)
    assert batch.arrays["offsets"].shape == (3, 3) and batch.arrays["scales"].shape == (3, 3, 3)
    err = np.abs(codec.decode(batch) - x)
    whole = make_codec("lq2-ch")
    assert err[:5].max() < np.abs(whole.decode(whole.encode(x)) - x)[:5].max() / 10


def test_level_payload_out_of_range_is_refused() -> None:
    codec, batch = _good("lq2-ch")
    worst = float(np.abs(_levels_of(batch)).max())
    assert codec.validate(batch, max_abs_value=worst) is batch
    steps = batch.arrays["scales"].copy()
    steps[0, 1, 1:] = 3e38  # finite and > 0, but the top level leaves float32
    with pytest.raises(PayloadValueError, match="float32"):
        codec.validate(_replace(batch, scales=steps))
    steps[0, 1, 2] = 1e3  # a top level beyond the stated bound
    codec.validate(_replace(batch, scales=steps))
    with pytest.raises(PayloadValueError, match=r"\|value\|"):
        codec.validate(_replace(batch, scales=steps), max_abs_value=100.0)
    offsets = batch.arrays["offsets"].copy()
    offsets[0, 0] = -5e3  # the lowest level beyond the bound
    with pytest.raises(PayloadValueError, match=r"\|value\|"):
        codec.validate(_replace(batch, offsets=offsets), max_abs_value=100.0)
    for bad in (0.0, -1.0, np.nan, np.inf, -np.inf):
        steps = batch.arrays["scales"].copy()
        steps[0, 0, 1] = bad  # levels must increase
        _assert_rejected(codec, _replace(batch, scales=steps))


def test_per_channel_statistics_shapes() -> None:
    rng = np.random.default_rng(3)
    x4 = rng.normal(size=(12, 6, 2, 3)).astype(np.float32)
    x4[:, 2] *= 100  # one loud channel must not coarsen the others
    b = make_codec("u4-ch-g5").encode(x4)
    assert b.arrays["scales"].shape == (3, 6) and b.arrays["offsets"].shape == (3, 6)
    err = np.abs(make_codec("u4-ch-g5").decode(b) - x4)
    err_tensor = np.abs(make_codec("u4-g5").decode(make_codec("u4-g5").encode(x4)) - x4)
    assert err[:, 0].max() < err_tensor[:, 0].max() / 10
    b2 = make_codec("paper-ch").encode(rng.normal(size=(4, 7)).astype(np.float32))
    assert b2.arrays["scales"].shape == (1, 7)  # 2-D input: features are the channels


def test_error_bound_is_tight() -> None:
    x = np.linspace(-3, 5, 4001, dtype=np.float32).reshape(1, -1)
    for name in ("u8", "u4", "u2", "u1", "paper", "lq4", "lq2", "lq1"):
        codec = make_codec(name)
        batch = codec.encode(x)
        lo, hi = codec.value_range(batch)
        inside = (x >= lo) & (x <= hi)  # lq*: the tails beyond the outer levels saturate
        err = np.abs(codec.decode(batch) - x)[inside].max()
        bound = float(np.max(codec.error_bound(batch)))
        assert 0.95 * bound <= err <= bound, name


def test_fp16_relative_error() -> None:
    x = np.array([[1e-3, -2.5, 6e4, 1.0 / 3.0]], dtype=np.float32)
    y = make_codec("fp16").decode(make_codec("fp16").encode(x))
    assert np.all(np.abs(y - x) <= np.abs(x) * 2.0**-11 + 2.0**-25)


def test_clip_limits_range_and_saturates_outliers() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 50)).astype(np.float32)
    x[0, 0] = 1000.0
    codec = make_codec("u4-clip99")
    batch = codec.encode(x)
    lo, hi = codec.value_range(batch)
    assert float(hi.max()) < 10 and float(lo.min()) > -10
    y = codec.decode(batch)
    assert y[0, 0] == pytest.approx(float(hi.ravel()[0]), rel=1e-6)
    plain = make_codec("u4")
    assert (
        np.abs(codec.decode(batch) - x)[1:].max()
        < np.abs(plain.decode(plain.encode(x)) - x)[1:].max()
    )


def test_torch_tensor_input() -> None:
    torch = pytest.importorskip("torch")
    t = torch.linspace(-1, 1, 60).reshape(3, 4, 5)
    for name in ("u4", "paper", "fp16"):
        codec = make_codec(name)
        a = codec.encode(t)
        b = codec.encode(t.numpy())
        assert all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)
    bf16 = make_codec("u8").encode(t.to(torch.bfloat16))
    assert bf16.num_samples == 3


def test_one_dimensional_samples() -> None:
    x = np.arange(5, dtype=np.float32)  # five scalar samples
    batch = make_codec("u4").encode(x)
    assert batch.meta["sample_shape"] == [] and make_codec("u4").decode(batch).shape == (5,)
    with pytest.raises(CodecError, match="per-channel"):
        make_codec("u4-ch").encode(x)


# ------------------------------------------------------------------------------ sizes


@pytest.mark.parametrize("name", PLAIN_NAMES)
@pytest.mark.parametrize("shape", [(1, 7), (10, 3, 5), (23, 2, 3, 3), (100, 40, 4, 4)])
def test_encoded_nbytes_matches(name: str, shape: tuple[int, ...]) -> None:
    codec = make_codec(name)
    x = np.random.default_rng(5).normal(size=shape).astype(np.float32)
    batch = codec.encode(x)
    assert codec.encoded_nbytes(shape[0], shape[1:]) == batch.nbytes
    assert batch.bits_per_value == batch.nbytes * 8 / x.size


@pytest.mark.parametrize("name", ["u4-clip99+zstd", "u2-ch+zstd", "u8+zstd9", "fp16+zstd"])
def test_encoded_nbytes_is_pre_zstd_size(name: str) -> None:
    codec = make_codec(name)
    plain = make_codec(name.split("+")[0])
    x = np.random.default_rng(6).normal(size=(11, 3, 5)).astype(np.float32)
    assert codec.encoded_nbytes(11, (3, 5)) == plain.encode(x).nbytes
    stripped = codec.without_lossless(codec.encode(x))
    assert stripped.nbytes == codec.encoded_nbytes(11, (3, 5))


def test_bits_per_value_exact() -> None:
    x = np.random.default_rng(7).normal(size=(100, 40, 4, 4)).astype(np.float32)  # 640/sample
    values = x.size
    expected = {
        "fp32": 32.0,
        "fp16": 16.0,
        "u8": 8 + 64 / values,  # one float32 scale + one float32 offset for the batch
        "u4": 4 + 64 / values,
        "u2": 2 + 64 / values,
        "u1": 1 + 64 / values,
        "paper": 8 + 32 / (10 * 640),  # one float32 scale per 10-sample tensor
        "u4-ch": 4 + 64 * 40 / values,
    }
    for name, bpv in expected.items():
        assert make_codec(name).encode(x).bits_per_value == pytest.approx(bpv, rel=1e-12), name
    # Odd value counts pad each sample's row to whole bytes.
    assert make_codec("u2").encoded_nbytes(3, (5,)) == 3 * 2 + 8
    assert make_codec("u1").encoded_nbytes(3, (9,)) == 3 * 2 + 8


def test_zstd_shrinks_low_entropy_input() -> None:
    rng = np.random.default_rng(8)
    x = np.maximum(rng.normal(size=(50, 16, 4, 4)), 1.5).astype(np.float32)  # mostly constant
    for name in ("u8", "u4", "paper"):
        plain = make_codec(name).encode(x)
        packed = make_codec(name + "+zstd").encode(x)
        assert packed.nbytes < 0.5 * plain.nbytes, name
        assert np.array_equal(
            _named_codec(packed).decode(packed), _named_codec(plain).decode(plain)
        )


# ------------------------------------------------------------------------------ slicing


@pytest.mark.parametrize("name", ROUNDTRIP_NAMES)
def test_sliced_decode_equals_full_decode(name: str) -> None:
    codec = make_codec(name)
    x = np.random.default_rng(9).normal(size=(23, 3, 5)).astype(np.float32)
    batch = codec.encode(x)
    full = codec.decode(batch)
    mask = np.zeros(23, dtype=bool)
    mask[[1, 4, 22]] = True
    cases: list[tuple[object, np.ndarray]] = [
        (slice(3, 17, 2), full[3:17:2]),
        (slice(None, None, -1), full[::-1]),
        (slice(20, 40), full[20:]),
        (slice(5, 5), full[5:5]),
        (np.array([0, 22, -1, 7, 7]), full[[0, 22, -1, 7, 7]]),
        (mask, full[mask]),
    ]
    stripped = codec.without_lossless(batch)
    for index, expected in cases:
        for b in (batch, stripped):
            got = codec.decode(b, index)  # type: ignore[arg-type]
            assert got.dtype == np.float32 and got.shape == expected.shape
            assert got.tobytes() == expected.tobytes()
    got = _named_codec(stripped).decode(stripped, np.array([2, 3]))
    assert got.tobytes() == full[2:4].tobytes()
    with pytest.raises(IndexError):
        codec.decode(batch, np.array([23]))
    with pytest.raises(IndexError):
        codec.decode(batch, np.ones(5, dtype=bool))


def test_without_lossless() -> None:
    x = np.random.default_rng(10).normal(size=(7, 9)).astype(np.float32)
    plain = make_codec("u4-ch")
    batch = plain.encode(x)
    assert plain.without_lossless(batch) is batch
    codec = make_codec("u4-ch+zstd")
    stripped = codec.without_lossless(codec.encode(x))
    assert stripped.meta["codec"] == "u4-ch" and "zstd_raw_nbytes" not in stripped.meta
    for key in batch.arrays:
        assert np.array_equal(stripped.arrays[key], batch.arrays[key])
    assert stripped.meta == batch.meta
    plain.validate(stripped)


# ------------------------------------------------------------------------------ names


def test_names_roundtrip_and_canonical() -> None:
    assert list_codecs() == ["fp32", "fp16", "paper", "u8", "u4", "u2", "u1", "lq4", "lq2", "lq1"]
    for name in [*list_codecs(), *ROUNDTRIP_NAMES]:
        codec = make_codec(name)
        assert make_codec(codec.name) == codec
        assert make_codec(codec.name).name == codec.name
    assert make_codec("paper-g10").name == "paper"
    assert make_codec("paper", group_size=10).name == "paper"
    assert make_codec("u4", group_size=100).name == "u4-g100"
    assert make_codec("u4-g100-ch").name == "u4-ch-g100"
    assert make_codec("u2-clip99.90-ch+zstd3").name == "u2-ch-clip99.9+zstd"
    assert make_codec("u8+zstd19").name == "u8+zstd19"
    assert make_codec("u4-clip99").clip == 99.0 and make_codec("u4-clip99").name == "u4-clip99"
    bits = {"fp32": 32, "fp16": 16, "paper": 8, "u8": 8, "u4": 4, "u2": 2, "u1": 1}
    bits |= {"lq4": 4, "lq2": 2, "lq1": 1}
    assert {n: make_codec(n).bits for n in list_codecs()} == bits
    assert isinstance(make_codec("u4"), Codec)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "u3",
        "U4",
        "u4 ",
        "u4-",
        "u4--ch",
        "u4-ch-ch",
        "u4-g2-g3",
        "u4-clip99-clip98",
        "fp32-ch",
        "fp16-g4",
        "fp32-clip99",
        "u4-clip100",
        "u4-clip50",
        "u4-clipx",
        "u4-clip-1",
        "u4-g0",
        "u4-gx",
        "u4+zstd0",
        "u4+zstd23",
        "u4+lz4",
        "u4+zstd+zstd",
        "u4+zstd-ch",
        "int8",
    ],
)
def test_bad_names(name: str) -> None:
    with pytest.raises(CodecError, match="expected"):
        make_codec(name)


def test_bad_group_size_arguments() -> None:
    with pytest.raises(CodecError):
        make_codec("u4-g5", group_size=6)
    with pytest.raises(CodecError):
        make_codec("u4", group_size=0)
    with pytest.raises(CodecError):
        make_codec("fp32", group_size=4)
    with pytest.raises(CodecError):
        make_codec(None)  # type: ignore[arg-type]
    assert make_codec("u4-g5", group_size=5).name == "u4-g5"


def test_meta_is_config_record_friendly() -> None:
    x = np.random.default_rng(11).normal(size=(4, 3, 2, 2)).astype(np.float32)
    for name in ROUNDTRIP_NAMES:
        meta = make_codec(name).encode(x).meta
        for value in meta.values():
            assert type(value) in (int, float, str, list)
            if isinstance(value, list):
                assert all(type(v) is int for v in value)
        json.dumps(meta)
        assert {"codec", "num_samples", "sample_shape"} <= set(meta)


# ------------------------------------------------------------------------------ malformed input


def _good(name: str) -> tuple[Codec, EncodedBatch]:
    codec = make_codec(name)
    x = np.random.default_rng(12).normal(size=(13, 3, 5)).astype(np.float32)
    return codec, codec.encode(x)


def _assert_rejected(codec: Codec, batch: EncodedBatch, match: str = "expected") -> None:
    with pytest.raises(CodecError, match=match):
        codec.validate(batch)
    with pytest.raises(CodecError, match=match):
        codec.decode(batch, slice(0, 2))


@pytest.mark.parametrize("name", ["u4", "u8-ch", "paper", "u1-g4"])
def test_malformed_quantized_payloads(name: str) -> None:
    codec, batch = _good(name)
    codec.validate(batch)
    codes, scales = batch.arrays["codes"], batch.arrays["scales"]
    bad: list[EncodedBatch] = [
        _replace(batch, codes=codes[:, :-1]),  # truncated rows
        _replace(batch, codes=codes[:-1]),  # a sample missing
        _replace(batch, codes=codes.reshape(-1)),  # flattened
        _replace(batch, codes=codes.astype(np.int16)),  # wrong dtype
        _replace(batch, codes=codes.view(np.uint8 if codes.dtype == np.int8 else np.int8)),
        _replace(batch, codes=None),  # missing array
        _replace(batch, scales=None),
        _replace(batch, extra=np.zeros(3, np.float32)),  # extra array
        _replace(batch, scales=scales.astype(np.float64)),
        _replace(batch, scales=scales[:-1] if scales.shape[0] > 1 else scales[:, None]),
        _replace(batch, scales=np.full_like(scales, np.nan)),
        _replace(batch, scales=np.full_like(scales, np.inf)),
        _replace(batch, scales=-scales),
        _replace(batch, scales=np.zeros_like(scales)),
        _replace(batch, meta_sample_shape=[3, 6]),  # wrong meta shape
        _replace(batch, meta_sample_shape="3,5"),
        _replace(batch, meta_sample_shape=[3, 0, 5]),
        _replace(batch, meta_num_samples=12),
        _replace(batch, meta_num_samples=True),
        _replace(batch, meta_num_samples=13.0),
        _replace(batch, meta_num_samples=None),
        _replace(batch, meta_group_size=batch.meta["group_size"] + 1),  # type: ignore[operator]
        _replace(batch, meta_extra=1),
        _replace(batch, meta_codec="u2" if name != "u2" else "u4"),  # wrong codec name
        _replace(batch, meta_codec="nonsense"),
        _replace(batch, meta_codec=None),
    ]
    if "offsets" in batch.arrays:
        offsets = batch.arrays["offsets"]
        bad += [
            _replace(batch, offsets=np.full_like(offsets, np.nan)),
            _replace(batch, offsets=np.full_like(offsets, -np.inf)),
            _replace(batch, offsets=None),
        ]
    for malformed in bad:
        _assert_rejected(codec, malformed)
    with pytest.raises(CodecError):
        codec.validate("not a batch")  # type: ignore[arg-type]


def test_per_channel_rejects_reshaped_meta() -> None:
    # A per-tensor payload cannot tell (3, 5) from (5, 3): same bytes, same statistics. With
    # per-channel statistics the channel count is checked against the scales' shape.
    codec, batch = _good("u8-ch")
    _assert_rejected(codec, _replace(batch, meta_sample_shape=[15]))
    _assert_rejected(codec, _replace(batch, meta_sample_shape=[5, 3]))


def test_paper_code_out_of_range_rejected() -> None:
    codec, batch = _good("paper")
    codes = batch.arrays["codes"].copy()
    codes[1, 2] = -128
    with pytest.raises(CodecError, match="-127"):
        codec.decode(_replace(batch, codes=codes))
    codec.decode(_replace(batch, codes=codes), slice(2, None))  # other samples still fine


@pytest.mark.parametrize("name", ["fp32", "fp16"])
def test_malformed_float_payloads(name: str) -> None:
    codec, batch = _good(name)
    codes = batch.arrays["codes"]
    for malformed in [
        _replace(batch, codes=codes[:, :-1]),
        _replace(batch, codes=codes.astype(np.float64)),
        _replace(batch, codes=None),
        _replace(batch, scales=np.ones(1, np.float32)),
        _replace(batch, meta_group_size=10),
        _replace(batch, meta_codec="fp16" if name == "fp32" else "fp32"),
    ]:
        _assert_rejected(codec, malformed)
    poisoned = codes.copy()
    poisoned[0, 0] = np.nan
    with pytest.raises(CodecError, match="finite"):
        codec.decode(_replace(batch, codes=poisoned))


def test_malformed_zstd_payloads() -> None:
    codec, batch = _good("u2-ch+zstd")
    codec.validate(batch)
    blob = batch.arrays["codes_zstd"]
    raw_n = batch.meta["zstd_raw_nbytes"]
    assert isinstance(raw_n, int)
    flipped = blob.copy()
    flipped[len(flipped) // 2] ^= 0x55
    frame = zstandard.ZstdCompressor(write_checksum=True).compress(b"\0" * (raw_n + 1))
    plain_codes = codec.without_lossless(batch).arrays["codes"]
    for malformed in [
        _replace(batch, codes_zstd=flipped),  # corrupted bytes
        _replace(batch, codes_zstd=blob[:-3]),  # cut frame
        _replace(batch, codes_zstd=blob[:4]),
        _replace(batch, codes_zstd=np.zeros(0, np.uint8)),
        _replace(batch, codes_zstd=np.concatenate([blob, blob])),  # two frames
        _replace(batch, codes_zstd=np.concatenate([blob, np.zeros(2, np.uint8)])),  # trailing
        _replace(batch, codes_zstd=blob.astype(np.int8)),
        _replace(batch, codes_zstd=blob[None, :]),
        _replace(batch, codes_zstd=np.frombuffer(frame, np.uint8)),  # frame of the wrong size
        _replace(batch, meta_zstd_raw_nbytes=raw_n + 1),  # raw length mismatch
        _replace(batch, meta_zstd_raw_nbytes=raw_n - 1),
        _replace(batch, meta_zstd_raw_nbytes=1 << 40),
        _replace(batch, meta_zstd_raw_nbytes=None),
        _replace(batch, codes_zstd=None, codes=plain_codes),  # stripped arrays, zstd name
    ]:
        _assert_rejected(codec, malformed)
        with pytest.raises(CodecError):
            codec.without_lossless(malformed)


@FAST
@given(data=st.data())
def test_random_zstd_corruption_never_decodes_wrong(data: st.DataObject) -> None:
    codec, batch = _good("u4+zstd")
    expected = codec.decode(batch)
    blob = batch.arrays["codes_zstd"].copy()
    pos = data.draw(st.integers(0, len(blob) - 1))
    blob[pos] ^= data.draw(st.integers(1, 255))
    try:
        got = codec.decode(_replace(batch, codes_zstd=blob))
    except CodecError:
        return
    assert got.tobytes() == expected.tobytes()


@FAST
@given(data=st.data())
def test_random_payload_mutations_only_raise_codec_error(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["u4-ch", "paper", "u1", "fp16", "u2-g4+zstd"]))
    codec, batch = _good(name)
    key = data.draw(st.sampled_from(sorted(batch.arrays)))
    arr = batch.arrays[key]
    dtypes = [arr.dtype, *map(np.dtype, [np.uint8, np.int8, np.float32, np.float16])]
    dtype: np.dtype[Any] = data.draw(st.sampled_from(dtypes))
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=40))
    junk = data.draw(hnp.arrays(dtype, shape))
    try:
        codec.decode(_replace(batch, **{key: junk}))
    except CodecError:
        pass


def test_bad_codec_names_in_meta_are_refused() -> None:
    # No codec can be built from the name, and the codec the batch came from refuses it.
    codec, batch = _good("u4")
    for meta_codec in ("u3", 7, None):
        bad = _replace(batch, meta_codec=meta_codec)
        with pytest.raises(CodecError):
            make_codec(bad.meta.get("codec"))  # type: ignore[arg-type]
        _assert_rejected(codec, bad)


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("name", ["fp32", "fp16", "paper", "u4-ch", "u2+zstd"])
def test_encode_rejects_bad_input(name: str) -> None:
    codec = make_codec(name)
    bad_inputs: list[np.ndarray] = [
        np.array([[1.0, np.nan]], np.float32),
        np.array([[1.0, np.inf]], np.float64),
        np.array([[-np.inf, 0.0]], np.float32),
        np.zeros((0, 4), np.float32),
        np.zeros((3, 0), np.float32),
        np.zeros((2, 2), np.complex64),
        np.array([["a", "b"]]),
        np.array([[1e39, 0.0]]),  # finite float64, inf as float32
    ]
    for x in bad_inputs:
        with pytest.raises(CodecError, match="expected"):
            codec.encode(x)


def test_fp16_overflow_rejected() -> None:
    with pytest.raises(CodecError, match="float16"):
        make_codec("fp16").encode(np.array([[1e5]], np.float32))


def test_huge_values_do_not_overflow() -> None:
    x = np.array([[3e38, -3e38, 0.0]], np.float32)
    for name in ("paper", "u8"):
        try:
            batch = make_codec(name).encode(x)
        except CodecError:
            continue
        y = _named_codec(batch).decode(batch)
        assert np.isfinite(y).all()
    big = np.array([[1e37, -1e37, 5e36]], np.float32)
    batch = make_codec("u8").encode(big)
    assert np.all(
        np.abs(_named_codec(batch).decode(batch) - big) <= make_codec("u8").error_bound(batch)
    )
    assert math.isfinite(batch.bits_per_value)


# ------------------------------------------------------------------------------ value bound


@pytest.mark.parametrize("name", ["u4", "u8-ch", "paper", "paper-ch-g4", "u2+zstd", "fp16", "fp32"])
def test_validate_with_a_bound_is_tight(name: str) -> None:
    # Every extreme a payload can represent is attained by the batch it encodes, so the largest
    # |decoded value| passes and the next smaller float fails.
    codec, batch = _good(name)
    plain = codec.validate(batch, max_abs_value=math.inf)
    assert plain.meta["codec"] == codec.name.partition("+")[0]
    worst = float(np.abs(codec.decode(batch)).max())
    codec.validate(batch, max_abs_value=worst)
    with pytest.raises(PayloadValueError, match=r"\|value\|"):
        codec.validate(batch, max_abs_value=float(np.nextafter(np.float32(worst), 0)))


def test_validate_returns_the_plain_batch() -> None:
    codec, batch = _good("u4+zstd")
    plain = codec.validate(batch)
    assert "codes" in plain.arrays and plain.meta["codec"] == "u4"
    np.testing.assert_array_equal(codec.decode(plain), codec.decode(batch))
    assert codec.validate(plain) is plain
    plain_codec, plain_batch = _good("u4")
    assert plain_codec.validate(plain_batch) is plain_batch


def test_validate_with_a_bound_checks_every_code() -> None:
    codec, batch = _good("paper")
    codes = batch.arrays["codes"].copy()
    codes[4, 1] = -128
    codec.validate(_replace(batch, codes=codes))  # without a bound: left to decode
    with pytest.raises(PayloadValueError, match="-128"):
        codec.validate(_replace(batch, codes=codes), max_abs_value=math.inf)
    for name, value in [("fp16", np.inf), ("fp32", np.nan), ("fp32", 2e4)]:
        codec, batch = _good(name)
        codes = batch.arrays["codes"].copy()
        codes[0, 0] = value
        with pytest.raises(PayloadValueError):
            codec.validate(_replace(batch, codes=codes), max_abs_value=1e4)


@pytest.mark.parametrize(("key", "value"), [("scales", 2e37), ("offsets", -3e38), ("scales", 1e3)])
def test_extreme_statistics_fail_the_bound(key: str, value: float) -> None:
    codec, batch = _good("u8")
    stats = batch.arrays[key].copy()
    stats[0] = value
    with pytest.raises(PayloadValueError):
        codec.validate(_replace(batch, **{key: stats}), max_abs_value=1e4)


@pytest.mark.parametrize("name", ROUNDTRIP_NAMES)
def test_array_specs_describe_the_encoded_arrays(name: str) -> None:
    codec, batch = _good(name)
    specs = codec.array_specs(13, (3, 5))
    assert sorted(specs) == sorted(batch.arrays)
    for key, spec in specs.items():
        array = batch.arrays[key]
        assert array.dtype == spec.dtype and array.nbytes <= spec.max_nbytes
        assert spec.shape is None and array.ndim == 1 or array.shape == spec.shape


def test_array_specs_bound_incompressible_frames() -> None:
    codec = make_codec("u8+zstd")
    x = np.random.default_rng(1).random((300, 1000), dtype=np.float32)
    batch = codec.encode(x)
    assert batch.arrays["codes_zstd"].nbytes > 300_000  # random codes do not compress
    assert (
        batch.arrays["codes_zstd"].nbytes
        <= codec.array_specs(300, (1000,))["codes_zstd"].max_nbytes
    )


def test_zstd_frames_that_inflate_beyond_their_header_are_refused() -> None:
    from fuzz_replies_test import rle_frame

    codec, batch = _good("u4+zstd")
    raw_n = batch.meta["zstd_raw_nbytes"]
    assert isinstance(raw_n, int)
    honest = np.frombuffer(rle_frame(raw_n, raw_n), np.uint8)
    decoded = codec.decode(_replace(batch, codes_zstd=honest))
    assert (decoded == batch.arrays["offsets"][0]).all()  # all codes 0
    for produced in (raw_n * 10_000, raw_n - 1):
        lying = np.frombuffer(rle_frame(raw_n, produced), np.uint8)
        with pytest.raises(CodecError, match="zstd"):
            codec.validate(_replace(batch, codes_zstd=lying))
