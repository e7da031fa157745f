"""Codec names: ``BASE[-ch][-clipP][-gN][+zstd[L]]`` to a codec of the base's family."""

from __future__ import annotations

import re

from ecofed_flwr.codec.base import Codec
from ecofed_flwr.codec.batch import CodecError, is_int
from ecofed_flwr.codec.fp import FloatCodec
from ecofed_flwr.codec.levels import LevelCodec
from ecofed_flwr.codec.paper import PaperCodec
from ecofed_flwr.codec.uniform import UniformCodec
from ecofed_flwr.codec.zstd import DEFAULT_ZSTD_LEVEL

__all__ = ["FAMILIES", "list_codecs", "make_codec"]

#: The codec families, in :func:`list_codecs` order.
FAMILIES: tuple[type[Codec], ...] = (FloatCodec, PaperCodec, UniformCodec, LevelCodec)
_FAMILY_OF: dict[str, type[Codec]] = {s: family for family in FAMILIES for s in family.SCHEMES}
_BASES: tuple[str, ...] = tuple(_FAMILY_OF)

_GRAMMAR = (
    "expected BASE[-ch][-clipP][-gN][+zstd[L]] with BASE one of "
    + ", ".join(_BASES)
    + " (-ch and -g only for quantizing schemes, -clip only for paper and u*), 50 < P < 100,"
    " N >= 1, 1 <= L <= 22; e.g. 'paper', 'u4', 'u4-ch', 'lq2-ch+zstd', 'u2-ch-clip99.9+zstd',"
    " 'u4-g100', 'fp16'"
)

_TOKEN_CLIP = re.compile(r"clip(\d+(?:\.\d+)?)")
_TOKEN_GROUP = re.compile(r"g(\d+)")
_TOKEN_ZSTD = re.compile(r"zstd(\d*)")


def make_codec(name: str, group_size: int | None = None) -> Codec:
    """Build a codec from its name.

    Parameters
    ----------
    name
        ``BASE[-ch][-clipP][-gN][+zstd[L]]`` (dash options in any order, each at most once);
        see :mod:`ecofed_flwr.codec`.
    group_size
        Samples per scale group; overrides the scheme default. If the name also has ``-gN`` the
        two must agree.

    Returns
    -------
    Codec
        An instance of the base's family (:data:`FAMILIES`). Its ``name`` is canonical:
        ``make_codec(c.name) == c``.

    Raises
    ------
    CodecError
        On an invalid name, naming the valid forms.
    """
    if not isinstance(name, str):
        raise CodecError(f"codec name: {_GRAMMAR}; got {name!r}")
    main, plus, lossless = name.partition("+")
    zstd_level: int | None = None
    if plus:
        m = _TOKEN_ZSTD.fullmatch(lossless)
        if m is None:
            raise CodecError(f"codec name {name!r}: {_GRAMMAR}")
        zstd_level = int(m.group(1)) if m.group(1) else DEFAULT_ZSTD_LEVEL
    base, *options = main.split("-")
    per_channel, clip, g = False, None, None
    seen: set[str] = set()
    for opt in options:
        kind = "ch" if opt == "ch" else opt[:4] if opt.startswith("clip") else opt[:1]
        if kind in seen:
            raise CodecError(f"codec name {name!r}: option repeated; {_GRAMMAR}")
        seen.add(kind)
        if opt == "ch":
            per_channel = True
        elif (mc := _TOKEN_CLIP.fullmatch(opt)) is not None:
            clip = float(mc.group(1))
        elif (mg := _TOKEN_GROUP.fullmatch(opt)) is not None:
            g = int(mg.group(1))
        else:
            raise CodecError(f"codec name {name!r}: unknown option {opt!r}; {_GRAMMAR}")
    if group_size is not None:
        if not is_int(group_size) or group_size < 1:
            raise CodecError(f"group_size: expected an int >= 1, got {group_size!r}")
        if g is not None and g != group_size:
            raise CodecError(f"codec name {name!r} says -g{g} but group_size={group_size}")
        g = int(group_size)
    family = _FAMILY_OF.get(base)
    if family is None:
        raise CodecError(f"codec name {name!r}: unknown base {base!r}; {_GRAMMAR}")
    try:
        return family(base, per_channel, clip, g, zstd_level)
    except CodecError as exc:
        raise CodecError(f"codec name {name!r}: {exc}; {_GRAMMAR}") from exc


def list_codecs() -> list[str]:
    """Canonical base names: ``fp32``, ``fp16``, ``paper``, ``u8``..``u1``, ``lq4``..``lq1``."""
    return list(_BASES)
