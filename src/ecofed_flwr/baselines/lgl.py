"""Local-loss DNN-partitioning FL (Han et al., 2021): the front learns from an auxiliary head.

Han, Lee, Lee, Lee, Yun, Moon, "Accelerating Federated Learning with Split Learning on
Locally Generated Losses" (ICML 2021 FL workshop). No gradient travels down: the device
trains its front with a small classifier head on a local loss and streams the activations
up; the server trains the back on them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ecofed_flwr.baselines.split_learning import FRONT_KEY, Session, SplitLearning
from ecofed_flwr.baselines.training import channels_last
from ecofed_flwr.models import SplitModel

HEAD_KEY = "head"


def auxiliary_head(activation_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The device's local classifier: global average pooling and one linear layer.

    Kept minimal on purpose (``C * num_classes + num_classes`` parameters for a ``C``-channel
    cut) so that the device's extra compute and the extra weights exchanged stay small.
    """
    if len(activation_shape) == 3:
        return nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(activation_shape[0], num_classes)
        )
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(activation_shape), num_classes))


class LocalLossDPFL(SplitLearning):
    """Local-loss split learning: front + auxiliary head on the device, back on the server.

    Per local step the device trains front and head on the cross-entropy of the head's
    output and uploads the fp32 activations (computed before that update) with the labels;
    the server trains its copy of the back on them. Nothing but the round's weights goes
    down. Fronts, heads and back copies are averaged every round.
    """

    name = "lgl"

    def extra_device_modules(self, split: SplitModel) -> dict[str, nn.Module]:
        # The head's initial weights depend on the run's seed only.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.training.seed)
            return {HEAD_KEY: auxiliary_head(split.activation_shape, split.num_classes)}

    def step(self, session: Session, server_round: int, x: Tensor, y: Tensor) -> None:
        front, head = session.device[FRONT_KEY], session.device[HEAD_KEY]
        with session.device_compute():
            activations = front(channels_last(x))
            local_loss = F.cross_entropy(head(activations), y)
            session.device_optimizer.zero_grad(set_to_none=True)
            local_loss.backward()
            session.device_optimizer.step()
        received = self.upload(session, server_round, activations.detach(), y)
        self.server_step(session, received, y)
