"""DCGAN generator and discriminator (Radford et al., 2016), as in the PyTorch DCGAN tutorial.

Plain ``nn.Module``s: nothing here knows about Lightning or Hydra. At image_size 64 the layers are
exactly the tutorial's; other power-of-two sizes add or remove one stride-2 block per doubling.
The layer stack is kept in ``self.main`` so state_dict keys match the tutorial's checkpoints.
"""

from collections.abc import Iterator
from contextlib import contextmanager

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
    elif isinstance(module, nn.BatchNorm2d):
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


class Discriminator(nn.Module):
    """Maps images (B, channels, image_size, image_size) to real/fake logits (B,).

    The tutorial's final Sigmoid is folded into the loss (BCE-with-logits): the same maths, but
    numerically stable and safe under autocast.
    """

    def __init__(self, ndf: int = 64, channels: int = 3, image_size: int = 64):
        super().__init__()
        check_image_size(image_size)
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),  # (B, ndf, S/2, S/2), no BatchNorm
            nn.LeakyReLU(0.2, inplace=True),
        ]
        mult = 1
        while mult < image_size // 8:  # each block halves the resolution and doubles the width
            layers += [
                nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ndf * mult * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            mult *= 2
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 0, bias=False))  # (B, 1, 1, 1)
        self.main = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x).flatten()


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
