"""An image folder as a LightningDataModule: any layout, common formats, any PIL mode."""

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import Dataset

from dcgan.data.cache import decoded_folder
from dcgan.data.classes import class_of, folder_classes
from dcgan.data.images import ImageFolder, find_images
from dcgan.data.sampler import EpochShuffle, ResumableLoader
from dcgan.errors import UsageError
from dcgan.streams import derived_seed

MIRROR = 1  # tells the mirroring's random stream from the latents', which derive from the same parts
CACHE_SHARE = 1 / 8  # data.cache=auto keeps the decoded images when they take at most this of the device's memory


def device_memory(trainer: pl.Trainer | None) -> int:
    """Bytes of memory each rank's copy of the cache may use: the GPU's, or the host's shared by
    the ranks on it. Totals, not what is free now, so every rank decides alike."""
    device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (trainer.num_devices if trainer else 1)


class ImageFolderDataModule(pl.LightningDataModule):
    """Batches of real images in [-1, 1], (B, channels, image_size, image_size).

    batch_size is per device: under DDP each rank draws its own batch from its shard.
    batches_per_step: how many batches each training step takes at once (model.n_critic: one per
    D update), as one (batches_per_step * batch_size, C, S, S) tensor. Every step holds that many
    whole batches: with more than one, an epoch's last images that do not fill a step are left
    out of that epoch (whatever drop_last says), so no D update trains on a smaller batch.
    cache: decode every image once (see cache.py) and keep them all on the training device; the
    loader then yields only indices and batches are gathered there, no decoding or copying per
    step; "auto": when they take at most CACHE_SHARE of its memory. The batches are the same
    either way. on_bad_image: images that cannot be decoded (corrupt, truncated, empty, unreadable) are
    skipped with one warning that counts them, or stop the run with their list ("error"). Every
    image is decoded once before training to find them (with the cache, that pass is its build).
    cache_dir: where that pass's result (the list of bad images, and the cache's array) is kept
    for every rank and later runs, until the folder changes (None: each run decodes again).
    labels: batches are (images, labels), each image's class its first-level subfolder (a flat
    folder is one class; classes.py). hflip: mirror each real image with probability 1/2, on the
    device (StyleGAN's --mirror), the same ones in a resumed run.
    """

    def __init__(
        self,
        root: str,
        image_size: int = 64,
        channels: int = 3,
        batch_size: int = 128,
        batches_per_step: int = 1,
        num_workers: int = 2,
        drop_last: bool = True,
        cache: bool | Literal["auto"] = "auto",
        cache_dir: str | None = None,
        on_bad_image: Literal["skip", "error"] = "skip",
        labels: bool = False,
        hflip: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)  # for callbacks.HParams
        if image_size < 1:  # which sizes the networks can make is theirs to say
            raise UsageError(f"image_size must be a positive number of pixels, got {image_size}")
        if channels not in (1, 3):
            raise UsageError(f"channels must be 1 or 3, got {channels}")
        if batch_size < 1:
            raise UsageError(f"batch_size must be at least 1, got {batch_size}")
        if batches_per_step < 1:
            raise UsageError(f"batches_per_step must be at least 1 (it follows model.n_critic), got {batches_per_step}")
        if num_workers < 0:
            raise UsageError(f"num_workers must be 0 (load in the main process) or more, got {num_workers}")
        self.root = Path(root).expanduser()
        self.image_size = image_size
        self.channels = channels
        self.batch_size = batch_size
        self.batches_per_step = batches_per_step
        self.num_workers = num_workers
        self.drop_last = drop_last
        self.cache = cache
        self.cache_dir = cache_dir and Path(cache_dir).expanduser()
        self.on_bad_image = on_bad_image
        self.labels = labels
        self.hflip = hflip
        self._on_device: tuple[Tensor, Tensor | None] | None = None  # the cache's images and labels

    @cached_property
    def files(self) -> list[Path]:
        return find_images(self.root)

    @cached_property
    def caching(self) -> bool:
        """Whether the images are decoded once and kept (cache, or with "auto": when the decoded
        array would take at most CACHE_SHARE of the training device's memory)."""
        if self.cache != "auto":
            return self.cache
        decoded = len(self.files) * self.channels * self.image_size**2  # bytes, uint8
        return decoded <= CACHE_SHARE * device_memory(self.trainer)

    @cached_property
    def classes(self) -> list[str]:
        """The class names, with labels (else none): what the model's num_classes follows."""
        return folder_classes(self.root, self.files) if self.labels else []

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def prepare_data(self) -> None:
        if self.cache_dir:  # decode once per node and folder state; every rank then reads the result
            self._decoded()

    def setup(self, stage: str) -> None:
        trainer = self.trainer
        self.dataset = self._load(trainer)
        share, step = len(self.dataset) // (trainer.world_size if trainer else 1), self.batch_size * self.batches_per_step
        if self._whole_steps and step > share:
            if self.batches_per_step > 1:
                raise UsageError(
                    f"data.batch_size={self.batch_size} x {self.batches_per_step} batches per step (model.n_critic) is "
                    f"larger than the {share} images each device gets from {self.root}, so no step is ever whole: "
                    "lower data.batch_size or model.n_critic")
            raise UsageError(
                f"data.batch_size={self.batch_size} is larger than the {share} images each device gets from "
                f"{self.root}, so with data.drop_last=true no batch is ever full: lower data.batch_size "
                "or set data.drop_last=false")
        if not self.drop_last and self.batches_per_step > 1 and share % step:
            rank_zero_warn(f"data.drop_last=false with model.n_critic={self.batches_per_step}: every D update takes a "
                           f"whole batch of {self.batch_size}, so the last {share % step} images of each epoch's order "
                           "are left out of that epoch")

    def _load(self, trainer: pl.Trainer | None) -> Dataset | range:
        """The training images: with the cache, sets self.images (N, C, S, S) uint8 and
        self.image_labels (N,) or None, and returns the indices the loader yields; else the
        dataset that decodes them."""
        # With nothing to keep (no cache, no cache_dir), rank 0 alone looks for bad images and
        # the other ranks take its list; otherwise each rank reads what prepare_data decoded.
        shared = not self.caching and not self.cache_dir and trainer is not None
        images, bad = self._decoded() if not shared or trainer.is_global_zero else (None, None)
        if shared:
            bad = trainer.strategy.broadcast(bad)
        self._handle_bad(bad)
        skipped = set(bad)
        good = [path for path in self.files if path not in skipped]  # in order, as the cache holds them
        labels = [class_of(self.root, path, self.classes) for path in good] if self.labels else None
        if self.labels and len(set(labels)) < self.num_classes:
            unreadable = sorted(set(self.classes) - {self.classes[label] for label in set(labels)})
            raise UsageError(f"data.root={self.root}: no image of class {', '.join(unreadable)} can be read: "
                             "fix them, or move the class folder out")
        if not self.caching:
            return ImageFolder(good, self.image_size, self.channels, labels)
        self.images = torch.from_numpy(images)  # (N, C, S, S) uint8
        self.image_labels = torch.tensor(labels) if labels else None  # (N,)
        return range(len(self.images))  # the loader yields indices

    @property
    def _whole_steps(self) -> bool:
        """Whether the loader drops a short last step: by drop_last, and always with several D
        batches per step (a short one would give D updates of unequal size)."""
        return self.drop_last or self.batches_per_step > 1

    def _decoded(self) -> tuple[np.ndarray | None, list[Path]]:
        return decoded_folder(self.root, self.files, self.image_size, self.channels, self.cache_dir,
                              self.num_workers, pixels=self.caching)

    def _handle_bad(self, bad: list[Path]) -> None:
        if not bad:
            return
        if len(bad) == len(self.files):
            raise UsageError(f"data.root={self.root}: none of its {len(bad)} image files can be read")
        names = ", ".join(str(p.relative_to(self.root)) for p in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        if self.on_bad_image == "error":
            raise UsageError(f"data.root={self.root}: {len(bad)} images cannot be read: {names} "
                             "(data.on_bad_image=skip trains without them)")
        rank_zero_warn(f"skipped {len(bad)} images under {self.root} that cannot be read "
                       f"(corrupt, truncated, empty or unreadable): {names}")

    def images_at(self, indices: Tensor) -> Tensor:
        """uint8 (len(indices), C, S, S) training images, e.g. the real side of FID."""
        if self.caching:
            return self.images[indices]
        return torch.stack([self.dataset[int(i)][0] if self.labels else self.dataset[int(i)] for i in indices])

    def train_dataloader(self) -> ResumableLoader:
        workers = 0 if self.caching else self.num_workers  # indices need no workers
        trainer = self.trainer
        sampler = EpochShuffle(len(self.dataset), seed=torch.initial_seed(),
                               rank=trainer.global_rank if trainer else 0, world_size=trainer.world_size if trainer else 1)
        return ResumableLoader(
            self.dataset,
            batch_size=self.batch_size * self.batches_per_step,
            sampler=sampler,  # shards by rank itself (trainer.use_distributed_sampler=false)
            num_workers=workers,
            drop_last=self._whole_steps,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0,
        )

    def on_after_batch_transfer(self, batch, dataloader_idx: int) -> Tensor | tuple[Tensor, Tensor]:
        """Batches as training takes them: images (B, C, S, S) in [-1, 1], or (images, labels)."""
        labels = None
        if self.caching:  # batch: (B,) indices into the images, which move to the device once
            if self._on_device is None or self._on_device[0].device != batch.device:
                on_device = self.image_labels.to(batch.device) if self.image_labels is not None else None
                self._on_device = self.images.to(batch.device), on_device
            all_images, all_labels = self._on_device
            images, labels = all_images[batch], all_labels[batch] if all_labels is not None else None
        elif self.labels:
            images, labels = batch
        else:
            images = batch
        # uint8 travels to the device (4x less than float) and is scaled there, exactly as the
        # seed's ToTensor + Normalize(0.5, 0.5): x / 255 * 2 - 1.
        images = images.float().mul_(2 / 255).sub_(1)
        if self.hflip:
            images = self._mirror(images)
        return images if labels is None else (images, labels)

    def _mirror(self, images: Tensor) -> Tensor:
        """Each image flipped left-right with probability 1/2, drawn from (seed, rank, step)."""
        trainer = self.trainer
        rank, step = (trainer.global_rank, trainer.global_step) if trainer else (0, 0)
        generator = torch.Generator(images.device).manual_seed(derived_seed(torch.initial_seed(), rank, step, MIRROR))
        flip = torch.rand(len(images), device=images.device, generator=generator) < 0.5  # (B,)
        return torch.where(flip[:, None, None, None], images.flip(-1), images)
