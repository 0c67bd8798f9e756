"""An image folder decoded once per state of its files: the decoded-image cache, and the list of
files that cannot be decoded.

In a cache folder, each image folder and settings have one record,
<folder>-<hash of its path>-<S>px-<C>ch.json: the state of the files it describes (a key over each
file's name, size, modification and change times and inode, so an edit that keeps the size and
restores the modification time still changes it) and the files that could not be decoded; with
the cache, .npy beside it holds the decoded uint8 array, memory-mapped. A changed folder replaces
both, so stale arrays never pile up.
"""

import hashlib
import json
from pathlib import Path

import numpy as np

from dcgan.data.images import decode_images
from dcgan.files import replaced_atomically

FORMAT = 3  # bump when the decoding changes, so old records are not reused


def folder_state(root: Path, files: list[Path], image_size: int, channels: int) -> str:
    digest = hashlib.sha1(f"{FORMAT} {image_size} {channels}".encode())
    for path in files:
        stat = path.stat()  # st_ctime_ns: set by every write, and no tool can set it back
        digest.update(f"{path.relative_to(root)} {stat.st_size} {stat.st_mtime_ns} {stat.st_ctime_ns} {stat.st_ino}\n".encode())
    return digest.hexdigest()


def decoded_folder(root: Path, files: list[Path], image_size: int, channels: int, cache_dir: Path | None,
                   workers: int, pixels: bool) -> tuple[np.ndarray | None, list[Path]]:
    """The files that cannot be decoded and, with pixels, the (M, channels, S, S) uint8 array of
    the M that can, in order. Read from cache_dir when it holds them for the folder's current
    state, else decoded in `workers` processes (and, with a cache_dir, written there atomically)."""
    def decode() -> tuple[np.ndarray | None, list[Path]]:
        if not pixels:
            return None, decode_images(files, image_size, channels, workers)
        images = np.empty((len(files), channels, image_size, image_size), dtype=np.uint8)
        bad = decode_images(files, image_size, channels, workers, out=images)
        return images[: len(files) - len(bad)], bad

    if cache_dir is None:
        return decode()
    where = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:8]
    stem = cache_dir / f"{root.name}-{where}-{image_size}px-{channels}ch"
    record_path, array_path = Path(f"{stem}.json"), Path(f"{stem}.npy")
    state = folder_state(root, files, image_size, channels)
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    current = record.get("state") == state
    if current and (record["pixels"] or not pixels):
        return np.load(array_path, mmap_mode="c") if pixels else None, [root / name for name in record["bad"]]

    cache_dir.mkdir(parents=True, exist_ok=True)
    images, bad = decode()
    if images is not None:
        with replaced_atomically(array_path) as partial, open(partial, "wb") as file:  # a whole file or none
            np.save(file, images)
    elif not current:
        array_path.unlink(missing_ok=True)  # decoded from an older state of the folder
    with replaced_atomically(record_path) as partial:  # written last: it vouches for the array
        partial.write_text(json.dumps({"state": state, "pixels": images is not None,
                                       "bad": [str(path.relative_to(root)) for path in bad]}))
    return images, bad
