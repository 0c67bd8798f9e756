"""Images already in memory as a DataModule: the folder module's cached path (the images on the
training device, batches gathered and scaled there, the same order and resumes), fed from a
uint8 tensor instead of a decoded folder: for benchmarks, and images a program has made."""

from functools import cached_property

import pytorch_lightning as pl
from torch import Tensor

from dcgan.data.folder import ImageFolderDataModule


class InMemoryDataModule(ImageFolderDataModule):
    """Batches of images (N, C, S, S) uint8, with labels (N,) when given (class-conditional
    training; classes: their names, else the labels' numbers)."""

    def __init__(self, images: Tensor, labels: Tensor | None = None, classes: list[str] | None = None,
                 batch_size: int = 128, batches_per_step: int = 1, drop_last: bool = True, hflip: bool = False):
        super().__init__("(images in memory)", image_size=images.shape[-1], channels=images.shape[1],
                         batch_size=batch_size, batches_per_step=batches_per_step, drop_last=drop_last, cache=True,
                         labels=labels is not None, hflip=hflip)
        self.given = images, labels
        self.given_classes = classes

    @cached_property
    def classes(self) -> list[str]:
        labels = self.given[1]
        if labels is None:
            return []
        return self.given_classes or [str(label) for label in range(int(labels.max()) + 1)]

    def prepare_data(self) -> None:
        pass  # nothing to decode

    def _load(self, trainer: pl.Trainer | None) -> range:
        self.images, self.image_labels = self.given
        return range(len(self.images))
