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

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from dcgan.data.batches import training_batch
from dcgan.data.source import said
from dcgan.errors import UsageError

META = "dcgan.json"  # beside the chunks: the images' size, channels, count and class names


def litdata() -> Any:
    try:
        import litdata
    except ImportError:
        raise UsageError("data=stream and shards.py use Lightning's litdata: pip install 'dcgan-lightning[stream]'") \
            from None
    return litdata


def filesystem(url: str, option: str) -> tuple[Any, str]:
    """fsspec's filesystem for a folder or s3://bucket/prefix (gs://, ...) and the path in it."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as error:  # s3:// without s3fs, gs:// without gcsfs, ...
        raise UsageError(f"{option}={url} needs a package fsspec reads it through ({said(error)})") from None
    except ValueError as error:  # a protocol fsspec does not know
        raise UsageError(f"{option}={url}: {error}") from None


def checked_chunks(root: str, option: str = "data.root") -> list[dict[str, Any]]:
    """index.json's chunks, each found beside it whole: its size as written, and its header
    (item count, then offsets, the last of which is the chunk's size) as litdata wrote it."""
    fs, path = filesystem(root, option)
    redo = f"write them again with python shards.py ... output_dir={root}"
    index = f"{path.rstrip('/')}/index.json"
    try:
        with fs.open(index) as file:
            chunks = json.load(file)["chunks"]
        for chunk in chunks:
            name = f"{path.rstrip('/')}/{chunk['filename']}"
            size, header = fs.size(name), []
            if size == chunk["chunk_bytes"] and size >= 4 * (chunk["chunk_size"] + 2):
                with fs.open(name, "rb") as file:
                    header = np.frombuffer(file.read(4 * (chunk["chunk_size"] + 2)), np.uint32)
            offsets = header[1:]  # where each item starts, then the chunk's end: after the header, increasing
            if len(header) < 2 or header[0] != chunk["chunk_size"] or offsets[0] != 4 * len(header) \
                    or offsets[-1] != size or np.any(np.diff(offsets.astype(np.int64)) <= 0):
                raise UsageError(f"{option}={root}: the shard {chunk['filename']} is damaged (truncated or changed "
                                 f"since it was written: {size} bytes, index.json says {chunk['chunk_bytes']}): {redo}")
    except UsageError:  # a ValueError too: said above
        raise
    except FileNotFoundError as error:
        raise UsageError(f"{option}={root}: {error.filename or error} is missing: {redo}") from None
    except (ValueError, KeyError, TypeError) as error:  # JSON that is not litdata's index
        raise UsageError(f"{option}={root}: its index.json is damaged ({said(error)}): {redo}") from None
    except OSError as error:
        raise UsageError(f"{option}={root}: its shards cannot be read ({said(error)})") from None
    return chunks


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
            raise UsageError(f"data.root={root}: its shards were written from data without class labels, so "
                             "data.labels=true cannot be met: train it unconditionally (data.labels=false)")

    def _meta(self) -> dict[str, Any]:
        """META, checked against index.json and the chunks it lists (a damaged shard is refused here,
        not met by a loader worker mid-epoch)."""
        fs, path = filesystem(self.root, "data.root")
        redo = f"write them again with python shards.py ... output_dir={self.root}"
        try:
            with fs.open(f"{path.rstrip('/')}/{META}") as file:
                meta = json.load(file)
        except FileNotFoundError:
            raise UsageError(f"data.root={self.root} holds no shards written by shards.py (no {META}): "
                             f"write them with python shards.py data=<preset> ... output_dir={self.root}") from None
        except ValueError as error:
            raise UsageError(f"data.root={self.root}: its {META} is damaged ({said(error)}): {redo}") from None
        except OSError as error:  # a file, an unreadable folder, ...
            raise UsageError(f"data.root={self.root} cannot be read as a folder of shards ({said(error)})") from None
        if isinstance(meta, dict) and meta.get("writing"):
            raise UsageError(f"data.root={self.root}: shards.py did not finish writing these shards: {redo}")
        keys = {"image_size": int, "channels": int, "images": int, "classes": list}
        if not isinstance(meta, dict) or any(not isinstance(meta.get(key), kind) for key, kind in keys.items()):
            raise UsageError(f"data.root={self.root}: its {META} is not one shards.py wrote: {redo}")
        if (count := sum(chunk["chunk_size"] for chunk in checked_chunks(self.root))) != meta["images"]:
            raise UsageError(f"data.root={self.root}: its chunks hold {count} images, {META} says {meta['images']} "
                             f"(written over by another tool?): {redo}")
        return meta

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
