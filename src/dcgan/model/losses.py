"""Adversarial losses on D's logits: each one's D part and G part, and what to log about D.

model.loss names one of LOSSES. The seed's is "ns": BCE-with-logits, which is the tutorial's
BCE(Sigmoid(.)) without its overflow.
"""

import torch
import torch.nn.functional as F
from torch import Tensor


class GANLoss:
    """D's loss on real and fake logits, G's on the logits of its images, each a mean over the
    batch; statistics: what D made of the batches (logged as train/<name>)."""

    def discriminator(self, real: Tensor, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def generator(self, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def statistics(self, real: Tensor, fake: Tensor, generated: Tensor) -> dict[str, Tensor]:
        """D's mean raw output on the real and the fake batch of its update."""
        return {"d_real": real.mean(), "d_fake": fake.mean()}


class NonSaturating(GANLoss):
    """The seed's (Goodfellow et al. 2014): D maximises log D(x) + log(1 - D(G(z))), G maximises
    log D(G(z)) (fake images labelled real)."""

    def discriminator(self, real: Tensor, fake: Tensor) -> Tensor:
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))  # summed, as in the seed

    def generator(self, fake: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))

    def statistics(self, real: Tensor, fake: Tensor, generated: Tensor) -> dict[str, Tensor]:
        """Also the tutorial's D(x), D(G(z)) before and after D's update, as probabilities."""
        return {**super().statistics(real, fake, generated), "d_x": torch.sigmoid(real).mean(),
                "d_g_z1": torch.sigmoid(fake).mean(), "d_g_z2": torch.sigmoid(generated).mean()}


class Hinge(GANLoss):
    """Lim & Ye 2017, as in SNGAN (Miyato et al. 2018): D pushes real logits above 1 and fake
    ones below -1; G raises its logits."""

    def discriminator(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def generator(self, fake: Tensor) -> Tensor:
        return -fake.mean()


class Wasserstein(GANLoss):
    """Arjovsky et al. 2017: D (the critic) estimates E[D(x)] - E[D(G(z))]; it needs a Lipschitz
    constraint, e.g. model.gp_lambda (WGAN-GP) or spectral norm."""

    def discriminator(self, real: Tensor, fake: Tensor) -> Tensor:
        return fake.mean() - real.mean()

    def generator(self, fake: Tensor) -> Tensor:
        return -fake.mean()


class LeastSquares(GANLoss):
    """Mao et al. 2017 with the 0-1 coding (a=0, b=1, c=1): squared distances of the logits to
    1 (real) and 0 (fake), halved as in the paper."""

    def discriminator(self, real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * (real - 1).square().mean() + 0.5 * fake.square().mean()

    def generator(self, fake: Tensor) -> Tensor:
        return 0.5 * (fake - 1).square().mean()


LOSSES: dict[str, type[GANLoss]] = {
    "ns": NonSaturating,
    "hinge": Hinge,
    "wasserstein": Wasserstein,
    "least_squares": LeastSquares,
}
