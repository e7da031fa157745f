"""The paper's 32x32 networks: VGG-11 with BatchNorm (CIFAR variant) and ResNet-9.

Both are written as an ordered list of named stages so that any stage boundary is a cut.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

# Conv widths of VGG-11; "M" is a 2x2 max-pool that closes the block before it.
VGG11_LAYOUT: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512)


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class VGG11Cifar(nn.Sequential):
    """VGG-11-BN for 32x32 inputs as in EcoFed's public code.

    Eight conv blocks (64-M-128-M-256-256-M-512-512-M-512-512), then fully connected layers
    2048-4096-4096-``num_classes``: 34.4 M parameters for 10 classes. Each conv block (with its
    max-pool, if any) is one named child: ``block1`` ... ``block8``, then ``fc1``, ``fc2``,
    ``classifier``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        channels = in_channels
        block: list[nn.Module] = []
        for item in VGG11_LAYOUT:
            if item == "M":
                block.append(nn.MaxPool2d(2))
                continue
            if block:
                stages[f"block{len(stages) + 1}"] = nn.Sequential(*block)
            assert isinstance(item, int)
            block = _conv_bn_relu(channels, item)
            channels = item
        stages[f"block{len(stages) + 1}"] = nn.Sequential(*block)
        stages["fc1"] = nn.Sequential(nn.Flatten(), nn.Linear(512 * 2 * 2, 4096), nn.ReLU(True))
        stages["fc2"] = nn.Sequential(nn.Linear(4096, 4096), nn.ReLU(True))
        stages["classifier"] = nn.Linear(4096, num_classes)
        super().__init__(stages)


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn_relu(channels, channels), *_conv_bn_relu(channels, channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResNet9Cifar(nn.Sequential):
    """ResNet-9 for 32x32 inputs (the DAWNBench network the paper also uses).

    Named children: ``prep``, ``layer1`` (128, pool, residual), ``layer2`` (256, pool),
    ``layer3`` (512, pool, residual), ``classifier`` (global max-pool, linear).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__(
            OrderedDict(
                {
                    "prep": nn.Sequential(*_conv_bn_relu(in_channels, 64)),
                    "layer1": nn.Sequential(
                        *_conv_bn_relu(64, 128), nn.MaxPool2d(2), _Residual(128)
                    ),
                    "layer2": nn.Sequential(*_conv_bn_relu(128, 256), nn.MaxPool2d(2)),
                    "layer3": nn.Sequential(
                        *_conv_bn_relu(256, 512), nn.MaxPool2d(2), _Residual(512)
                    ),
                    "classifier": nn.Sequential(
                        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)
                    ),
                }
            )
        )


class TinyCNN(nn.Sequential):
    """A small CNN for tests and quick demonstrations (about 30 K parameters at 10 classes).

    Named children: ``block1`` (16 channels, pool), ``block2`` (32 channels, pool),
    ``block3`` (32 channels, global average pool), ``classifier``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__(
            OrderedDict(
                {
                    "block1": nn.Sequential(*_conv_bn_relu(in_channels, 16), nn.MaxPool2d(2)),
                    "block2": nn.Sequential(*_conv_bn_relu(16, 32), nn.MaxPool2d(2)),
                    "block3": nn.Sequential(
                        *_conv_bn_relu(32, 32), nn.AdaptiveAvgPool2d(1), nn.Flatten()
                    ),
                    "classifier": nn.Linear(32, num_classes),
                }
            )
        )
