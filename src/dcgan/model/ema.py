"""The exponential moving average of G's weights that DCGAN samples from (model.ema_decay): a
frozen copy of G, pulled toward G after each of G's updates."""

import copy

import torch
from torch import nn


def frozen_copy(generator: nn.Module) -> nn.Module:
    """The average as it starts: G's weights, outside autograd (no optimizer holds them)."""
    return copy.deepcopy(generator).requires_grad_(False)


@torch.no_grad()
def update(average: nn.Module, generator: nn.Module, decay: float, iteration: int) -> None:
    """Pull average's weights toward generator's, in place, and copy its buffers (BatchNorm's
    statistics). iteration: G updates done, which ramp the decay up."""
    # One fused lerp over all weights, on the device (torch's AveragedModel reads a counter back to
    # the host every step). The decay ramps up as in TensorFlow's ExponentialMovingAverage, so
    # that the average does not hold on to the initial weights through a short run.
    decay = min(decay, (1 + iteration) / (10 + iteration))
    torch._foreach_lerp_(list(average.parameters()), list(generator.parameters()), 1 - decay)
    for average_buffer, buffer in zip(average.buffers(), generator.buffers()):
        average_buffer.copy_(buffer)
