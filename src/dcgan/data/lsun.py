"""LSUN's LMDBs read in place (the `lmdb` extra): root/<category>_lmdb as LSUN's download.py
leaves them, each category one class. What indexes the records is the list of an LMDB's keys,
which takes a walk over the whole database to make: it is kept in data.cache_dir, one file per
LMDB named by its full path, and made again whenever the LMDB changed (its entry count, its
data.mdb's size, times and inode, and a hash of its two meta pages, which every committed write
rewrites). torchvision's own LSUN class keeps that list in the working directory, named by the
path's letters only (two paths differing in digits share one), and never makes it again."""

import bisect
import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from dcgan.data.images import load_image
from dcgan.data.source import Source, place, said, shown
from dcgan.errors import UsageError
from dcgan.files import replaced_atomically

CATEGORIES = ("bedroom", "bridge", "church_outdoor", "classroom", "conference_room", "dining_room", "kitchen",
              "living_room", "restaurant", "tower")  # the scene categories; data.split=train|val means all ten


def lmdb() -> Any:
    try:
        import lmdb
    except ImportError:
        raise UsageError("data.name=LSUN reads LMDB through the lmdb package: pip install 'dcgan-lightning[lmdb]'") \
            from None
    return lmdb


def categories(root: Path, split: str) -> list[str]:
    """The categories data.split names, each an LMDB folder under root."""
    names = [f"{c}_{split}" for c in CATEGORIES] if split in ("train", "val") else [n.strip() for n in split.split(",")]
    if not root.is_dir():
        raise UsageError(f"data.root={shown(root)} is not a folder: point it at the folder holding LSUN's "
                         "<category>_lmdb folders")
    if missing := [name for name in names if not (root / f"{name}_lmdb").is_dir()]:
        held = sorted(p.name.removesuffix("_lmdb") for p in root.glob("*_lmdb") if p.is_dir())
        raise UsageError(f"data.split={split}: data.root={shown(root)} has no {shown(missing[0])}_lmdb folder; it holds "
                         + (f"the categories {', '.join(map(shown, held))}: set data.split to some of them, "
                            "comma-separated" if held else "no LSUN LMDB (<category>_lmdb): point data.root at "
                                                           "the folder LSUN's download.py unzipped them into"))
    return names


def opened(path: Path) -> Any:
    """The LMDB at path, read-only and without its lock file (nothing is written to the dataset's folder)."""
    module = lmdb()
    try:
        return module.open(str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=1)
    except module.Error as error:
        raise damaged(path, error) from None


def damaged(path: Path, error: Exception) -> UsageError:
    category = path.name.removesuffix("_lmdb")
    return UsageError(f"data.name=LSUN: {shown(path)} is not a readable LMDB ({said(error)}): "
                      f"copy it again from LSUN's download (python download.py -c {category.rsplit('_', 1)[0]}), "
                      "or leave the category out of data.split")


def state(path: Path, env: Any) -> str:
    """Changes whenever the LMDB may have (see the module's docstring)."""
    stat, info = (path / "data.mdb").stat(), env.stat()
    with open(path / "data.mdb", "rb") as file:
        meta = hashlib.sha1(file.read(2 * info["psize"])).hexdigest()
    return f"{info['entries']} {stat.st_size} {stat.st_mtime_ns} {stat.st_ctime_ns} {stat.st_ino} {meta}"


def keys(path: Path, env: Any, now: str, keys_dir: Path | None) -> tuple[np.ndarray, bytes]:
    """The LMDB's keys, as the offsets (N+1,) of each in one bytes string: kept in keys_dir (None:
    made each run), as a JSON line {state, count}, the N lengths (uint32), then the keys."""
    file = keys_dir / f"{shown(path.name)}-{place(path)}.keys" if keys_dir else None
    try:
        with open(file or os.devnull, "rb") as kept:
            header = json.loads(kept.readline())
            if header["state"] == now:
                lengths = np.frombuffer(kept.read(4 * header["count"]), "<u4")
                blob = kept.read()
                if len(lengths) == header["count"] and int(lengths.sum()) == len(blob):
                    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]), blob
    except (OSError, ValueError, KeyError, TypeError):  # none kept, none yet, or damaged: made again
        pass
    try:
        with env.begin() as txn:
            found = list(txn.cursor().iternext(keys=True, values=False))
    except lmdb().Error as error:  # a damaged page met on the walk
        raise damaged(path, error) from None
    lengths = np.array([len(key) for key in found], "<u4")
    if file:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            with replaced_atomically(file) as partial:
                partial.write_bytes(json.dumps({"state": now, "count": len(found)}).encode() + b"\n"
                                    + lengths.tobytes() + b"".join(found))
        except OSError as error:
            warnings.warn(f"data.cache_dir={shown(keys_dir)}: cannot keep LSUN's list of keys there ({error}); "
                          "it is made again next run", stacklevel=2)
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]), b"".join(found)


class Lsun(Source):
    def __init__(self, root: Path, split: str, keys_dir: Path | None):
        lmdb()  # first: it says so when the extra is missing
        self.root, self.split = root, split
        self.categories = categories(root, split)
        self.where = f"data.name=LSUN data.split={split} under data.root={shown(root)}"
        self.title = f"LSUN ({split}) under {shown(root)}"
        self.states, self.keys = [], []
        for category in self.categories:
            path = root / f"{category}_lmdb"
            env = opened(path)
            try:
                self.states.append(state(path, env))
                self.keys.append(keys(path, env, self.states[-1], keys_dir))
            finally:
                env.close()
        self.ends = np.cumsum([len(offsets) - 1 for offsets, _ in self.keys]).tolist()  # each category's last + 1
        self._envs: tuple[int, list[Any]] | None = None  # opened once per process

    def __getstate__(self) -> dict[str, Any]:  # to a worker process: it opens the LMDBs itself
        return {**self.__dict__, "_envs": None}

    def _at(self, index: int) -> tuple[int, int]:
        category = bisect.bisect_right(self.ends, index)
        return category, index - (self.ends[category - 1] if category else 0)

    def __len__(self) -> int:
        return self.ends[-1] if self.ends else 0

    def read(self, index: int, image_size: int, channels: int) -> np.ndarray:
        if self._envs is None or self._envs[0] != os.getpid():  # an LMDB opened before a fork is not to be used
            self._envs = os.getpid(), [opened(self.root / f"{c}_lmdb") for c in self.categories]
        category, row = self._at(index)
        offsets, blob = self.keys[category]
        with self._envs[1][category].begin() as txn:
            value = txn.get(blob[offsets[row] : offsets[row + 1]])
        if value is None:
            raise KeyError(f"record {row} is gone from the LMDB")
        return load_image(io.BytesIO(value), image_size, channels)

    def name(self, index: int) -> str:
        category, row = self._at(index)
        return f"LSUN {self.categories[category]} record {row}"

    def state(self) -> str:
        return " | ".join(self.states)

    def key(self) -> str:
        return f"LSUN-{self.split.replace(',', '+')}-{place(self.root)}"

    @property
    def classes(self) -> list[str]:
        return list(self.categories)

    def labels(self) -> list[int]:
        return np.repeat(np.arange(len(self.categories)), np.diff([0, *self.ends])).tolist()
