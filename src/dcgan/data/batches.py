"""Batches as training takes them, from any loader (the DataModule's, the stream's): uint8 images
scaled to [-1, 1] on the device and, with data.hflip, mirrored there."""

import pytorch_lightning as pl
import torch
from torch import Tensor

from dcgan.streams import derived_seed

MIRROR = 1  # tells the mirroring's random stream from the latents', which derive from the same parts


def training_batch(images: Tensor, labels: Tensor | None, hflip: bool, trainer: pl.Trainer | None
                   ) -> Tensor | tuple[Tensor, Tensor]:
    """uint8 images (B, C, S, S), on the device, as training takes them: in [-1, 1], mirrored
    with hflip, with their labels when there are any."""
    # uint8 travels to the device (4x less than float) and is scaled there, exactly as the
    # seed's ToTensor + Normalize(0.5, 0.5): x / 255 * 2 - 1.
    images = images.float().mul_(2 / 255).sub_(1)
    if hflip:
        images = mirrored(images, trainer)
    return images if labels is None else (images, labels)


def mirrored(images: Tensor, trainer: pl.Trainer | None) -> Tensor:
    """Each image flipped left-right with probability 1/2, drawn from (seed, rank, step): the same ones in a resumed run."""
    rank, step = (trainer.global_rank, trainer.global_step) if trainer else (0, 0)
    generator = torch.Generator(images.device).manual_seed(derived_seed(torch.initial_seed(), rank, step, MIRROR))
    flip = torch.rand(len(images), device=images.device, generator=generator) < 0.5  # (B,)
    return torch.where(flip[:, None, None, None], images.flip(-1), images)
