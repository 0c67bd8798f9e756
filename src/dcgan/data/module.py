"""The DataModule every source shares: batches of real images in [-1, 1], decoded once into a
cache on the device, in host memory or on disk, or decoded per batch; the same batches either way."""

from abc import abstractmethod
from functools import cached_property
from pathlib import Path
from typing import Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import Dataset

from dcgan.data.batches import training_batch
from dcgan.data.cache import Rows, decoded, moved
from dcgan.data.classes import kept_labels
from dcgan.data.images import Decoded
from dcgan.data.sampler import EpochShuffle, ResumableLoader
from dcgan.data.source import Source, shown
from dcgan.data.tiers import TIERS, Cache, auto_tier, megabytes
from dcgan.errors import UsageError


class ImageDataModule(pl.LightningDataModule):
    """Batches of real images in [-1, 1], (B, channels, image_size, image_size), from a source.

    batch_size is per device: under DDP each rank draws its own batch from its shard.
    batches_per_step: how many batches each training step takes at once (model.n_critic: one per
    D update), as one (batches_per_step * batch_size, C, S, S) tensor. Every step holds that many
    whole batches: with more than one, an epoch's last images that do not fill a step are left
    out of that epoch (whatever drop_last says), so no D update trains on a smaller batch.
    cache: decode every image once and keep the uint8 array (cache.py): "device": on the training
    device, batches gathered there (no decoding or copying per step); "host": in host memory (the
    page cache of cache_dir's file, one copy for the ranks on a machine), batches gathered there
    and copied to the device without blocking (pinned on CUDA); "disk": memory-mapped from cache_dir,
    the loader's workers gathering batches from it; "auto": the first that fits (tiers.py: DEVICE_SHARE
    of the device's memory, HOST_SHARE of the host's, a cache_dir), else none; "refresh": as "auto",
    with what cache_dir holds for this data decoded again; true: "device"; false: decoded per
    batch by num_workers processes. The batches are the same either way.
    on_bad_image: images that cannot be decoded (corrupt, truncated, empty, unreadable) are
    skipped with one warning that counts them, or stop the run with their list ("error"). Every
    image is decoded once before training to find them (with the cache, that pass is its build).
    cache_dir: where that pass's result (the list of bad images, and the cache's array) is kept
    for every rank and later runs, until the data changes (None: each run decodes again).
    labels: batches are (images, labels) with the source's classes. hflip: mirror each real image
    with probability 1/2, on the device (StyleGAN's --mirror), the same ones in a resumed run.
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        batch_size: int = 128,
        batches_per_step: int = 1,
        num_workers: int = 2,
        drop_last: bool = True,
        cache: Cache = "auto",
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
        # messages from here start with the key's own name: the entry scripts put "data." before it
        if cache not in (True, False, "auto", "refresh", *TIERS):
            raise UsageError(f"cache={cache} is none of device, host, disk, auto, refresh, true, false")
        if cache == "disk" and not cache_dir:
            raise UsageError("cache=disk keeps the decoded images in data.cache_dir: set one (a folder)")
        self.image_size = image_size
        self.channels = channels
        self.batch_size = batch_size
        self.batches_per_step = batches_per_step
        self.num_workers = num_workers
        self.drop_last = drop_last
        self.refresh = cache == "refresh"  # rebuilt by this run's first decoding pass (one per machine)
        self.cache = "device" if cache is True else "auto" if self.refresh else cache
        self.cache_dir = cache_dir and Path(cache_dir).expanduser()
        self.on_bad_image = on_bad_image
        self.labels = labels
        self.hflip = hflip
        self._on_device: tuple[Tensor, Tensor | None] | None = None  # the device tier's images and labels

    @abstractmethod
    def _source(self) -> Source:
        """The records, found (listing a folder, opening a dataset); called once."""

    @cached_property
    def source(self) -> Source:
        source = self._source()
        if self.labels and not source.classes:
            raise UsageError(f"{source.where} has no class labels, so data.labels=true cannot be met: "
                             "train it unconditionally (data.labels=false)")
        if not len(source):
            raise UsageError(f"{source.where} holds no images")
        return source

    @cached_property
    def classes(self) -> list[str]:
        """The class names, with labels (else none): what the model's num_classes follows."""
        return self.source.classes if self.labels else []

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def tier(self) -> str | None:
        """Where the decoded images are kept (one of TIERS), or None: decoded per batch."""
        return self.tier_for(self.trainer)

    def tier_for(self, trainer: pl.Trainer | None) -> str | None:
        if self.cache != "auto":
            return self.cache or None
        return auto_tier(self.decoded_bytes, trainer, disk=bool(self.cache_dir))

    @property
    def title(self) -> str:
        return self.source.title

    @property
    def decoded_bytes(self) -> int:
        return len(self.source) * self.channels * self.image_size**2  # uint8

    def describe(self, trainer: pl.Trainer | None) -> str:
        """What the start line says of the data, e.g. '1,797 images cached on the device (1.8 MB)'."""
        kept = {"device": "on the device", "host": "in host memory", "disk": "on disk, memory-mapped"}
        if tier := self.tier_for(trainer):
            how = f"cached {kept[tier]} ({megabytes(self.decoded_bytes)})"
        else:
            how = f"decoded per batch by {self.num_workers or 'the main'} process{'es' if self.num_workers > 1 else ''}"
        return f"{len(self.source):,} images {how}"

    def prepare_data(self) -> None:
        if self.cache_dir:  # decode once per node and data state; every rank then reads the result
            self._decoded()

    def setup(self, stage: str) -> None:
        trainer = self.trainer
        self.dataset = self._load(trainer)
        share, step = len(self.dataset) // (trainer.world_size if trainer else 1), self.batch_size * self.batches_per_step
        where = self.source.where
        if self._whole_steps and step > share:
            if self.batches_per_step > 1:
                raise UsageError(
                    f"data.batch_size={self.batch_size} x {self.batches_per_step} batches per step (model.n_critic) is "
                    f"larger than the {share} images each device gets from {where}, so no step is ever whole: "
                    "lower data.batch_size or model.n_critic")
            raise UsageError(
                f"data.batch_size={self.batch_size} is larger than the {share} images each device gets from "
                f"{where}, so with data.drop_last=true no batch is ever full: lower data.batch_size "
                "or set data.drop_last=false")
        if not self.drop_last and self.batches_per_step > 1 and share % step:
            rank_zero_warn(f"data.drop_last=false with model.n_critic={self.batches_per_step}: every D update takes a "
                           f"whole batch of {self.batch_size}, so the last {share % step} images of each epoch's order "
                           "are left out of that epoch")

    def _load(self, trainer: pl.Trainer | None) -> Dataset | range:
        """The training images: with a cache, sets self.images (N, C, S, S) uint8 and
        self.image_labels (N,) or None; returns what the loader draws from (for the device tier,
        the indices; else the dataset that gathers or decodes them)."""
        # With nothing to keep (no cache, no cache_dir), rank 0 alone looks for bad images and
        # the other ranks take its list; otherwise each rank reads what prepare_data decoded.
        shared = not self.tier and not self.cache_dir and trainer is not None
        images, bad = self._decoded() if not shared or trainer.is_global_zero else (None, None)
        if shared:
            bad = trainer.strategy.broadcast(bad)
        self._handle_bad(bad)
        skipped = set(bad)
        good = [index for index in range(len(self.source)) if index not in skipped]  # in order, as the cache holds them
        labels = kept_labels(self.source, good) if self.labels else None
        if not self.tier:
            return Decoded(self.source, self.image_size, self.channels, good, labels)
        self.images = images  # (N, C, S, S) uint8
        self.image_labels = torch.tensor(labels) if labels else None  # (N,)
        return range(len(self.images)) if self.tier == "device" else Rows(self.images, self.image_labels)

    @property
    def _whole_steps(self) -> bool:
        """Whether the loader drops a short last step: by drop_last, and always with several D
        batches per step (a short one would give D updates of unequal size)."""
        return self.drop_last or self.batches_per_step > 1

    def _decoded(self) -> tuple[Tensor | None, list[int]]:
        # Without a cache_dir the device tier decodes straight onto the device, never all in host memory
        device = self.trainer.strategy.root_device if self.trainer is not None and self.tier == "device" else None
        refresh = self.refresh and (self.trainer is None or self.trainer.local_rank == 0)  # the rank of prepare_data
        self.refresh = False
        return decoded(self.source, self.image_size, self.channels, self.cache_dir, self.num_workers,
                       pixels=self.tier is not None, device=device, prefetch=self.tier == "host", refresh=refresh)

    def _handle_bad(self, bad: list[int]) -> None:
        if not bad:
            return
        where = self.source.where
        if len(bad) == len(self.source):
            raise UsageError(f"{where}: none of its {len(bad)} images can be read")
        names = ", ".join(shown(self.source.name(i)) for i in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        if self.on_bad_image == "error":
            raise UsageError(f"{where}: {len(bad)} images cannot be read: {names} "
                             "(data.on_bad_image=skip trains without them)")
        rank_zero_warn(f"skipped {len(bad)} images of {where} that cannot be read "
                       f"(corrupt, truncated, empty, unreadable or not a file): {names}")

    def images_at(self, indices: Tensor) -> Tensor:
        """uint8 (len(indices), C, S, S) training images, e.g. the real side of FID."""
        if self.tier:
            return self.images[indices.to(self.images.device)]
        return torch.stack([self.dataset.image(int(i)) for i in indices])

    def labels_at(self, indices: Tensor) -> Tensor | None:
        """(len(indices),) classes of those training images (None: unlabelled), e.g. intra-class FID's."""
        labels = self.image_labels if self.tier else self.dataset.labels
        return None if labels is None else torch.as_tensor(labels)[indices.cpu()]

    def train_dataloader(self) -> ResumableLoader:
        # the device tier's loader yields indices and the host tier gathers in this process: no workers
        workers = self.num_workers if self.tier in (None, "disk") else 0
        trainer = self.trainer
        sampler = EpochShuffle(len(self.dataset), seed=torch.initial_seed(),
                               rank=trainer.global_rank if trainer else 0, world_size=trainer.world_size if trainer else 1)
        return ResumableLoader(
            self.dataset,
            batch_size=self.batch_size * self.batches_per_step,
            sampler=sampler,  # shards by rank itself (trainer.use_distributed_sampler=false)
            num_workers=workers,
            drop_last=self._whole_steps,
            pin_memory=torch.cuda.is_available() and self.tier != "device",
            persistent_workers=workers > 0,
            **({"collate_fn": Rows.collate} if isinstance(self.dataset, Rows) else {}),
        )

    def on_after_batch_transfer(self, batch, dataloader_idx: int) -> Tensor | tuple[Tensor, Tensor]:
        """Batches as training takes them: images (B, C, S, S) in [-1, 1], or (images, labels)."""
        labels = None
        if self.tier == "device":  # batch: (B,) indices into the images, which move to the device once
            if self._on_device is None or self._on_device[0].device != batch.device:
                on_device = self.image_labels.to(batch.device) if self.image_labels is not None else None
                self._on_device = moved(self.images, batch.device), on_device
            all_images, all_labels = self._on_device
            images, labels = all_images[batch], all_labels[batch] if all_labels is not None else None
        elif self.labels:
            images, labels = batch
        else:
            images = batch
        return training_batch(images, labels, self.hflip, self.trainer)

