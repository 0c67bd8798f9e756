"""DiffAugment (Zhao et al. 2020): differentiable augmentations of every image D sees, real and
fake, in D's updates and in G's, so that D cannot memorise a small dataset while G still gets
gradients through them. Each image gets its own random draw, on its device (no host sync),
from a generator the caller seeds (the run's latent stream, so a resumed run draws the same).
ada.py applies the same operations, each with an adapted probability.

Images are (B, C, H, W) in [-1, 1], square. flip, rotate90, translation and cutout only move or
blank pixels (to 0, mid-grey), so values stay in [-1, 1]; color shifts brightness by up to 0.5
and scales saturation by [0, 2] and contrast by [0.5, 1.5] around the image's means, as the
paper does, so its values can leave [-1, 1] (at most to [-5, 5]). flip and rotate90 are ADA's
geometric ones (Karras et al. 2020): for data whose mirror image or turned image is no longer
data (digits, text), use them only with ADA, whose probability stays below where they leak.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from dcgan.errors import UsageError


def _uniform(x: Tensor, generator: torch.Generator) -> Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype, generator=generator)  # (B, 1, 1, 1)


def brightness(x: Tensor, generator: torch.Generator) -> Tensor:
    return x + (_uniform(x, generator) - 0.5)


def saturation(x: Tensor, generator: torch.Generator) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)  # (B, 1, H, W): per pixel, over channels (greyscale: no change)
    return (x - mean) * (_uniform(x, generator) * 2) + mean


def contrast(x: Tensor, generator: torch.Generator) -> Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def flip(x: Tensor, generator: torch.Generator) -> Tensor:
    """Mirror each image left to right with probability 1/2."""
    return torch.where(_uniform(x, generator) < 0.5, x.flip(3), x)


def rotate90(x: Tensor, generator: torch.Generator) -> Tensor:
    """Turn each image by 0, 90, 180 or 270 degrees, equally likely."""
    turns = torch.randint(0, 4, (x.shape[0], 1, 1, 1), device=x.device, generator=generator)
    rotated = x
    for k in (1, 2, 3):
        rotated = torch.where(turns == k, x.rot90(k, (2, 3)), rotated)
    return rotated


def translation(x: Tensor, generator: torch.Generator, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ratio of its size in x and in y, filling with 0."""
    b, _, h, w = x.shape
    limit_h, limit_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    shift_h = torch.randint(-limit_h, limit_h + 1, (b, 1, 1), device=x.device, generator=generator)
    shift_w = torch.randint(-limit_w, limit_w + 1, (b, 1, 1), device=x.device, generator=generator)
    index_b, index_h, index_w = torch.meshgrid(torch.arange(b, device=x.device), torch.arange(h, device=x.device),
                                               torch.arange(w, device=x.device), indexing="ij")
    # Read from a copy padded by one zero pixel; indices that fall outside land on the padding.
    index_h = (index_h + shift_h + 1).clamp(0, h + 1)
    index_w = (index_w + shift_w + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # (B, H+2, W+2, C)
    return padded[index_b, index_h, index_w].permute(0, 3, 1, 2)


def cutout(x: Tensor, generator: torch.Generator, ratio: float = 0.5) -> Tensor:
    """Set a square of ratio of each image's size, at a random place, to 0."""
    b, _, h, w = x.shape
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    offset_h = torch.randint(0, h + (1 - size_h % 2), (b, 1, 1), device=x.device, generator=generator)
    offset_w = torch.randint(0, w + (1 - size_w % 2), (b, 1, 1), device=x.device, generator=generator)
    index_b, index_h, index_w = torch.meshgrid(torch.arange(b, device=x.device), torch.arange(size_h, device=x.device),
                                               torch.arange(size_w, device=x.device), indexing="ij")
    index_h = (index_h + offset_h - size_h // 2).clamp(0, h - 1)
    index_w = (index_w + offset_w - size_w // 2).clamp(0, w - 1)
    mask = torch.ones(b, h, w, device=x.device, dtype=x.dtype)
    mask[index_b, index_h, index_w] = 0
    return x * mask.unsqueeze(1)


POLICIES: dict[str, list[Callable[[Tensor, torch.Generator], Tensor]]] = {
    "color": [brightness, saturation, contrast],
    "translation": [translation],
    "cutout": [cutout],
    "flip": [flip],
    "rotate90": [rotate90],
}


class DiffAugment:
    """The policies' operations in order (model.augment, e.g. [color, translation, cutout])."""

    def __init__(self, policies: list[str]):
        unknown = [name for name in policies if name not in POLICIES]
        if unknown:
            raise UsageError(f"augment: {', '.join(unknown)} is not a policy; the policies are {', '.join(POLICIES)}")
        self.operations = [operation for name in policies for operation in POLICIES[name]]

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        for operation in self.operations:
            images = operation(images, generator)
        return images
