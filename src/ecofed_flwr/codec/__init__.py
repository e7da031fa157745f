"""Codecs for frozen-front-end activations (SPEC sections 2.2 and 5).

A device runs the frozen front-end ``F`` and uploads ``Q(F(x))``; the server keeps the encoded
batches in a replay buffer and decodes (slices of) them for training. This package defines the
wire format of those uploads and the quantizers that produce it.

Name grammar (see :func:`make_codec`)::

    BASE[-ch][-clipP][-gN][+zstd[L]]

* ``BASE``: ``fp32``, ``fp16`` (plain floats), ``paper`` (symmetric int8, one scale per group
  of 10 samples, as in the EcoFed paper), ``u8``/``u4``/``u2``/``u1`` (unsigned affine at that
  many bits, one group = the whole batch by default) or ``lq4``/``lq2``/``lq1`` (``2**B``
  levels fitted to each group by Lloyd-Max and sent with it; codes are nearest-level indices).
* ``-ch``: statistics per channel (axis 1 of the input) instead of per group.
* ``-clipP``: clip every group (channel) to its ``[100-P, P]`` percentiles before quantizing
  (``paper`` and ``u*`` only: fitted levels already place themselves against the tails).
* ``-gN``: ``N`` consecutive samples share one scale (omitted when it is the scheme default).
* ``+zstd[L]``: a lossless zstandard stage (level ``L``, default 3) over the packed codes.

Payload layout (all plain numpy arrays, no pickle; every meta value is an int, float, str or
list of ints so it fits a Flower ``ConfigRecord``):

* ``codes``: ``(N, values_per_sample)`` float32/float16/int8/uint8, or for ``b < 8`` bits
  ``(N, ceil(values_per_sample * b / 8))`` uint8 with each sample packed into its own
  byte-aligned row (first code in the most significant bits), so any slice of samples
  decodes without touching the others;
* ``scales`` (and ``offsets`` for ``u*``): float32 ``(num_groups,)`` or ``(num_groups, C)``;
* ``lq*``: ``offsets`` as above (the lowest level) and ``scales`` of shape
  ``(num_groups, [C,] 2**B - 1)``: the steps, all > 0, from each level to the next, so the levels
  ``offset + cumsum(steps)`` never decrease, by construction;
* ``codes_zstd`` replaces ``codes`` when the zstd stage is on: a 1-D uint8 zstd frame
  (with content size and checksum) whose decompressed length is ``meta["zstd_raw_nbytes"]``.

Modules: :mod:`~ecofed_flwr.codec.batch` (:class:`EncodedBatch`, :class:`ArraySpec`, the
errors), :mod:`~ecofed_flwr.codec.base` (:class:`Codec`, the base of every family: layout,
validation, the encode and decode skeleton), one module per family
(:mod:`~ecofed_flwr.codec.fp`: :class:`FloatCodec`; :mod:`~ecofed_flwr.codec.paper`:
:class:`PaperCodec`; :mod:`~ecofed_flwr.codec.uniform`: :class:`UniformCodec`;
:mod:`~ecofed_flwr.codec.levels`: :class:`LevelCodec`; the last three share
:class:`~ecofed_flwr.codec.quantizer.Quantizer`), :mod:`~ecofed_flwr.codec.zstd` (the lossless
stage, :class:`ZstdStage`), :mod:`~ecofed_flwr.codec.packing` (sub-byte codes) and
:mod:`~ecofed_flwr.codec.names` (the grammar: :func:`make_codec`, :func:`list_codecs`).
"""

from __future__ import annotations

from ecofed_flwr.codec.base import Codec
from ecofed_flwr.codec.batch import (
    ArraySpec,
    CodecError,
    EncodedBatch,
    MetaValue,
    PayloadValueError,
)
from ecofed_flwr.codec.fp import FloatCodec
from ecofed_flwr.codec.levels import LevelCodec
from ecofed_flwr.codec.names import list_codecs, make_codec
from ecofed_flwr.codec.paper import PaperCodec
from ecofed_flwr.codec.quantizer import Quantizer
from ecofed_flwr.codec.uniform import UniformCodec
from ecofed_flwr.codec.zstd import MAX_DECOMPRESSED_BYTES, ZstdStage

__all__ = [
    "MAX_DECOMPRESSED_BYTES",
    "ArraySpec",
    "Codec",
    "CodecError",
    "EncodedBatch",
    "FloatCodec",
    "LevelCodec",
    "MetaValue",
    "PaperCodec",
    "PayloadValueError",
    "Quantizer",
    "UniformCodec",
    "ZstdStage",
    "list_codecs",
    "make_codec",
]
