"""Per-cut cost profile of a splittable model: upload size, device compute, parameter split.

For every cut of a registered model, :func:`profile_cuts` reports what one sample costs the
device (front parameters and FLOPs) and the uplink (activation bytes at 32, 8, 4 and 2 bits,
compared with sending the raw uint8 image instead), which is what choosing a cut trades off.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ecofed_flwr.codec import make_codec
from ecofed_flwr.models import create_split, list_cuts

__all__ = ["PROFILE_CODECS", "CutProfile", "profile_cuts"]

#: Nominal bit width (the key of :attr:`CutProfile.bytes_per_sample`) -> codec that sends it.
PROFILE_CODECS: dict[str, str] = {"32": "fp32", "8": "u8", "4": "u4", "2": "u2"}


@dataclass(frozen=True)
class CutProfile:
    """Costs of one sample when the model is cut after stage ``cut``.

    Attributes
    ----------
    cut : str
        Name of the last stage kept on the device.
    activation_shape : list[int]
        Shape of one sample's activation at the cut.
    values_per_sample : int
        Number of activation values per sample (product of ``activation_shape``).
    bytes_per_sample : dict[str, int]
        Payload bytes of one sample's activation, keyed by bit width: ``"32"`` (fp32 codec),
        ``"8"`` (u8), ``"4"`` (u4) and ``"2"`` (u2), i.e. ``ceil(values * bits / 8)``. The
        quantizers' group scales and offsets (a few bytes per uploaded batch) are not
        included.
    raw_input_bytes : int
        Bytes of one raw uint8 input image: ``in_chans * input_size * input_size``.
    front_params : int
        Parameters (not buffers) of the device half.
    front_flops : int
        FLOPs of one single-sample forward pass of the device half, as counted by
        :class:`torch.utils.flop_counter.FlopCounterMode` (a multiply-add is 2 FLOPs;
        normalisation, activations, pooling and bias additions are not counted).
    back_params : int
        Parameters of the server half, with the classifier sized for ``num_classes``.
    activation_to_input_ratio : float
        ``bytes_per_sample["8"] / raw_input_bytes``: below 1 the 8-bit activation is smaller
        than the raw image.
    """

    cut: str
    activation_shape: list[int]
    values_per_sample: int
    bytes_per_sample: dict[str, int]
    raw_input_bytes: int
    front_params: int
    front_flops: int
    back_params: int
    activation_to_input_ratio: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy (lists and dicts are copied, not shared)."""
        return asdict(self)


def _payload_bytes_per_sample(codec_name: str, sample_shape: tuple[int, ...]) -> int:
    # The u* codecs put a whole batch in one scale group by default, so the scale/offset bytes
    # are the same for one and two samples and the difference is exactly one sample's codes.
    codec = make_codec(codec_name)
    return codec.encoded_nbytes(2, sample_shape) - codec.encoded_nbytes(1, sample_shape)


def _num_params(modules: Iterable[nn.Module]) -> int:
    # Deduplicate by identity so a parameter shared by two stages is counted once.
    seen: dict[int, int] = {}
    for module in modules:
        for param in module.parameters():
            seen[id(param)] = param.numel()
    return sum(seen.values())


def profile_cuts(
    model_name: str,
    input_size: int | None = None,
    weights: str | None = None,
    num_classes: int = 10,
) -> list[CutProfile]:
    """Profile every cut of ``model_name`` for one sample.

    The model is built and its weights loaded once (split at its last cut); the front of each
    earlier cut is a prefix of that front's stages, so its parameters and FLOPs are summed
    stage by stage from a single forward pass.

    Parameters
    ----------
    model_name : str
        A registered name (see :func:`ecofed_flwr.models.list_models`) or ``timm:<name>``.
    input_size : int, optional
        Square input size in pixels (default: the model's).
    weights : str, optional
        Weight source (default: the model's); see :func:`ecofed_flwr.models.create_split`.
        Sizes and FLOPs do not depend on the weights, but an unavailable source still fails.
    num_classes : int (default: 10)
        Output classes, which set the size of the back's classifier.

    Returns
    -------
    list[CutProfile]
        One entry per cut, in forward order.

    Raises
    ------
    KeyError
        Unknown model name.
    ecofed_flwr.models.WeightsUnavailableError
        The weight source cannot be had here.

    Notes
    -----
    ``bytes_per_sample`` counts only the packed codes of one sample; the group scales (and
    offsets) that the quantizing codecs add, a few bytes per uploaded batch, are not included.
    """
    # Cut names only need the module structure; on the meta device nothing is initialised,
    # which avoids a second full build (seconds for the large torchvision models).
    try:
        with torch.device("meta"):
            cuts = list_cuts(model_name, num_classes)
    except Exception:
        # Some third-party models cannot be built on the meta device; the real build then
        # either works or raises the error the user should see.
        cuts = list_cuts(model_name, num_classes)
    split = create_split(
        model_name, cut=cuts[-1], weights=weights, num_classes=num_classes, input_size=input_size
    )
    stages = list(split.front.layers.children())
    if len(stages) != len(cuts):
        raise RuntimeError(f"model {model_name}: {len(stages)} front stages for {len(cuts)} cuts")
    raw_input_bytes = split.in_chans * split.input_size * split.input_size

    profiles: list[CutProfile] = []
    x = torch.zeros(1, split.in_chans, split.input_size, split.input_size)
    front_flops = 0
    with torch.no_grad():
        for k, (cut, stage) in enumerate(zip(cuts, stages, strict=True)):
            with FlopCounterMode(display=False) as counter:
                x = stage(x)
            front_flops += counter.get_total_flops()
            shape = tuple(int(d) for d in x.shape[1:])
            nbytes = {
                bits: _payload_bytes_per_sample(c, shape) for bits, c in PROFILE_CODECS.items()
            }
            profiles.append(
                CutProfile(
                    cut=cut,
                    activation_shape=list(shape),
                    values_per_sample=math.prod(shape),
                    bytes_per_sample=nbytes,
                    raw_input_bytes=raw_input_bytes,
                    front_params=_num_params(stages[: k + 1]),
                    front_flops=int(front_flops),
                    back_params=_num_params([*stages[k + 1 :], split.back]),
                    activation_to_input_ratio=nbytes["8"] / raw_input_bytes,
                )
            )
    return profiles
