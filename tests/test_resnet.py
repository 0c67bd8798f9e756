"""The ResNet networks are SN-GAN's, as Mimicry builds them: same counts, shapes and contract."""

from functools import cache

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn

from conftest import compose_config
from dcgan.errors import UsageError
from dcgan.model.networks.parts import check_contract, with_spectral_norm
from dcgan.model.networks.resnet import SUPPORTED_SIZES, DBlock, Discriminator, Generator

# Parameters of Mimicry's networks at their defaults (nz=128, 3 channels), counted by instantiating
# them from github.com/kwotsin/mimicry at a7fda06c4aff1e6af8dc4c4a35ed6636e434c766:
# SNGANGenerator{size}, SNGANDiscriminator{size} (spectral norm adds buffers, not parameters).
MIMICRY = {
    32: (4_276_739, 1_053_825),
    48: (4_878_083, 10_141_441),
    64: (12_220_675, 10_141_441),
    128: (32_150_787, 29_017_857),
}
MIMICRY_CGAN_PD_32 = (4_304_387, 1_055_105)  # CGANPDGenerator32, CGANPDDiscriminator32, num_classes=10


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@cache
def reference_networks(size: int, num_classes: int = 0) -> tuple[Generator, Discriminator]:
    """The paper-width networks, built once: the largest hold 61M parameters."""
    torch.manual_seed(0)
    return Generator(image_size=size, num_classes=num_classes), Discriminator(image_size=size, num_classes=num_classes)


@pytest.mark.parametrize("size", SUPPORTED_SIZES)
def test_parameter_counts_match_mimicry(size: int):
    g, d = reference_networks(size)
    assert (count(g), count(d)) == MIMICRY[size]


def test_conditional_parameter_counts_match_mimicrys_cgan_pd():
    g, d = reference_networks(32, num_classes=10)
    assert (count(g), count(d)) == MIMICRY_CGAN_PD_32


@pytest.mark.parametrize("size", SUPPORTED_SIZES)
def test_reference_networks_keep_the_contract(size: int):
    check_contract(*reference_networks(size), nz=128, channels=3, image_size=size)


def test_conditional_networks_keep_the_contract():
    check_contract(*reference_networks(32, num_classes=10), nz=128, channels=3, image_size=32, num_classes=10)


@pytest.mark.parametrize("size", SUPPORTED_SIZES)
def test_shapes_and_range_with_any_channels_and_width(size: int):
    g = Generator(nz=8, ngf=16, channels=1, image_size=size)  # 16: the narrowest every size allows
    d = Discriminator(ndf=16, channels=1, image_size=size)
    images = g(torch.randn(2, 8, 1, 1))
    assert images.shape == (2, 1, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert d(images).shape == (2,)


def test_widths_and_blocks_follow_the_reference():
    g, d = reference_networks(32)
    assert [b.c1.out_channels for b in g.blocks] == [256] * 3  # three up-blocks at ngf from 4x4
    assert [type(b).__name__ for b in d.blocks] == ["OptimizedDBlock", "DBlock", "DBlock", "DBlock"]
    assert [b.downsample for b in d.blocks[1:]] == [True, False, False]
    assert [type(b.shortcut).__name__ for b in d.blocks[1:]] == ["Conv2d", "Identity", "Identity"]
    g, d = reference_networks(128)
    assert [b.c1.out_channels for b in g.blocks] == [1024, 512, 256, 128, 64]
    assert [b.c2.out_channels for b in d.blocks] == [64, 128, 256, 512, 1024, 1024]  # one more block than at 64


def test_d_shortcut_sees_the_rectified_input_as_in_mimicry():
    block = DBlock(8, 8, downsample=False)  # Mimicry's in-place ReLU rectifies x for the shortcut too
    x = torch.randn(2, 8, 4, 4)
    with torch.no_grad():
        assert torch.allclose(block(x), block.c2(F.relu(block.c1(F.relu(x)))) + F.relu(x))


def test_labels_condition_both_networks():
    torch.manual_seed(0)
    g, d = Generator(ngf=32, num_classes=10), Discriminator(ndf=32, num_classes=10)
    z = torch.randn(1, 128, 1, 1).repeat(2, 1, 1, 1)
    with torch.no_grad():
        images = g.eval()(z, torch.tensor([0, 1]))
        logits = d(images[:1].repeat(2, 1, 1, 1), torch.tensor([0, 1]))
    assert not torch.allclose(images[0], images[1])  # the same latent, another class
    assert logits[0] != logits[1]  # the same image, another class


def test_spectral_norm_comes_from_the_system_and_runs():
    d = Discriminator(ndf=32, num_classes=10)
    assert not any(nn.utils.parametrize.is_parametrized(m) for m in d.modules())  # not built in
    with_spectral_norm(d)
    assert d.embed.parametrizations.weight is not None and d.linear.parametrizations.weight is not None
    logits = d(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]))
    assert logits.shape == (4,) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert d.blocks[0].c1.parametrizations.weight.original.grad is not None


def test_spectral_norm_on_g_leaves_the_class_gains_alone():
    g = with_spectral_norm(Generator(ngf=32, num_classes=10))
    assert 0.9 < g.blocks[0].b1.gamma.mean() < 1.1  # divided by its norm, it would be near 0.02


@pytest.mark.parametrize("size", [16, 96, 256])
def test_unsupported_size_is_rejected(size: int):
    with pytest.raises(UsageError, match="one of 32, 48, 64, 128 .* data.image_size"):
        Generator(image_size=size)
    with pytest.raises(UsageError, match="one of 32, 48, 64, 128"):
        Discriminator(image_size=size)


def test_too_narrow_a_width_is_rejected():
    with pytest.raises(UsageError, match="ngf must be at least 16"):
        Generator(ngf=8, image_size=64)


def test_the_config_group_builds_them_into_the_gan():
    cfg = compose_config(["model/generator=resnet", "model/discriminator=resnet", "data.image_size=32",
                          "data.channels=3", "model.nz=128", "model.spectral_norm=d"], shrink=False)
    model = instantiate(cfg.model)
    assert isinstance(model.generator, Generator) and isinstance(model.discriminator, Discriminator)
    assert (count(model.generator), count(model.discriminator)) == MIMICRY[32]  # null widths: the paper's
    assert model.hparams.generator["ngf"] is None and model.hparams.discriminator["ndf"] is None
    assert model.discriminator(model.generator(torch.randn(2, 128, 1, 1))).shape == (2,)


def test_the_sngan_resnet_preset_is_the_papers_setting():
    cfg = compose_config(["model=sngan_resnet", "data.image_size=32", "data.channels=3"], shrink=False)
    model = instantiate(cfg.model)
    hp = model.hparams
    assert (hp.loss, hp.spectral_norm, hp.n_critic, hp.lr, hp.beta1, hp.beta2, hp.nz) == ("hinge", "d", 5, 2e-4, 0.0, 0.9, 128)
    assert cfg.data.batches_per_step == 5  # each of the 5 D updates on its own real batch
    assert (count(model.generator), count(model.discriminator)) == MIMICRY[32]
