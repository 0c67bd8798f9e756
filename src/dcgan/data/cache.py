"""A source decoded once per state of its records: the decoded-image cache, and the list of
records that cannot be decoded.

In a cache folder, each source and settings have one record, <key>-<S>px-<C>ch.json: the state of
the records it describes (Source.state), the shape of the decoded array and the records that could
not be decoded; with the pixels, .u8 beside it holds the array, raw uint8 (N, C, S, S). Images
decode straight into that file, which every rank and later run then memory-maps: the whole array
is never in a process's memory, and the ranks on a machine share one copy of its pages (the OS's
page cache). A changed source replaces both, so stale arrays never pile up. And how the tiers
serve that array: Rows (host and disk: batches gathered from it), moved (device: copied up).
"""

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from dcgan.data.images import decode_all
from dcgan.data.source import Source
from dcgan.files import replaced_atomically

FORMAT = 4  # bump when the decoding or the files change, so old records are not reused


def mapped(path: Path, shape: tuple[int, ...], prefetch: bool = False) -> Tensor:
    """The array in path as a uint8 tensor over a copy-on-write memory map (writable for torch,
    never written back). prefetch: ask the OS to read it all into its page cache now."""
    if prefetch:
        with open(path, "rb") as file:
            os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_WILLNEED)
    if not np.prod(shape):
        return torch.empty(shape, dtype=torch.uint8)  # mmap cannot map an empty file
    return torch.from_numpy(np.memmap(path, dtype=np.uint8, mode="c", shape=shape))


def fill(out: Tensor | np.ndarray, source: Source, image_size: int, channels: int, workers: int) -> list[int]:
    """Decode every record into out (N, C, S, S) from the front, in order, and return the indices
    of those that could not be decoded (out's last rows are then left as they were)."""
    filled, bad = 0, []
    for images, failed in decode_all(source, image_size, channels, workers):
        out[filled : filled + len(images)] = images.to(out.device) if isinstance(out, Tensor) else images.numpy()
        filled += len(images)
        bad += failed
    return bad


def decoded(source: Source, image_size: int, channels: int, cache_dir: Path | None, workers: int, pixels: bool,
            device: torch.device | None = None, prefetch: bool = False) -> tuple[Tensor | None, list[int]]:
    """The indices of the records that cannot be decoded and, with pixels, the (M, channels, S, S)
    uint8 images of the M that can, in order. Read from cache_dir when it holds them for the
    source's current state (memory-mapped; prefetch: see mapped), else decoded in `workers`
    processes: into cache_dir's file, or without one, straight into device's memory (None: the host's)."""
    shape = (len(source), channels, image_size, image_size)
    if cache_dir is None:
        if not pixels:
            return None, [index for _, failed in decode_all(source, image_size, channels, workers) for index in failed]
        images = torch.empty(shape, dtype=torch.uint8, device=device)
        bad = fill(images, source, image_size, channels, workers)
        return images[: len(source) - len(bad)], bad

    stem = cache_dir / f"{source.key()}-{image_size}px-{channels}ch"
    record_path, array_path = Path(f"{stem}.json"), Path(f"{stem}.u8")
    state = f"{FORMAT} {source.state()}"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    current = record.get("state") == state
    if current and (record["pixels"] or not pixels):
        images = mapped(array_path, tuple(record["shape"]), prefetch) if pixels else None
        return images, record["bad"]

    cache_dir.mkdir(parents=True, exist_ok=True)
    if pixels:
        with replaced_atomically(array_path) as partial:  # a whole file or none
            with open(partial, "wb") as file:
                file.truncate(int(np.prod(shape)))  # sparse until written
            bad = fill(np.memmap(partial, dtype=np.uint8, mode="r+", shape=shape), source, image_size, channels,
                       workers) if np.prod(shape) else []
            os.truncate(partial, int(np.prod(shape[1:])) * (len(source) - len(bad)))
        shape = (len(source) - len(bad), *shape[1:])
    else:
        _, bad = decoded(source, image_size, channels, None, workers, pixels=False)
        if not current:
            array_path.unlink(missing_ok=True)  # decoded from an older state of the source
    with replaced_atomically(record_path) as partial:  # written last: it vouches for the array
        partial.write_text(json.dumps({"state": state, "pixels": pixels, "shape": shape, "bad": bad}))
    return (mapped(array_path, shape, prefetch) if pixels else None), bad


class Rows(Dataset):
    """Rows of a cached array (N, C, S, S) and their labels, gathered a batch at a time."""

    def __init__(self, images: Tensor, labels: Tensor | None):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitems__(self, indices: list[int]) -> Tensor | tuple[Tensor, Tensor]:
        where = torch.tensor(indices)
        images = self.images[where]  # one gather: from the page cache, or the disk's pages
        return images if self.labels is None else (images, self.labels[where])

    @staticmethod
    def collate(batch):  # the batch is already gathered
        return batch


def moved(images: Tensor, device: torch.device, rows: int = 4096) -> Tensor:
    """images on device, copied a slice at a time (a memory-mapped array is never read whole into host memory)."""
    if images.device == device:
        return images
    out = torch.empty(images.shape, dtype=images.dtype, device=device)
    for start in range(0, len(images), rows):
        out[start : start + rows] = images[start : start + rows].to(device)
    return out
