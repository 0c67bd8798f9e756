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
    elif isinstance(module, nn.BatchNorm2d) and module.affine:  # the seed's; other norms keep PyTorch's init
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, ConditionalBatchNorm2d):  # the same, per class
        nn.init.normal_(module.weight.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias.weight)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, 0.0, 0.02)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift are looked up per class (de Vries et al. 2017), as in the
    generators of Miyato & Koyama 2018: (B, C, H, W) and labels (B,) -> (B, C, H, W)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.weight = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        return self.norm(x) * self.weight(labels)[:, :, None, None] + self.bias(labels)[:, :, None, None]


class Generator(nn.Module):
    """Maps latents (B, nz, 1, 1) to images (B, channels, image_size, image_size) in [-1, 1].
    With num_classes, also labels (B,): each BatchNorm's scale and shift are the class's own."""

    def __init__(self, nz: int = 100, ngf: int = 64, channels: int = 3, image_size: int = 64, num_classes: int = 0):
        super().__init__()
        check_image_size(image_size)
        self.num_classes = num_classes

        def norm(width: int) -> nn.Module:
            return ConditionalBatchNorm2d(width, num_classes) if num_classes else nn.BatchNorm2d(width)

        mult = image_size // 8  # width multiplier at 4x4: 8 at 64x64, as in the tutorial
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False),  # (B, ngf*mult, 4, 4)
            norm(ngf * mult),
            nn.ReLU(True),
        ]
        while mult > 1:  # each block doubles the resolution and halves the width
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                norm(ngf * mult // 2),
                nn.ReLU(True),
            ]
            mult //= 2
        layers += [nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if not self.num_classes:
            return self.main(z)
        for layer in self.main:
            z = layer(z, labels) if isinstance(layer, ConditionalBatchNorm2d) else layer(z)
        return z


NORMS = {  # D's normalisation after each inner convolution (model.d_norm)
    "batch": nn.BatchNorm2d,  # the seed's
    "none": None,
    "layer": lambda channels: nn.GroupNorm(1, channels),  # over (C, H, W) per image: WGAN-GP's critic
    "instance": lambda channels: nn.InstanceNorm2d(channels, affine=True),
}


class Discriminator(nn.Module):
    """Maps images (B, channels, image_size, image_size) to real/fake logits (B,); with
    num_classes, also labels (B,), by projection.

    The tutorial's final Sigmoid is folded into the loss (BCE-with-logits): the same maths, but
    numerically stable and safe under autocast. norm: the tutorial's BatchNorm, or one of NORMS
    for losses whose D must judge each image on its own (a gradient penalty is per image).
    """

    def __init__(self, ndf: int = 64, channels: int = 3, image_size: int = 64, norm: str = "batch",
                 num_classes: int = 0):
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
        # With classes, the projection discriminator (Miyato & Koyama 2018): the logit gains
        # <embed(y), features>, the features being the last block's output summed over space.
        self.embed = nn.Embedding(num_classes, ndf * mult) if num_classes else None
        self.apply(dcgan_init)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.embed is None:
            return self.main(x).flatten()
        features = self.main[:-1](x)  # (B, ndf*mult, 4, 4)
        return self.main[-1](features).flatten() + (self.embed(labels) * features.sum((2, 3))).sum(1)


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
