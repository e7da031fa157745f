"""Turn whole classifiers into ordered lists of named stages (the possible cuts).

A stage list is the model's forward pass written as a sequence: running the stages one after
another gives the same output as the model. Every boundary between two stages is a cut.
Each function here also replaces the classification layer when ``num_classes`` differs from
the model's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

Stages = list[tuple[str, nn.Module]]
StageFn = Callable[[nn.Module, int], Stages]


def _linear_for(layer: nn.Module, num_classes: int) -> nn.Module:
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"expected the classifier to be nn.Linear, got {type(layer).__name__}")
    if layer.out_features == num_classes:
        return layer
    return nn.Linear(layer.in_features, num_classes)


def _get(model: nn.Module, name: str) -> nn.Module:
    """Child module ``name`` of ``model`` (typed access; errors name the missing part)."""
    child = getattr(model, name, None)
    if not isinstance(child, nn.Module):
        raise TypeError(f"{type(model).__name__} has no submodule {name!r}")
    return child


def sequential_stages(model: nn.Module, num_classes: int) -> Stages:
    """Stages of an ``nn.Sequential`` whose last child is the classifier (our CIFAR models)."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"expected nn.Sequential, got {type(model).__name__}")
    stages: Stages = list(model.named_children())
    last_name, last = stages[-1]
    if isinstance(last, nn.Sequential):
        last[-1] = _linear_for(last[-1], num_classes)
    else:
        stages[-1] = (last_name, _linear_for(last, num_classes))
    return stages


def torchvision_resnet_stages(model: nn.Module, num_classes: int) -> Stages:
    """``stem``, ``layer1`` ... ``layer4``, ``head`` for torchvision ResNets."""
    m: nn.Module = model
    return [
        (
            "stem",
            nn.Sequential(_get(m, "conv1"), _get(m, "bn1"), _get(m, "relu"), _get(m, "maxpool")),
        ),
        ("layer1", _get(m, "layer1")),
        ("layer2", _get(m, "layer2")),
        ("layer3", _get(m, "layer3")),
        ("layer4", _get(m, "layer4")),
        (
            "head",
            nn.Sequential(
                _get(m, "avgpool"), nn.Flatten(), _linear_for(_get(m, "fc"), num_classes)
            ),
        ),
    ]


def torchvision_mobilenet_v2_stages(model: nn.Module, num_classes: int) -> Stages:
    """``stem``, ``block1`` ... ``block17`` (inverted residuals), ``head`` for MobileNetV2."""
    features = list(_get(model, "features").children())
    classifier = list(_get(model, "classifier").children())
    stages: Stages = [("stem", features[0])]
    stages += [(f"block{i}", features[i]) for i in range(1, len(features) - 1)]
    head = nn.Sequential(
        features[-1],
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        *classifier[:-1],
        _linear_for(classifier[-1], num_classes),
    )
    stages.append(("head", head))
    return stages


def torchvision_vgg_stages(model: nn.Module, num_classes: int) -> Stages:
    """``block1`` ... ``blockN`` (a conv block with its max-pool, if any), ``head`` for VGG."""
    stages: Stages = []
    block: list[nn.Module] = []
    for layer in _get(model, "features").children():
        if isinstance(layer, nn.Conv2d) and any(isinstance(b, nn.Conv2d) for b in block):
            stages.append((f"block{len(stages) + 1}", nn.Sequential(*block)))
            block = []
        block.append(layer)
    stages.append((f"block{len(stages) + 1}", nn.Sequential(*block)))
    classifier = list(_get(model, "classifier").children())
    head = nn.Sequential(
        _get(model, "avgpool"),
        nn.Flatten(),
        *classifier[:-1],
        _linear_for(classifier[-1], num_classes),
    )
    stages.append(("head", head))
    return stages


def timm_stages(model: nn.Module, num_classes: int) -> Stages:
    """Stages of timm classifiers, cut between their block stages.

    Supported families: EfficientNet-style (``conv_stem``, ``blocks``, ``conv_head``; this
    includes ``tf_efficientnet_lite*``, ``efficientnet_b*`` and ``mobilenetv2_*``), ResNet-style
    (``conv1``, ``layer1`` ... ``layer4``) and ``stem`` + ``stages`` models (ConvNeXt, RegNet,
    ...). Cut ``stageK`` keeps the first K block stages on the device.
    """
    m: Any = model  # timm models: get_classifier/reset_classifier are not on nn.Module
    if m.get_classifier() is not None and num_classes != m.num_classes:
        m.reset_classifier(num_classes)
    drop = nn.Dropout(float(getattr(m, "drop_rate", 0.0)))
    if hasattr(m, "conv_stem") and hasattr(m, "blocks") and hasattr(m, "conv_head"):
        if hasattr(m, "norm_head"):
            raise NotImplementedError(
                f"{type(m).__name__} applies its head after pooling; only EfficientNet-style "
                "heads are supported in this family"
            )
        stem: nn.Module = nn.Sequential(_get(m, "conv_stem"), _get(m, "bn1"))
        blocks = list(_get(m, "blocks").children())
        head = nn.Sequential(
            _get(m, "conv_head"),
            _get(m, "bn2"),
            _get(m, "global_pool"),
            drop,
            _get(m, "classifier"),
        )
    elif hasattr(m, "conv1") and hasattr(m, "layer4"):
        stem = nn.Sequential(_get(m, "conv1"), _get(m, "bn1"), _get(m, "act1"), _get(m, "maxpool"))
        blocks = [_get(m, "layer1"), _get(m, "layer2"), _get(m, "layer3"), _get(m, "layer4")]
        head = nn.Sequential(_get(m, "global_pool"), drop, _get(m, "fc"))
    elif hasattr(m, "stem") and hasattr(m, "stages") and hasattr(m, "head"):
        stem = _get(m, "stem")
        blocks = list(_get(m, "stages").children())
        norm_pre = getattr(m, "norm_pre", nn.Identity())
        head = nn.Sequential(norm_pre, _get(m, "head"))
    else:
        raise NotImplementedError(
            f"timm model {type(m).__name__} has no supported stage layout "
            "(EfficientNet-, ResNet- or stem/stages-style)"
        )
    stages: Stages = [("stem", stem)]
    stages += [(f"stage{i + 1}", block) for i, block in enumerate(blocks)]
    stages.append(("head", head))
    return stages
