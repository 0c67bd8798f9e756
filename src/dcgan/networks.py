"""DCGAN generator and discriminator (Radford et al., 2016), as in the PyTorch DCGAN tutorial.

Plain ``nn.Module``s: nothing here knows about Lightning or Hydra. At image_size 64 the layers are
exactly the tutorial's; other power-of-two sizes add or remove one stride-2 block per doubling.
The layer stack is kept in ``self.main`` so state_dict keys match the tutorial's checkpoints.
"""

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from dcgan.errors import UsageError

SUPPORTED_SIZES = (16, 32, 64, 128, 256)


def check_image_size(image_size: int) -> None:
    if image_size not in SUPPORTED_SIZES:
        raise UsageError(f"image_size must be a power of two in [16, 256], got {image_size}")


def dcgan_init(module: nn.Module) -> None:
    """The paper's init: conv weights N(0, 0.02), BatchNorm weight N(1, 0.02) and bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):  # the seed's; other norms keep PyTorch's init
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """Maps latents (B, nz, 1, 1) to images (B, channels, image_size, image_size) in [-1, 1]."""

    def __init__(self, nz: int = 100, ngf: int = 64, channels: int = 3, image_size: int = 64):
        super().__init__()
        check_image_size(image_size)
        mult = image_size // 8  # width multiplier at 4x4: 8 at 64x64, as in the tutorial
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False),  # (B, ngf*mult, 4, 4)
            nn.BatchNorm2d(ngf * mult),
            nn.ReLU(True),
        ]
        while mult > 1:  # each block doubles the resolution and halves the width
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * mult // 2),
                nn.ReLU(True),
            ]
            mult //= 2
        layers += [nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: Tensor) -> Tensor:
        return self.main(z)


NORMS = {  # D's normalisation after each inner convolution (model.d_norm)
    "batch": nn.BatchNorm2d,  # the seed's
    "none": None,
    "layer": lambda channels: nn.GroupNorm(1, channels),  # over (C, H, W) per image: WGAN-GP's critic
    "instance": lambda channels: nn.InstanceNorm2d(channels, affine=True),
}


class Discriminator(nn.Module):
    """Maps images (B, channels, image_size, image_size) to real/fake logits (B,).

    The tutorial's final Sigmoid is folded into the loss (BCE-with-logits): the same maths, but
    numerically stable and safe under autocast. norm: the tutorial's BatchNorm, or one of NORMS
    for losses whose D must judge each image on its own (a gradient penalty is per image).
    """

    def __init__(self, ndf: int = 64, channels: int = 3, image_size: int = 64, norm: str = "batch"):
        super().__init__()
        check_image_size(image_size)
        if norm not in NORMS:
            raise UsageError(f"d_norm must be one of {', '.join(NORMS)}, got {norm!r}")
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),  # (B, ndf, S/2, S/2), no normalisation
            nn.LeakyReLU(0.2, inplace=True),
        ]
        mult = 1
        while mult < image_size // 8:  # each block halves the resolution and doubles the width
            layers.append(nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False))
            if NORMS[norm] is not None:
                layers.append(NORMS[norm](ndf * mult * 2))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            mult *= 2
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 0, bias=False))  # (B, 1, 1, 1)
        self.main = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x).flatten()


def with_spectral_norm(module: nn.Module) -> nn.Module:
    """Every convolution and linear layer of module divided by its largest singular value (Miyato
    et al. 2018), estimated by one power iteration per training forward pass; in place."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.utils.parametrizations.spectral_norm(layer)
    return module


def build(spec: Mapping[str, Any]) -> nn.Module:
    """The network a spec names: {"_target_": "package.module.Class", **its arguments}, as in
    conf/model/ and as checkpoints record it, so that the same network can be built again."""
    module_name, _, name = spec["_target_"].rpartition(".")
    try:
        factory = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        raise UsageError(f"_target_={spec['_target_']} cannot be imported: is its package on PYTHONPATH?") from None
    return factory(**{key: value for key, value in spec.items() if key != "_target_"})


@torch.no_grad()
def check_contract(generator: nn.Module, discriminator: nn.Module, nz: int, channels: int, image_size: int) -> None:
    """One line naming the broken part unless G maps latents (B, nz, 1, 1) to images (B, channels,
    image_size, image_size) in [-1, 1] and D maps those to one logit per image, (B,)."""
    shape = (2, channels, image_size, image_size)
    modes = generator.training, discriminator.training
    generator.eval(), discriminator.eval()  # no running statistics updated, no power iteration run
    try:
        images = generator(torch.randn(2, nz, 1, 1, generator=torch.Generator().manual_seed(0)))
        if tuple(images.shape) != shape:
            raise UsageError(f"generator: G(z) for z of shape (2, {nz}, 1, 1) must be images of shape {shape}, "
                             f"got {tuple(images.shape)}")
        if images.min() < -1 or images.max() > 1:
            raise UsageError(f"generator: G(z) must be images in [-1, 1] (end it with Tanh), got values in "
                             f"[{images.min():.3g}, {images.max():.3g}]")
        logits = discriminator(images)
        if tuple(logits.shape) != (2,):
            raise UsageError(f"discriminator: D(x) for x of shape {shape} must be one logit per image, of shape "
                             f"(2,), got {tuple(logits.shape)} (end it with .flatten() or .view(-1))")
    finally:
        generator.train(modes[0]), discriminator.train(modes[1])


@contextmanager
def batch_statistics(module: nn.Module) -> Iterator[None]:
    """Normalise with each batch's own statistics, as training does, without updating the
    running averages or synchronising SyncBatchNorm across ranks (so rank 0 can sample alone)."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.running_mean, m.running_var) for m in norms]
    for m in norms:  # eval mode with no running stats = batch stats, no update, no all-reduce
        m.eval()
        m.running_mean = m.running_var = None
    try:
        yield
    finally:
        for m, (training, mean, var) in zip(norms, saved):
            m.train(training)
            m.running_mean, m.running_var = mean, var
