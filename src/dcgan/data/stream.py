"""Sharded streaming, for data larger than a disk or than one machine: Lightning's litdata (the
`stream` extra). shards.py writes any source's images, decoded at the run's size, into litdata
chunks (a local folder or object storage: s3://, gs://, ...); data=stream reads them back, each
rank and node its own share, and the loader's state (how far each worker got) goes into the
checkpoint, so a resumed run trains the batches an uninterrupted one would have.

litdata rather than WebDataset: its loader has a state_dict that Lightning saves and restores
(WebDataset's pipelines have no resumable state), it shards by rank and node itself, and it
reads from object storage with a local cache of chunks.
"""

import json
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from dcgan.data.module import ImageDataModule, training_batch
from dcgan.errors import UsageError

META = "dcgan.json"  # beside the chunks: the images' size, channels, count and class names


def litdata() -> Any:
    try:
        import litdata
    except ImportError:
        raise UsageError("data=stream and shards.py use Lightning's litdata: pip install 'dcgan-lightning[stream]'") \
            from None
    return litdata


class _Record:
    """A source's record as a chunk's item (picklable, for litdata's writer processes)."""

    def __init__(self, datamodule: ImageDataModule):
        self.source, self.size, self.channels = datamodule.source, datamodule.image_size, datamodule.channels
        self.labels = datamodule.source.labels() if datamodule.source.classes else None

    def __call__(self, index: int):
        try:
            image = self.source.read(index, self.size, self.channels)
        except Exception:  # a record that cannot be decoded is left out, as training skips it
            return
        yield {"image": image.transpose(2, 0, 1).copy(), "label": self.labels[index] if self.labels else -1}


def write_shards(datamodule: ImageDataModule, output_dir: str, chunk_bytes: str = "64MB") -> int:
    """Write datamodule's images, decoded at its image_size and channels, as litdata chunks in
    output_dir, with META beside them; returns how many were written."""
    import fsspec

    streaming = litdata()
    source = datamodule.source
    streaming.optimize(fn=_Record(datamodule), inputs=list(range(len(source))), output_dir=output_dir,
                       chunk_bytes=chunk_bytes, num_workers=max(1, datamodule.num_workers), mode="overwrite",
                       verbose=False)
    count = len(streaming.StreamingDataset(output_dir))
    with fsspec.open(f"{output_dir.rstrip('/')}/{META}", "w") as file:
        json.dump({"image_size": datamodule.image_size, "channels": datamodule.channels, "images": count,
                   "classes": source.classes, "from": source.where}, file)
    return count


class StreamDataModule(pl.LightningDataModule):
    """Batches of the images in litdata chunks written by shards.py, at root (a folder, or
    s3://bucket/prefix and the like; cache_dir: where remote chunks are kept while read, null:
    litdata's default). image_size and channels must be those the shards were written at.
    Shuffled each epoch from the run's seed; drop_last and batches_per_step as for the other
    sources; labels: the classes of the source they were written from; hflip: as for the others."""

    def __init__(
        self,
        root: str,
        image_size: int = 64,
        channels: int = 3,
        batch_size: int = 128,
        batches_per_step: int = 1,
        num_workers: int = 2,
        drop_last: bool = True,
        cache_dir: str | None = None,
        labels: bool = False,
        hflip: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.root, self.cache_dir = root, cache_dir
        self.image_size, self.channels = image_size, channels
        self.batch_size, self.batches_per_step, self.num_workers = batch_size, batches_per_step, num_workers
        self.drop_last, self.labels, self.hflip = drop_last or batches_per_step > 1, labels, hflip
        self.meta = self._meta()
        if (self.meta["image_size"], self.meta["channels"]) != (image_size, channels):
            raise UsageError(f"data.root={root} holds {self.meta['image_size']}x{self.meta['image_size']} images with "
                             f"{self.meta['channels']} channels: set data.image_size={self.meta['image_size']} "
                             f"data.channels={self.meta['channels']}, or write shards at this size")
        if labels and not self.meta["classes"]:
            raise UsageError(f"data.root={root}: its shards were written from data without class labels, "
                             "so data.labels=true cannot be met")

    def _meta(self) -> dict[str, Any]:
        import fsspec

        try:
            with fsspec.open(f"{self.root.rstrip('/')}/{META}") as file:
                return json.load(file)
        except FileNotFoundError:
            raise UsageError(f"data.root={self.root} holds no shards written by shards.py (no {META}): "
                             "write them with python shards.py data=<preset> ... output_dir=" + self.root) from None

    @property
    def classes(self) -> list[str]:
        return self.meta["classes"] if self.labels else []

    @property
    def title(self) -> str:
        return f"the shards at {self.root}"

    def describe(self, trainer: pl.Trainer | None) -> str:
        return f"{self.meta['images']:,} images streamed by {self.num_workers or 'the main'} " \
               f"process{'es' if self.num_workers > 1 else ''}"

    def setup(self, stage: str) -> None:
        self.dataset = litdata().StreamingDataset(self.root, cache_dir=self.cache_dir, shuffle=True,
                                                  seed=torch.initial_seed() % 2**32, drop_last=self.drop_last)

    def images_at(self, indices: Tensor) -> Tensor:
        """uint8 (len(indices), C, S, S) images by their index in the shards, e.g. the real side of FID."""
        return torch.stack([torch.as_tensor(self.dataset[int(i)]["image"]) for i in indices])

    def train_dataloader(self) -> Any:
        return litdata().StreamingDataLoader(self.dataset, batch_size=self.batch_size * self.batches_per_step,
                                             num_workers=self.num_workers, drop_last=self.drop_last,
                                             pin_memory=torch.cuda.is_available())

    def on_after_batch_transfer(self, batch: dict[str, Tensor], dataloader_idx: int) -> Tensor | tuple[Tensor, Tensor]:
        return training_batch(batch["image"], batch["label"] if self.labels else None, self.hflip, self.trainer)
