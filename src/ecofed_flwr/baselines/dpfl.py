"""Vanilla DNN-partitioning FL (SplitFed v1): activations up, their gradient down, every step."""

from __future__ import annotations

import torch
from torch import Tensor

from ecofed_flwr.baselines.split_learning import FRONT_KEY, Session, SplitLearning
from ecofed_flwr.baselines.training import channels_last


class VanillaDPFL(SplitLearning):
    """SplitFed v1: the front trains on the device through the server's gradient.

    Per local step the device uploads the fp32 activations of its batch with the labels;
    the server trains its copy of the back on them and sends down the fp32 gradient of the
    loss with respect to those activations; the device back-propagates it through the
    front. Fronts and back copies are averaged every round (see :class:`SplitLearning`).
    """

    name = "dpfl"
    server_blocks_device = True  # the device needs the gradient to finish its step

    def step(self, session: Session, server_round: int, x: Tensor, y: Tensor) -> None:
        front = session.device[FRONT_KEY]
        with session.device_compute():
            activations = front(channels_last(x))
        received = self.upload(session, server_round, activations, y)
        gradient = self.server_step(session, received, y)
        received_gradient = self.send_gradient(session, server_round, gradient)
        with session.device_compute():
            # In the activations' own memory format (channels-last): the wire carries values,
            # not strides, and a gradient in another layout makes the front's backward pick
            # other kernels, whose rounding would set dpfl's run apart from fl's.
            own_layout = torch.empty_like(activations).copy_(received_gradient.view_as(activations))
            session.device_optimizer.zero_grad(set_to_none=True)
            activations.backward(own_layout)
            session.device_optimizer.step()
