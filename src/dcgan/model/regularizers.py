"""Penalties on D's gradient with respect to its input, added to D's loss: R1 and WGAN-GP.

Each is called in D's update with the plain D, neither DDP-wrapped nor compiled: its own forward
pass feeds a double backward (which torch.compile's graphs do not support), and the gradients it
leaves on D's weights are summed with the adversarial ones before DDP all-reduces them, in the
same backward pass.
"""

import torch
from pytorch_lightning.utilities import rank_zero_warn
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


class Penalties:
    """The penalties a run chose (model.r1_gamma, model.gp_lambda; none: the seed's), as D's update
    adds them, with the latest value of each for the logs (latest: {"train/r1": ..., ...})."""

    def __init__(self, r1_gamma: float = 0.0, r1_interval: int = 1, gp_lambda: float = 0.0):
        self.terms: list[Regularizer] = [*([R1(r1_gamma, r1_interval)] if r1_gamma else []),
                                         *([GradientPenalty(gp_lambda)] if gp_lambda else [])]
        self.options = {key: value for key, value in (("r1_gamma", r1_gamma), ("gp_lambda", gp_lambda)) if value}
        self.latest: dict[str, Tensor] = {}

    def __bool__(self) -> bool:
        return bool(self.terms)

    def __call__(self, discriminator: nn.Module, real: Tensor, fake: Tensor, iteration: int, rng: torch.Generator,
                 scale: Tensor | None = None) -> Tensor | float:
        """The sum of the terms that apply at this iteration (0 when none does)."""
        total: Tensor | float = 0.0
        for term in self.terms:
            if found := term(discriminator, real, fake, iteration, rng, scale):
                total, self.latest[f"train/{term.name}"] = total + found[0], found[1]
        return total

    def warn_of_batchnorm(self, discriminator: nn.Module) -> None:
        """One warning when a penalty meets BatchNorm in D: each image's penalty would then depend on
        the other images of its batch."""
        if self.terms and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules()):
            chosen = " and ".join(f"model.{key}={value}" for key, value in self.options.items())
            rank_zero_warn(f"{chosen} with BatchNorm in D: each image's penalty then depends on the other images of "
                           "its batch, which the penalties' papers never do (WGAN-GP's critic must judge each image "
                           "on its own); set model.d_norm=layer or model.d_norm=none")
