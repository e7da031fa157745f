"""The node handshake: the server asks each new node once who it is and which front it runs.

Message type ``query.ecofed_info``. The request's ConfigRecord ``config`` describes the
server's front (:func:`describe_front`); the device replies with a ConfigRecord ``info``
holding its ``partition-id`` (``-1`` when its node config has none) and the description of
its own front. The server keys a node by its partition id (stable across runs, unlike
Flower's node ids), so sampling and data assignment are reproducible from the seed, and it
stops asking a node whose front differs, naming what differs.

A device may answer without building its front: its description then comes from its
settings and its fingerprint is empty (not known yet). The server admits it when the
described fields agree; the fingerprint is checked at its first upload (the request carries
the server's, and the server refuses activations of another).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "FINGERPRINT_KEY",
    "INFO_ACTION",
    "INFO_KEY",
    "INFO_MESSAGE_TYPE",
    "NUM_PARTITIONS_KEY",
    "PARTITION_KEY",
    "describe_front",
    "describe_split",
    "front_differences",
]

#: The key of the front's fingerprint, in the handshake and in every upload's ``meta``.
FINGERPRINT_KEY = "ecofed-fingerprint"
INFO_ACTION = "ecofed_info"
INFO_MESSAGE_TYPE = f"query.{INFO_ACTION}"
INFO_KEY = "info"
PARTITION_KEY = "partition-id"
NUM_PARTITIONS_KEY = "num-partitions"

#: What a front description holds besides the fingerprint, in the order errors name them.
DESCRIPTION_KEYS = ("model", "cut", "weights", "input-size")


def describe_front(
    fingerprint: str,
    model: str = "",
    cut: str = "",
    weights: str = "",
    input_size: int = 0,
) -> dict[str, str | int]:
    """The description of a front that crosses the wire (empty fields are unknown)."""
    return {
        FINGERPRINT_KEY: fingerprint,
        "model": model,
        "cut": cut,
        "weights": weights,
        "input-size": int(input_size),
    }


def describe_split(split: Any) -> dict[str, str | int]:
    """:func:`describe_front` of a :class:`~ecofed_flwr.models.SplitModel`."""
    return describe_front(
        split.fingerprint, split.model_name, split.cut, split.weights, split.input_size
    )


def front_differences(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two front descriptions (empty when they match).

    Fields either side leaves empty are not compared, the fingerprint included (a device
    that has not built its front yet sends none); when every described field agrees but
    both fingerprints are given and differ, the weights' values differ.
    """
    diffs = []
    for key in DESCRIPTION_KEYS:
        want, got = expected.get(key), actual.get(key)
        if want in ("", 0, None) or got in ("", 0, None):
            continue
        if want != got:
            diffs.append(f"{key}: server {want!r}, device {got!r}")
    want_fp, got_fp = expected.get(FINGERPRINT_KEY), actual.get(FINGERPRINT_KEY)
    if want_fp in ("", None) or got_fp in ("", None):
        return diffs
    if want_fp != got_fp and not diffs:
        diffs.append(
            f"fingerprint: server {str(want_fp)[:16]}..., device {str(got_fp)[:16]}"
            "... (same model, cut and input size: the front's weights differ)"
        )
    return diffs
