"""StyleGAN2-ADA's dataset zip as a source, read in place: its images (at any path inside) and,
when it has one, dataset.json's labels ({"labels": [["00000/img00000000.png", 6], ...]}), so a
dataset made by its dataset_tool.py trains here unconverted."""

import hashlib
import io
import json
import os
import zipfile
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from dcgan.data.images import IMAGE_EXTENSIONS, load_image
from dcgan.data.module import ImageDataModule
from dcgan.data.source import Source, shown, stem
from dcgan.errors import UsageError


class Zip(Source):
    def __init__(self, path: Path):
        self.path = path
        self.title = shown(path)
        self.where = f"data.root={self.title}"
        try:
            with zipfile.ZipFile(path) as archive:
                # A name stored twice is read as its last copy, as zipfile reads it: one record
                infos = {info.filename: info for info in archive.infolist()}
        except OSError as error:
            raise UsageError(f"{self.where} cannot be read ({error.strerror or error}): give the user running "
                             "training read access to it") from None
        except (zipfile.BadZipFile, ValueError, EOFError) as error:  # no, or a damaged, central directory
            raise UsageError(f"{self.where} is not a zip file, or a truncated or damaged one ({error}): data=zip "
                             "reads StyleGAN2-ADA's dataset zip whole (data=folder reads a folder)") from None
        self.members = sorted(name for name in infos if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS)
        if not self.members:
            kinds = "/".join(sorted(e[1:] for e in IMAGE_EXTENSIONS))
            raise UsageError(f"{self.where} holds no images (no {kinds} member): point data.root at a dataset zip")
        # Each member's CRC-32 of its content, from the central directory (zipfile checks it at every read)
        self._checksums = [(name, infos[name].CRC, infos[name].file_size) for name in self.members]
        self._has_json = "dataset.json" in infos
        self._archive: tuple[int, zipfile.ZipFile] | None = None  # opened once per process

    def __getstate__(self) -> dict[str, Any]:  # to a worker process: it opens the zip itself
        return {**self.__dict__, "_archive": None}

    def __len__(self) -> int:
        return len(self.members)

    def read(self, index: int, image_size: int, channels: int) -> np.ndarray:
        if self._archive is None or self._archive[0] != os.getpid():  # a forked worker opens its own
            self._archive = os.getpid(), zipfile.ZipFile(self.path)
        return load_image(io.BytesIO(self._archive[1].read(self.members[index])), image_size, channels)

    def name(self, index: int) -> str:
        return shown(self.members[index])

    def state(self) -> str:
        """The members' names, sizes and CRC-32s: their content, with no member read."""
        return hashlib.sha1(json.dumps(self._checksums).encode("utf-8", "surrogateescape")).hexdigest()

    def key(self) -> str:
        return stem(self.path.stem, self.path)

    @cached_property
    def _labels(self) -> list[int] | None:
        """dataset.json's class of each member, read only when labels are asked for."""
        if not self._has_json:
            return None
        fix = "fix dataset.json (dataset_tool.py writes it), or train without labels (data.labels=false)"
        try:
            with zipfile.ZipFile(self.path) as archive:
                labels = json.loads(archive.read("dataset.json")).get("labels")
            by_name = dict(labels or [])
        except (OSError, zipfile.BadZipFile, ValueError, TypeError, AttributeError) as error:
            raise UsageError(f"{self.where}: its dataset.json cannot be read as {{\"labels\": [[name, class], ...]}} "
                             f"({error}): {fix}") from None
        if not by_name:
            return None
        if missing := [name for name in self.members if name not in by_name]:
            raise UsageError(f"{self.where}: dataset.json has no label for {len(missing)} of its images, e.g. "
                             f"{shown(missing[0])}: {fix}")
        if any(type(label) is not int or label < 0 for label in by_name.values()):
            raise UsageError(f"{self.where}: dataset.json's labels are not class numbers 0, 1, ... (vectors?): "
                             "data.labels=true trains on classes only; train without labels (data.labels=false)")
        return [by_name[name] for name in self.members]

    @property
    def classes(self) -> list[str]:
        return [str(label) for label in range(max(self._labels) + 1)] if self._labels else []

    def labels(self) -> list[int] | None:
        return self._labels


class ZipDataModule(ImageDataModule):
    """Batches of the images in the zip at root (see ImageDataModule for the options); labels:
    dataset.json's classes."""

    def __init__(self, root: str, **options: Any):
        super().__init__(**options)
        self.root = Path(root).expanduser()

    def _source(self) -> Zip:
        if not self.root.is_file():  # a FIFO, a folder or nothing: not opened
            raise UsageError(f"data.root={shown(self.root)} is not a file: point it at a dataset zip"
                             + (" (data=folder reads a folder)" if self.root.is_dir() else ""))
        return Zip(self.root)
