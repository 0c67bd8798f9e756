"""Image grids in the loggers (sinks.py): the fixed-noise grid, real images, interpolations."""

import pytorch_lightning as pl
import torch
from torch import Tensor
from torchvision.utils import make_grid

from dcgan.callbacks.sinks import log_image


def to_grid(images: Tensor, nrow: int = 8) -> Tensor:
    """(B, C, S, S) in [-1, 1] -> one (3, H, W) image in [0, 1], 8 per row as in the seed."""
    return make_grid(images.detach().float().cpu(), nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))


class ImageGrids(pl.Callback):
    """G(fixed_noise) after the first iteration, every N (0: none) and at each epoch end, so
    TensorBoard's image slider replays training like the seed's animation; a grid of real
    training images once; and at each epoch end, spherical interpolations between fixed pairs of
    latents.

    Every image is logged at the index of the latest finished iteration (one D and one G update,
    the seed's ``iters``): the x-axis of every plot, as Lightning logs scalars there (its
    global_step counts optimizer steps, two per iteration).
    """

    def __init__(self, every_n_iterations: int = 500):
        self.every_n_iterations = every_n_iterations
        self._last_logged = -1
        self._real_logged = False

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch: Tensor, batch_idx: int) -> None:
        step = pl_module.iteration - 1
        if not self._real_logged:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch  # (images, labels) with classes
            self._add(trainer, "samples/real", images[: len(pl_module.fixed_noise)], step)
            self._real_logged = True
        every = self.every_n_iterations  # on the iterations whose scalars are logged too, when a multiple
        if step == 0 or (every and pl_module.iteration % every == 0):
            self._add_fixed(trainer, pl_module, step)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = pl_module.iteration - 1
        if step != self._last_logged:
            self._add_fixed(trainer, pl_module, step)
        if trainer.is_global_zero:  # 8 spherical paths between fixed endpoints, 8 steps each
            with torch.no_grad():
                path = pl_module.interpolation(steps=8)
            self._add(trainer, "samples/interpolation", path, step)

    def _add_fixed(self, trainer: pl.Trainer, pl_module: pl.LightningModule, step: int) -> None:
        if trainer.is_global_zero:  # the other ranks would render the same grid for nothing
            with torch.no_grad():
                images, nrow = pl_module.grid()
                self._add(trainer, "samples/fixed_noise", images, step, nrow)
        self._last_logged = step

    @staticmethod
    def _add(trainer: pl.Trainer, tag: str, images: Tensor, step: int, nrow: int = 8) -> None:
        if trainer.is_global_zero:
            log_image(trainer, tag, to_grid(images, nrow), step)
