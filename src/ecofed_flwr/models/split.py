"""Split a registered classifier at a named cut into a frozen front and a trainable back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ecofed_flwr.models.registry import ModelSpec, get_model_spec
from ecofed_flwr.models.weights import WeightSource, WeightsUnavailableError, load_weights


class FrozenFront(nn.Module):
    """The device half: always in eval mode, no gradients, no trainable parameters.

    Because BatchNorm uses its running statistics and no parameter ever changes, the output
    for a sample does not depend on the batch it came in or on when it was computed, which is
    what makes replaying stored activations exact.

    Parameters
    ----------
    layers : nn.Module
        The front stages, run in order.
    fingerprint : str
        Hex digest identifying the model, cut, input size and front weights.
    """

    def __init__(self, layers: nn.Module, fingerprint: str) -> None:
        super().__init__()
        self.layers = layers
        self.fingerprint = fingerprint
        for param in self.layers.parameters():
            param.requires_grad_(False)
        # Channels-last lets oneDNN pick its fast convolution kernels on the CPU (about 1.5x
        # for EfficientNet fronts); it changes memory layout only, not the weights.
        self.layers.to(memory_format=torch.channels_last)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenFront:
        # Refuse training mode: BatchNorm/Dropout would make activations batch-dependent.
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            if x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.layers(x).contiguous()


@torch.no_grad()
def run_front(front: nn.Module, images: Tensor, batch_size: int = 500) -> Tensor:
    """Front activations of ``images`` computed in batches (the front is frozen)."""
    outputs = [front(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return torch.cat(outputs) if outputs else torch.zeros(0)


@dataclass
class SplitModel:
    """A classifier cut in two: ``back(front(x))`` equals the whole model's output.

    Attributes
    ----------
    model_name, cut, weights : str
        What was built.
    input_size : int
        Square input size in pixels.
    in_chans : int
        Input channels.
    mean, std : tuple[float, ...]
        Input normalisation.
    front : FrozenFront
        Device half.
    back : nn.Module
        Server half (trainable).
    activation_shape : tuple[int, ...]
        Shape of one sample's activation at the cut.
    """

    model_name: str
    cut: str
    weights: str
    input_size: int
    in_chans: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    front: FrozenFront
    back: nn.Module
    activation_shape: tuple[int, ...]
    num_classes: int

    @property
    def fingerprint(self) -> str:
        """The front's fingerprint."""
        return self.front.fingerprint

    def full(self) -> nn.Module:
        """The whole classifier as one module (front then back), sharing their weights."""
        return nn.Sequential(self.front.layers, self.back)


def list_cuts(model_name: str, num_classes: int = 10) -> list[str]:
    """The named cuts of ``model_name``: each names the last stage kept on the device."""
    spec = get_model_spec(model_name)
    names = [name for name, _ in spec.stages(spec.build(), num_classes)]
    return names[:-1]


def front_fingerprint(model_name: str, cut: str, input_size: int, front: nn.Module) -> str:
    """SHA-256 over the model name, cut, input size and every front tensor (names and bytes)."""
    digest = hashlib.sha256()
    digest.update(f"{model_name}|{cut}|{input_size}".encode())
    for name, tensor in front.state_dict().items():
        array = np.ascontiguousarray(tensor.detach().cpu().numpy())
        digest.update(f"|{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _resolve_weights(spec: ModelSpec, weights: str) -> WeightSource | None:
    if weights == "random":
        return None
    if weights.startswith("file:"):
        return WeightSource(kind="file", path=weights.removeprefix("file:"))
    if weights in spec.weights:
        return spec.weights[weights]
    raise WeightsUnavailableError(
        f"model {spec.name} has no weight source {weights!r}; {_alternatives(spec)}"
    )


def _alternatives(spec: ModelSpec) -> str:
    named = ", ".join(f"'{k}' ({v.description})" for k, v in spec.weights.items())
    return f"weights can be {named + ', ' if named else ''}'random' or 'file:PATH'"


def split_identity(
    model_name: str,
    cut: str | None = None,
    weights: str | None = None,
    input_size: int | None = None,
) -> tuple[str, str, str, int]:
    """What :func:`create_split` builds for these arguments, without building anything.

    Returns
    -------
    tuple[str, str, str, int]
        The registry name, cut, weight source and input size, with the model's defaults
        filled in: the ``model_name``, ``cut``, ``weights`` and ``input_size`` of the
        :class:`SplitModel` (the cut is not checked against the model's stages).
    """
    spec = get_model_spec(model_name)
    return (
        spec.name,
        cut or spec.default_cut,
        weights or spec.default_weights,
        input_size or spec.input_size,
    )


def create_split(
    model_name: str,
    cut: str | None = None,
    weights: str | None = None,
    num_classes: int = 10,
    input_size: int | None = None,
    seed: int = 0,
) -> SplitModel:
    """Build ``model_name``, load its weights and cut it after stage ``cut``.

    Parameters
    ----------
    model_name : str
        A registered name (see :func:`list_models`) or ``timm:<name>``.
    cut : str, optional (default: the model's default cut)
        Name of the last stage kept in the front (see :func:`list_cuts`).
    weights : str, optional (default: the model's default source)
        ``random``, ``file:PATH`` or a source the model's registry entry names.
    num_classes : int (default: 10)
        Output classes; the classifier is replaced when it differs from the weights'.
    input_size : int, optional
        Square input size in pixels (default: the model's).
    seed : int (default: 0)
        Seed for the initialisation of every layer that no weight source fills.

    Returns
    -------
    SplitModel
        The frozen front, the trainable back and their metadata.
    """
    spec = get_model_spec(model_name)
    _, cut, weights, size = split_identity(model_name, cut, weights, input_size)
    source = _resolve_weights(spec, weights)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = spec.build()
        if source is not None:
            load_weights(model, spec.name, source, _alternatives(spec))
        stages = spec.stages(model, num_classes)
    names = [name for name, _ in stages]
    if cut not in names[:-1]:
        raise ValueError(f"model {spec.name} has no cut {cut!r}; cuts: {', '.join(names[:-1])}")
    k = names.index(cut) + 1
    front_layers = nn.Sequential(*[module for _, module in stages[:k]]).eval()
    back = nn.Sequential(*[module for _, module in stages[k:]])
    fingerprint = front_fingerprint(spec.name, cut, size, front_layers)
    front = FrozenFront(front_layers, fingerprint)
    probe = front(torch.zeros(1, spec.in_chans, size, size))
    return SplitModel(
        model_name=spec.name,
        cut=cut,
        weights=weights,
        input_size=size,
        in_chans=spec.in_chans,
        mean=spec.mean,
        std=spec.std,
        front=front,
        back=back,
        activation_shape=tuple(probe.shape[1:]),
        num_classes=num_classes,
    )
