"""Where training images come from. A Source is N records read by index, each one image (and its
class, when the data has classes); the DataModule (module.py) makes the same batches from every
source: decoded once into the cache, ordered, sharded, mirrored and resumed alike. A new source
is a subclass in a file of its own here, with its DataModule beside it and a preset in conf/data/."""

import hashlib
import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np


def shown(text: str | os.PathLike) -> str:
    """A path or name as it can be printed: bytes that are not UTF-8 (a name written on another
    system, which Python keeps as surrogates) become escapes instead of a UnicodeEncodeError."""
    return os.fspath(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def said(error: BaseException) -> str:
    """An exception as one line of a message: its type and its text, newlines and all folded."""
    return " ".join(f"{type(error).__name__}: {error}".split()).rstrip(":")


def place(path: Path) -> str:
    """8 hex digits that tell this path's data from another folder's of the same name."""
    return hashlib.sha1(os.fsencode(path.expanduser().resolve())).hexdigest()[:8]


def stem(name: str, path: Path) -> str:
    """A cache file-name stem for the data at path: its name, cut to 64 bytes (a file name holds
    255, and the cache adds to it), and its place."""
    return f"{shown(name).encode()[:64].decode('utf-8', 'ignore')}-{place(path)}"


class Source(ABC):
    """N images with, where the data has them, class labels."""

    where: str  # what messages call the data, by its option: e.g. "data.root=/data/celeba"
    title: str  # what the start line calls it: e.g. "/data/celeba"

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def read(self, index: int, image_size: int, channels: int) -> np.ndarray:
        """Record index's image resized and center-cropped: (S, S, channels) uint8. Raises
        whatever its decoder raises for a record that cannot be decoded."""

    @abstractmethod
    def name(self, index: int) -> str:
        """What messages call record index: a file's path, a zip member, a row."""

    @abstractmethod
    def state(self) -> str:
        """Changes whenever the records may have: what the decoded cache is kept for."""

    @abstractmethod
    def key(self) -> str:
        """A file-name stem for this data in a cache folder, the same for every run on it."""

    @property
    def classes(self) -> list[str]:
        """The class names, or [] for data without classes."""
        return []

    def labels(self) -> list[int] | None:
        """Each record's class, an index into classes; None for data without classes."""
        return None
