"""Penalties on D's gradient with respect to its input, added to D's loss: R1 and WGAN-GP.

Each is called in D's update with the plain D, neither DDP-wrapped nor compiled: its own forward
pass feeds a double backward (which torch.compile's graphs do not support), and the gradients it
leaves on D's weights are summed with the adversarial ones before DDP all-reduces them, in the
same backward pass.
"""

import torch
from torch import Tensor, nn


def input_gradients(outputs: Tensor, inputs: Tensor, scale: Tensor | None = None) -> Tensor:
    """d sum(outputs) / d inputs, kept differentiable. Under 16-mixed, pass the grad scaler's
    scale: the gradients are then taken of the scaled batch mean, as the scaler's own backward
    would (in float16 they would underflow unscaled, and overflow scaled but summed), and
    rescaled, so that the penalty reaches the scaler's backward unscaled and is scaled once."""
    weight = 1.0 if scale is None else scale / outputs.shape[0]
    gradients = torch.autograd.grad(outputs.float().sum() * weight, inputs, create_graph=True)[0]
    return gradients / weight


class Regularizer:
    """A term of D's loss. __call__ returns (the weighted term, the penalty to log as
    train/<name>), or None on iterations where it does not apply."""

    name: str

    def __call__(self, discriminator: nn.Module, real: Tensor, fake: Tensor, iteration: int,
                 rng: torch.Generator, scale: Tensor | None = None) -> tuple[Tensor, Tensor] | None:
        raise NotImplementedError


class R1(Regularizer):
    """Mescheder et al. 2018: gamma / 2 * E[|grad_x D(x)|^2] on real images. Lazy (StyleGAN2,
    Karras et al. 2020): only every `interval` iterations, with its weight times the interval."""

    name = "r1"

    def __init__(self, gamma: float, interval: int = 1):
        self.gamma = gamma
        self.interval = interval

    def __call__(self, discriminator, real, fake, iteration, rng, scale=None):
        if iteration % self.interval:
            return None
        real = real.detach().requires_grad_(True)
        gradients = input_gradients(discriminator(real), real, scale).float()  # (B, C, S, S)
        penalty = gradients.square().sum(dim=(1, 2, 3)).mean()
        return self.gamma / 2 * self.interval * penalty, penalty.detach()


class GradientPenalty(Regularizer):
    """Gulrajani et al. 2017 (WGAN-GP): weight * E[(|grad D(x^)| - 1)^2] at x^, a point drawn
    uniformly on the line between each real image and a fake one."""

    name = "gp"

    def __init__(self, weight: float):
        self.weight = weight

    def __call__(self, discriminator, real, fake, iteration, rng, scale=None):
        t = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=rng)  # (B, 1, 1, 1)
        fake = fake.detach().to(real.dtype)  # under autocast G's images may be bfloat16
        between = (fake + t * (real.detach() - fake)).requires_grad_(True)
        gradients = input_gradients(discriminator(between), between, scale).float()
        penalty = (gradients.flatten(1).norm(dim=1) - 1).square().mean()
        return self.weight * penalty, penalty.detach()
