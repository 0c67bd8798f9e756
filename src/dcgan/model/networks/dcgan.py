"""DCGAN generator and discriminator (Radford et al., 2016), as in the PyTorch DCGAN tutorial.

Plain ``nn.Module``s: nothing here knows about Lightning or Hydra. At image_size 64 the layers are
exactly the tutorial's; other power-of-two sizes add or remove one stride-2 block per doubling.
The layer stack is kept in ``self.main`` so state_dict keys match the tutorial's checkpoints.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dcgan.errors import UsageError

SUPPORTED_SIZES = (16, 32, 64, 128, 256)


def check_image_size(image_size: int) -> None:
    if image_size not in SUPPORTED_SIZES:
        raise UsageError(f"image_size must be a power of two in [16, 256] for the DCGAN networks, "
                         f"got {image_size} (it follows data.image_size)")


def dcgan_init(module: nn.Module) -> None:
    """The paper's init ("all weights ... from a zero-centered Normal distribution with standard
    deviation 0.02"): conv weights and the projection's class embeddings N(0, 0.02), BatchNorm
    weight N(1, 0.02) and bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):  # the seed's; other norms keep PyTorch's init
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """Maps latents (B, nz, 1, 1) to images (B, channels, image_size, image_size) in [-1, 1].
    With num_classes, also labels (B,), as a one-hot code appended to the latent (the conditional
    GAN of Mirza & Osindero 2014): the first layer learns what each class adds."""

    def __init__(self, nz: int = 100, ngf: int = 64, channels: int = 3, image_size: int = 64, num_classes: int = 0):
        super().__init__()
        check_image_size(image_size)
        self.num_classes = num_classes
        mult = image_size // 8  # width multiplier at 4x4: 8 at 64x64, as in the tutorial
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz + num_classes, ngf * mult, 4, 1, 0, bias=False),  # (B, ngf*mult, 4, 4)
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

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes:  # (B, nz + num_classes, 1, 1)
            z = torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)[:, :, None, None]], dim=1)
        return self.main(z)


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
        # The embeddings start as D's output layer does, N(0, 0.02), as the authors' code gives
        # both one initialiser: with Glorot-uniform ones (theirs, beside their Glorot output
        # layer) the class term started 16-22 times as spread as the rest of the logit, D won
        # from the first iterations and G's samples were grey blobs for hundreds of them
        # (README, Small datasets and class labels).
        self.embed = nn.Embedding(num_classes, ndf * mult) if num_classes else None
        self.apply(dcgan_init)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.embed is None:
            return self.main(x).flatten()
        features = self.main[:-1](x)  # (B, ndf*mult, 4, 4)
        return self.main[-1](features).flatten() + (self.embed(labels) * features.sum((2, 3))).sum(1)
