"""The networks are the tutorial's: same layers, counts, shapes, ranges and init."""

import pytest
import torch
from torch import nn

from dcgan.errors import UsageError
from dcgan.model.networks.dcgan import SUPPORTED_SIZES, Discriminator, Generator
from dcgan.model.networks.parts import with_spectral_norm
from dcgan.model.sampling import sampling_mode


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_the_tutorial():
    assert count(Generator(nz=100, ngf=64, channels=3, image_size=64)) == 3_576_704
    assert count(Discriminator(ndf=64, channels=3, image_size=64)) == 2_765_568


def test_layers_at_64_are_the_tutorials():
    g, d = Generator(), Discriminator()
    assert [type(m).__name__ for m in g.main] == ["ConvTranspose2d", "BatchNorm2d", "ReLU"] * 4 + ["ConvTranspose2d", "Tanh"]
    assert [type(m).__name__ for m in d.main] == (
        ["Conv2d", "LeakyReLU"] + ["Conv2d", "BatchNorm2d", "LeakyReLU"] * 3 + ["Conv2d"]
    )
    assert all(m.negative_slope == 0.2 for m in d.main if isinstance(m, nn.LeakyReLU))
    assert not any(m.bias is not None for m in [*g.main, *d.main] if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))


@pytest.mark.parametrize("size", SUPPORTED_SIZES)
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_range_at_every_size(size: int, channels: int):
    g = Generator(nz=16, ngf=4, channels=channels, image_size=size)
    d = Discriminator(ndf=4, channels=channels, image_size=size)
    images = g(torch.randn(5, 16, 1, 1))
    assert images.shape == (5, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert d(images).shape == (5,)


def test_discriminator_returns_logits_not_probabilities():
    d = Discriminator(ndf=8, channels=1, image_size=16)
    with torch.no_grad():
        for m in d.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(50)  # push the outputs far from zero
        logits = d(torch.randn(64, 1, 16, 16))
    assert (logits.abs() > 1).any()  # a Sigmoid would bound them to (0, 1)


@pytest.mark.parametrize("size", [48, 8, 512])
def test_unsupported_size_is_rejected(size: int):
    with pytest.raises(UsageError, match="power of two in \\[16, 256\\]"):
        Generator(image_size=size)


def test_dcgan_init():
    torch.manual_seed(0)
    g, d = Generator(), Discriminator()
    convs = [m.weight for m in [*g.modules(), *d.modules()] if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    norms = [m for m in [*g.modules(), *d.modules()] if isinstance(m, nn.BatchNorm2d)]
    weights = torch.cat([w.flatten() for w in convs])
    assert abs(weights.mean()) < 1e-3 and abs(weights.std() - 0.02) < 1e-3
    gammas = torch.cat([m.weight for m in norms])
    assert abs(gammas.mean() - 1) < 0.01 and abs(gammas.std() - 0.02) < 0.005
    assert all(torch.count_nonzero(m.bias) == 0 for m in norms)


def test_sampling_sampling_leaves_the_generator_as_it_was():
    g = Generator(nz=16, ngf=8, channels=1, image_size=16)
    state = {k: v.clone() for k, v in g.state_dict().items()}
    z = torch.randn(8, 16, 1, 1)
    with torch.no_grad(), sampling_mode(g):
        sampled = g(z)
    assert g.training
    assert all(torch.equal(state[k], v) for k, v in g.state_dict().items())
    with torch.no_grad():  # the same numbers as a training-mode forward (batch statistics)
        assert torch.allclose(sampled, g(z), atol=1e-6)


def test_sampling_runs_no_power_iteration_so_the_same_latent_gives_the_same_image():
    g = with_spectral_norm(Generator(nz=16, ngf=8, channels=1, image_size=16))
    g(torch.randn(8, 16, 1, 1))  # a training forward pass: one power iteration, as in training
    state = {k: v.clone() for k, v in g.state_dict().items()}  # spectral norm's u and v among them
    z = torch.randn(8, 16, 1, 1)
    with torch.no_grad():
        with sampling_mode(g):
            first = g(z)
        with sampling_mode(g):
            second = g(z)
    assert torch.equal(first, second)
    assert all(torch.equal(state[k], v) for k, v in g.state_dict().items())
    assert all(m.training for m in g.modules())  # back in training mode, every layer
