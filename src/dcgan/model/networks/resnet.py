"""SN-GAN's ResNet generator and discriminator (Miyato et al., 2018), as Mimicry implements them.

Plain ``nn.Module``s, layer for layer those of Mimicry (github.com/kwotsin/mimicry: nets/sngan,
nets/cgan_pd, modules/resblocks.py), with its widths, resamplings, shortcuts and Glorot-uniform
gains at 32x32 (the CIFAR-10 networks), 48 (STL-10), 64 and 128 (BigGAN's deeper D), so parameter
counts match its. No spectral norm here: model.spectral_norm applies it (parts.with_spectral_norm).
"""

import math
from itertools import pairwise
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dcgan.errors import UsageError

# image_size: (ngf, bottom width, each stage's width as a right shift of ngf). Stage 0 is the
# linear layer's output, (B, ngf, bottom, bottom); each later stage a block that doubles H and W.
G_ARCH = {
    32: (256, 4, (0, 0, 0, 0)),  # 4 -> 32 at one width
    48: (512, 6, (0, 1, 2, 3)),  # 6 -> 48
    64: (1024, 4, (0, 1, 2, 3, 4)),  # 4 -> 64
    128: (1024, 4, (0, 0, 1, 2, 3, 4)),  # 4 -> 128
}
# image_size: (ndf, each block's width as a right shift of ndf, how many blocks after the first
# halve H and W). The first block always halves them; the ones that do come first.
D_ARCH = {
    32: (128, (0, 0, 0, 0), 1),  # 32 -> 8
    48: (1024, (4, 3, 2, 1, 0), 3),  # 48 -> 3
    64: (1024, (4, 3, 2, 1, 0), 4),  # 64 -> 2
    128: (1024, (4, 3, 2, 1, 0, 0), 4),  # 128 -> 4
}
SUPPORTED_SIZES = tuple(G_ARCH)


def check_image_size(image_size: int) -> None:
    if image_size not in SUPPORTED_SIZES:
        raise UsageError(f"image_size must be one of {', '.join(map(str, SUPPORTED_SIZES))} for the ResNet "
                         f"networks, got {image_size} (it follows data.image_size)")


def stage_widths(name: str, width: int | None, default: int, shifts: tuple[int, ...]) -> list[int]:
    """Each stage's channels for the network width (None: the paper's, default)."""
    width = default if width is None else width
    if width >> max(shifts) < 1:
        raise UsageError(f"{name} must be at least {2 ** max(shifts)} at this image size, got {width} "
                         f"(null: {default})")
    return [width >> shift for shift in shifts]


def glorot(layer: nn.Module, gain: float) -> nn.Module:
    """layer with Glorot-uniform weights (the reference's init; biases keep PyTorch's)."""
    nn.init.xavier_uniform_(layer.weight, gain)
    return layer


def upsample(x: Tensor) -> Tensor:
    # Bilinear, as Mimicry (and torchvision) upsample; the authors' Chainer code unpools (nearest).
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift are looked up per class (the cGAN-PD G's).

    The tables are Parameters, not nn.Embeddings, so that model.spectral_norm=g leaves them be:
    normalised, scales near 1 for every class would shrink by about sqrt(num_classes * channels)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Parameter(torch.empty(num_classes, channels).normal_(1.0, 0.02))  # (K, C)
        self.beta = nn.Parameter(torch.zeros(num_classes, channels))

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        return self.gamma[labels][:, :, None, None] * self.bn(x) + self.beta[labels][:, :, None, None]


class GBlock(nn.Module):
    """(B, cin, H, W) -> (B, cout, 2H, 2W): BN, ReLU, upsample, 3x3 conv, BN, ReLU, 3x3 conv,
    plus the input upsampled through a 1x1 conv (every G block resamples, so none is identity)."""

    def __init__(self, cin: int, cout: int, num_classes: int = 0):
        super().__init__()
        norm = (lambda c: ConditionalBatchNorm2d(c, num_classes)) if num_classes else nn.BatchNorm2d
        self.b1, self.c1 = norm(cin), glorot(nn.Conv2d(cin, cout, 3, 1, 1), math.sqrt(2))
        self.b2, self.c2 = norm(cout), glorot(nn.Conv2d(cout, cout, 3, 1, 1), math.sqrt(2))
        self.shortcut = glorot(nn.Conv2d(cin, cout, 1), 1.0)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        condition = () if labels is None else (labels,)
        h = self.c1(upsample(F.relu(self.b1(x, *condition))))
        h = self.c2(F.relu(self.b2(h, *condition)))
        return h + self.shortcut(upsample(x))


class DBlock(nn.Module):
    """(B, cin, H, W) -> (B, cout, H/2 or H, ...): ReLU, 3x3 conv (cin wide), ReLU, 3x3 conv,
    [avg-pool], plus a 1x1 conv [then avg-pool] where cin != cout or it downsamples, else identity."""

    def __init__(self, cin: int, cout: int, downsample: bool):
        super().__init__()
        self.downsample = downsample
        self.c1 = glorot(nn.Conv2d(cin, cin, 3, 1, 1), math.sqrt(2))
        self.c2 = glorot(nn.Conv2d(cin, cout, 3, 1, 1), math.sqrt(2))
        self.shortcut = glorot(nn.Conv2d(cin, cout, 1), 1.0) if cin != cout or downsample else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        # The shortcut too sees the rectified input: Mimicry's first ReLU is in place, so its
        # shortcut gets relu(x), and its published scores come from that (the Chainer code's gets x).
        x = F.relu(x)
        h, skip = self.c2(F.relu(self.c1(x))), self.shortcut(x)
        return F.avg_pool2d(h + skip, 2) if self.downsample else h + skip  # pooling is linear


class OptimizedDBlock(nn.Module):
    """D's first block, (B, cin, H, W) -> (B, cout, H/2, W/2): 3x3 conv, ReLU, 3x3 conv,
    avg-pool, plus the input avg-pooled then through a 1x1 conv; no ReLU on the image."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.c1 = glorot(nn.Conv2d(cin, cout, 3, 1, 1), math.sqrt(2))
        self.c2 = glorot(nn.Conv2d(cout, cout, 3, 1, 1), math.sqrt(2))
        self.shortcut = glorot(nn.Conv2d(cin, cout, 1), 1.0)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(self.c2(F.relu(self.c1(x))), 2) + self.shortcut(F.avg_pool2d(x, 2))


class Generator(nn.Module):
    """Maps latents (B, nz, 1, 1) to images (B, channels, image_size, image_size) in [-1, 1].
    With num_classes, also labels (B,), through conditional BatchNorm in every block (cGAN-PD).
    ngf: None is the reference's width for the image size."""

    def __init__(self, nz: int = 128, ngf: int | None = None, channels: int = 3, image_size: int = 32,
                 num_classes: int = 0):
        super().__init__()
        check_image_size(image_size)
        default, self.bottom, shifts = G_ARCH[image_size]
        widths = stage_widths("ngf", ngf, default, shifts)
        self.linear = glorot(nn.Linear(nz, self.bottom**2 * widths[0]), 1.0)
        self.blocks = nn.ModuleList(GBlock(cin, cout, num_classes) for cin, cout in pairwise(widths))
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(),  # unconditional, as the reference's
                                 glorot(nn.Conv2d(widths[-1], channels, 3, 1, 1), 1.0), nn.Tanh())

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.linear(z.flatten(1)).view(len(z), -1, self.bottom, self.bottom)  # (B, ngf, bottom, bottom)
        for block in self.blocks:
            h = block(h, labels)
        return self.out(h)


class Discriminator(nn.Module):
    """Maps images (B, channels, image_size, image_size) to logits (B,); with num_classes, also
    labels (B,), by projection (Miyato & Koyama 2018). ndf: None is the reference's width.
    pooling: of the last features over H and W, "sum" as SN-GAN's D, or "mean" as the WGAN-GP
    critics of Gulrajani et al.'s ResNet code and Mimicry (nets/wgan_gp): the same network, its
    last layer seeing 1/(H*W) of the sum (1/64 at 32x32), which changes how a penalty on its
    gradient and the optimiser's steps act on it."""

    def __init__(self, ndf: int | None = None, channels: int = 3, image_size: int = 32, num_classes: int = 0,
                 pooling: Literal["sum", "mean"] = "sum"):
        super().__init__()
        check_image_size(image_size)
        if pooling not in ("sum", "mean"):
            raise UsageError(f"pooling={pooling!r} is not one of sum, mean")
        self.pooling = pooling
        default, shifts, halving = D_ARCH[image_size]
        widths = stage_widths("ndf", ndf, default, shifts)
        self.blocks = nn.Sequential(OptimizedDBlock(channels, widths[0]), *(
            DBlock(cin, cout, downsample=i < halving) for i, (cin, cout) in enumerate(pairwise(widths))))
        self.linear = glorot(nn.Linear(widths[-1], 1), 1.0)
        # The class vectors start as the output layer does, Glorot-uniform, as in the reference.
        self.embed = glorot(nn.Embedding(num_classes, widths[-1]), 1.0) if num_classes else None

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = F.relu(self.blocks(x))
        h = h.sum((2, 3)) if self.pooling == "sum" else h.mean((2, 3))  # (B, ndf)
        logits = self.linear(h).flatten()
        if self.embed is None:
            return logits
        return logits + (self.embed(labels) * h).sum(1)
