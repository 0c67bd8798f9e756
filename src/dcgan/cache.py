"""A decoded-image cache: every image decoded, resized and cropped once into one uint8 array.

In memory, or as a memory-mapped .npy file in a cache folder, named by a key over the files'
paths, sizes and modification times, image_size and channels: a changed folder gets a new key,
so a stale cache is never read.
"""

import hashlib
import json
from pathlib import Path

import numpy as np

from dcgan.files import replaced_atomically
from dcgan.images import decode_images

FORMAT = 2  # bump when the decoding changes, so old cache files are not reused


def cache_key(root: Path, files: list[Path], image_size: int, channels: int) -> str:
    digest = hashlib.sha1(f"{FORMAT} {image_size} {channels}".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def cached_images(root: Path, files: list[Path], image_size: int, channels: int,
                  cache_dir: Path | None, workers: int) -> tuple[np.ndarray, list[Path]]:
    """The (M, channels, S, S) uint8 array of the M files that decode, and the paths of the N - M
    that do not: read from cache_dir when it holds this folder's current key, else decoded (and,
    with a cache_dir, written there atomically, the undecodable files listed beside it)."""
    def decode() -> tuple[np.ndarray, list[Path]]:
        images = np.empty((len(files), channels, image_size, image_size), dtype=np.uint8)
        bad = decode_images(files, image_size, channels, workers, out=images)
        return images[: len(files) - len(bad)], bad

    if cache_dir is None:
        return decode()
    path = cache_dir / f"{root.name}-{image_size}px-{channels}ch-{cache_key(root, files, image_size, channels)}.npy"
    skipped = path.with_suffix(".bad.json")
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        images, bad = decode()
        with replaced_atomically(skipped) as partial:
            partial.write_text(json.dumps([str(p.relative_to(root)) for p in bad]))
        with replaced_atomically(path) as partial, open(partial, "wb") as file:  # a whole file or none
            np.save(file, images)
    bad = [root / name for name in json.loads(skipped.read_text())]
    return np.load(path, mmap_mode="c"), bad  # copy-on-write: writable for torch, never written
