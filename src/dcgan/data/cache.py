"""A source decoded once per state of its records: the decoded-image cache, and the list of
records that cannot be decoded.

In a cache folder, each source and settings have one record, <key>-<S>px-<C>ch.json: the state of
the records it describes (Source.state), the shape of the decoded array and the records that could
not be decoded; with the pixels, .u8 beside it holds the array, raw uint8 (N, C, S, S). Images
decode straight into that file, which every rank and later run then memory-maps: the whole array
is never in a process's memory, and the ranks on a machine share one copy of its pages (the OS's
page cache). A changed source replaces both, so stale arrays never pile up. The record also
holds the array file's identity (inode, size, modification time): an array changed, truncated or
missing since, or a record that is not whole, is decoded again with a warning, never served.
And how the tiers serve that array: Rows (host and disk: batches gathered from it), moved
(device: copied up).
"""

import errno
import json
import os
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from dcgan.data.images import decode_all
from dcgan.data.reading import NotAFile, open_file
from dcgan.data.source import Source, shown
from dcgan.errors import UsageError
from dcgan.files import replaced_atomically

FORMAT = 5  # bump when the decoding or the files change, so old records are not reused


def mapped(file: BinaryIO, shape: tuple[int, ...], prefetch: bool = False) -> Tensor:
    """The array in file as a uint8 tensor over a copy-on-write memory map (writable for torch,
    never written back; it outlives the file's name). prefetch: ask the OS to read it all into its
    page cache now."""
    if prefetch:
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_WILLNEED)
    if not np.prod(shape):
        return torch.empty(shape, dtype=torch.uint8)  # mmap cannot map an empty file
    return torch.from_numpy(np.memmap(file, dtype=np.uint8, mode="c", shape=shape))


def fill(out: Tensor | np.ndarray, source: Source, image_size: int, channels: int, workers: int) -> list[int]:
    """Decode every record into out (N, C, S, S) from the front, in order, and return the indices
    of those that could not be decoded (out's last rows are then left as they were)."""
    filled, bad = 0, []
    for images, failed in decode_all(source, image_size, channels, workers):
        out[filled : filled + len(images)] = images.to(out.device) if isinstance(out, Tensor) else images.numpy()
        filled += len(images)
        bad += failed
    return bad


def identity(file: BinaryIO) -> list[int]:
    """What tells this array file from any other written or changed since: inode, size, modification time."""
    status = os.fstat(file.fileno())
    return [status.st_ino, status.st_size, status.st_mtime_ns]


def reserve(file: BinaryIO, size: int) -> None:
    """Make file size bytes long with its disk space taken now: a full disk is then an error here,
    not a crash (SIGBUS) while images decode into its memory map. Where the filesystem cannot
    reserve space, the file is only extended (sparse)."""
    try:
        os.posix_fallocate(file.fileno(), 0, size)
    except OSError as error:
        if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        file.truncate(size)


def decoded(source: Source, image_size: int, channels: int, cache_dir: Path | None, workers: int, pixels: bool,
            device: torch.device | None = None, prefetch: bool = False, refresh: bool = False
            ) -> tuple[Tensor | None, list[int]]:
    """The indices of the records that cannot be decoded and, with pixels, the (M, channels, S, S)
    uint8 images of the M that can, in order. Read from cache_dir when it holds them for the
    source's current state (memory-mapped; prefetch: see mapped) and refresh is not asked, else
    decoded in `workers` processes: into cache_dir's file, or without one, straight into device's
    memory (None: the host's). A damaged record is decoded again, with a warning."""
    shape = (len(source), channels, image_size, image_size)
    if cache_dir is None:
        if not pixels:
            return None, [index for _, failed in decode_all(source, image_size, channels, workers) for index in failed]
        images = torch.empty(shape, dtype=torch.uint8, device=device)
        bad = fill(images, source, image_size, channels, workers)
        return images[: len(source) - len(bad)], bad

    if cache_dir.exists() and not cache_dir.is_dir():
        raise UsageError(f"data.cache_dir={shown(cache_dir)} is not a folder: point data.cache_dir at a folder (made "
                         "when missing), or set data.cache_dir=null to decode at every start")
    stem = cache_dir / f"{source.key()}-{image_size}px-{channels}ch"
    record_path, array_path = Path(f"{stem}.json"), Path(f"{stem}.u8")
    state = f"{FORMAT} {source.state()}"
    record = None if refresh else kept(record_path, state, shape)
    if record and not pixels:
        return None, record["bad"]
    if record and record["pixels"]:
        why = "is missing"
        if os.path.lexists(array_path):
            try:
                with open_file(array_path) as file:
                    if identity(file) == record["array"]:
                        return mapped(file, tuple(record["shape"]), prefetch), record["bad"]
                why = "was changed since its record was written"
            except OSError as error:
                why = f"cannot be read ({error.what if isinstance(error, NotAFile) else error.strerror})"
        warnings.warn(f"data.cache_dir={shown(cache_dir)}: {shown(array_path.name)} {why}: decoding the images "
                      "again", stacklevel=2)
    try:
        return built(source, image_size, channels, workers, pixels, state, record_path, array_path, prefetch)
    except OSError as error:
        full = error.errno in (errno.ENOSPC, errno.EDQUOT)
        raise UsageError(f"data.cache_dir={shown(cache_dir)} " + (
            f"has no room for the decoded images ({np.prod(shape) / 2**20:.1f} MB): free space there, or point "
            "data.cache_dir at a larger disk" if full else
            f"cannot be written ({error.strerror or error}): point data.cache_dir at a writable folder, or set "
            "data.cache_dir=null to decode at every start")) from None


def kept(record_path: Path, state: str, shape: tuple[int, ...]) -> dict[str, Any] | None:
    """The record in record_path when it is whole and vouches for the source's current state (of
    `shape`, all records); None when there is none, it is of another state or it is damaged (a
    warning says so)."""
    if not os.path.lexists(record_path):
        return None
    try:
        with open_file(record_path) as file:
            record = json.loads(file.read())
    except NotAFile as error:
        return damaged(record_path, f"it is {error.what}")
    except (OSError, ValueError) as error:  # unreadable, truncated, garbage, not UTF-8
        return damaged(record_path, str(error))
    if not isinstance(record, dict) or "state" not in record:
        return damaged(record_path, "it is not a cache record")
    if record["state"] != state:
        return None  # the data changed: decoded again, without a word
    count, bad = shape[0], record.get("bad")
    if not (isinstance(bad, list) and all(type(i) is int and 0 <= i < count for i in bad) and len(set(bad)) == len(bad)
            and type(record.get("pixels")) is bool
            and (not record["pixels"] or (record.get("shape") == [count - len(bad), *shape[1:]]
                                          and isinstance(record.get("array"), list)))):
        return damaged(record_path, "its fields do not fit the data")
    return record


def damaged(record_path: Path, why: str) -> None:
    warnings.warn(f"data.cache_dir={shown(record_path.parent)}: {shown(record_path.name)} is damaged ({why}): decoding "
                  "the images again", stacklevel=3)


def built(source: Source, image_size: int, channels: int, workers: int, pixels: bool, state: str, record_path: Path,
          array_path: Path, prefetch: bool) -> tuple[Tensor | None, list[int]]:
    """decoded's work when the cache holds nothing current: decode, write the array (with pixels)
    and then the record that vouches for it."""
    record_path.parent.mkdir(parents=True, exist_ok=True)
    shape = (len(source), channels, image_size, image_size)
    images, array = None, None
    if pixels:
        with replaced_atomically(array_path) as partial, open(partial, "w+b") as file:  # a whole file or none
            if np.prod(shape):
                reserve(file, int(np.prod(shape)))
                out = np.memmap(file, dtype=np.uint8, mode="r+", shape=shape)
                bad = fill(out, source, image_size, channels, workers)
                del out
            else:
                bad = []
            shape = (len(source) - len(bad), *shape[1:])
            file.truncate(int(np.prod(shape)))
            images, array = mapped(file, shape, prefetch), identity(file)  # this file's, whatever replaces it later
    else:
        _, bad = decoded(source, image_size, channels, None, workers, pixels=False)
        array_path.unlink(missing_ok=True)  # decoded from an older state of the source
    with replaced_atomically(record_path) as partial:  # written last: it vouches for the array
        partial.write_text(json.dumps({"state": state, "pixels": pixels, "shape": shape, "bad": bad, "array": array}))
    return images, bad


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
