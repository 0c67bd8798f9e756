"""Each of G's and D's losses against values computed by hand, with the statistics logged beside them."""

import math

import pytest
import torch

from dcgan.model.losses import LOSSES

LOGITS = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.0, 1.5])  # real, fake


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


@pytest.mark.parametrize(("name", "d_loss", "g_loss"), [
    # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f); G: -log sigmoid(f) = softplus(-f)
    ("ns", sum(softplus(-r) for r in (2, -1, 0.5)) / 3 + sum(softplus(f) for f in (-3, 0, 1.5)) / 3,
     sum(softplus(-f) for f in (-3, 0, 1.5)) / 3),
    ("hinge", (0 + 2 + 0.5) / 3 + (0 + 1 + 2.5) / 3, -(-3 + 0 + 1.5) / 3),
    ("wasserstein", (-3 + 0 + 1.5) / 3 - (2 - 1 + 0.5) / 3, -(-3 + 0 + 1.5) / 3),
    ("least_squares", 0.5 * (1 + 4 + 0.25) / 3 + 0.5 * (9 + 0 + 2.25) / 3, 0.5 * (16 + 1 + 0.25) / 3),
])
def test_each_loss_against_hand_computed_values(name: str, d_loss: float, g_loss: float):
    loss = LOSSES[name]()
    real, fake = LOGITS
    assert float(loss.discriminator(real, fake)) == pytest.approx(d_loss, rel=1e-6)
    assert float(loss.generator(fake)) == pytest.approx(g_loss, rel=1e-6)
    statistics = loss.statistics(real, fake, fake)
    assert float(statistics["d_real"]) == pytest.approx(0.5) and float(statistics["d_fake"]) == pytest.approx(-0.5)
    if name == "ns":  # the tutorial's D(x), D(G(z)) as probabilities
        assert float(statistics["d_x"]) == pytest.approx(float(torch.sigmoid(real).mean()))
