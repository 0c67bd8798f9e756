"""A decoded-image cache: every image decoded, resized and cropped once into one uint8 array.

In memory, or as a memory-mapped .npy file in a cache folder, named by a key over the files'
paths, sizes and modification times, image_size and channels: a changed folder gets a new key,
so a stale cache is never read.
"""

import hashlib
import os
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from dcgan.images import ImageFolder

FORMAT = 1  # bump when the decoding changes, so old cache files are not reused


def cache_key(root: Path, files: list[Path], image_size: int, channels: int) -> str:
    digest = hashlib.sha1(f"{FORMAT} {image_size} {channels}".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def decode_all(files: list[Path], image_size: int, channels: int, out: np.ndarray, workers: int) -> None:
    """Fill out (N, channels, S, S) with the decoded images, in `workers` processes (0: here)."""
    loader = DataLoader(ImageFolder(Path(), image_size, channels, files), batch_size=256, num_workers=workers)
    start = 0
    for batch in loader:  # in file order
        out[start : start + len(batch)] = batch.numpy()
        start += len(batch)


def cached_images(root: Path, files: list[Path], image_size: int, channels: int,
                  cache_dir: Path | None, workers: int) -> np.ndarray:
    """The (N, channels, S, S) uint8 array of all files: read from cache_dir when it holds this
    folder's current key, else decoded (and, with a cache_dir, written there atomically)."""
    shape = (len(files), channels, image_size, image_size)
    if cache_dir is None:
        images = np.empty(shape, dtype=np.uint8)
        decode_all(files, image_size, channels, images, workers)
        return images
    path = cache_dir / f"{root.name}-{image_size}px-{channels}ch-{cache_key(root, files, image_size, channels)}.npy"
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".partial{os.getpid()}")
        images = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=shape)
        decode_all(files, image_size, channels, images, workers)
        images.flush()
        del images
        os.replace(partial, path)  # readers see a whole file or none
    return np.load(path, mmap_mode="c")  # copy-on-write: writable for torch, never written
