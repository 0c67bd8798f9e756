"""Images already in memory as a source and DataModule: for benchmarks, and images a program has
made. The same path as any source's (a device cache by default: batches gathered and scaled on
the device, the same order and resumes), from a uint8 tensor instead of files."""

import hashlib

import numpy as np
from torch import Tensor

from dcgan.data.module import ImageDataModule
from dcgan.data.source import Source
from dcgan.data.tiers import Cache


class Tensors(Source):
    """images (N, C, S, S) uint8, with labels (N,) and their class names (default: the labels' numbers)."""

    where = title = "the images in memory"

    def __init__(self, images: Tensor, labels: Tensor | None = None, classes: list[str] | None = None):
        self.images, self._labels = images.cpu(), labels
        self._classes = [] if labels is None else classes or [str(label) for label in range(int(labels.max()) + 1)]

    def __len__(self) -> int:
        return len(self.images)

    def read(self, index: int, image_size: int, channels: int) -> np.ndarray:
        if self.images.shape[1:] != (channels, image_size, image_size):
            raise ValueError(f"these images are {tuple(self.images.shape[1:])}, not {(channels, image_size, image_size)}")
        return self.images[index].permute(1, 2, 0).numpy()

    def name(self, index: int) -> str:
        return f"image {index}"

    def state(self) -> str:
        return hashlib.sha1(self.images.numpy().tobytes()).hexdigest()

    def key(self) -> str:
        return f"images-{self.state()[:8]}"

    @property
    def classes(self) -> list[str]:
        return self._classes

    def labels(self) -> list[int] | None:
        return None if self._labels is None else self._labels.tolist()


class InMemoryDataModule(ImageDataModule):
    """Batches of images (N, C, S, S) uint8, with labels (N,) when given (class-conditional training)."""

    def __init__(self, images: Tensor, labels: Tensor | None = None, classes: list[str] | None = None,
                 batch_size: int = 128, batches_per_step: int = 1, drop_last: bool = True, hflip: bool = False,
                 cache: Cache = "device"):
        super().__init__(image_size=images.shape[-1], channels=images.shape[1], batch_size=batch_size,
                         batches_per_step=batches_per_step, drop_last=drop_last, cache=cache, num_workers=0,
                         labels=labels is not None, hflip=hflip)
        self.given = Tensors(images, labels, classes)

    def _source(self) -> Tensors:
        return self.given
