"""StyleGAN2-ADA's dataset zip as a source, read in place: its images (at any path inside) and,
when it has one, dataset.json's labels ({"labels": [["00000/img00000000.png", 6], ...]}), so a
dataset made by its dataset_tool.py trains here unconverted."""

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from dcgan.data.images import IMAGE_EXTENSIONS, load_image
from dcgan.data.module import ImageDataModule
from dcgan.data.source import Source, place, shown, stats_digest
from dcgan.errors import UsageError


class Zip(Source):
    def __init__(self, path: Path):
        self.path = path
        self.title = shown(path)
        self.where = f"data.root={self.title}"
        if not zipfile.is_zipfile(path):
            raise UsageError(f"{self.where} is not a zip file: data=zip reads StyleGAN2-ADA's dataset zip "
                             "(data=folder reads a folder)")
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            self.members = sorted(n for n in names if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS)
            labels = json.loads(archive.read("dataset.json")).get("labels") if "dataset.json" in names else None
        self._labels: list[int] | None = None
        if labels:
            by_name = dict(labels)
            if missing := [name for name in self.members if name not in by_name]:
                raise UsageError(f"{self.where}: dataset.json has no label for {len(missing)} images, e.g. {missing[0]}")
            if any(not isinstance(label, int) for label in by_name.values()):
                raise UsageError(f"{self.where}: dataset.json's labels are not class numbers (vectors?): "
                                 "data.labels=true trains on classes only")
            self._labels = [by_name[name] for name in self.members]
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
        return stats_digest(self.path.parent, [self.path])

    def key(self) -> str:
        return f"{shown(self.path.stem)}-{place(self.path)}"

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
        if not self.root.is_file():
            raise UsageError(f"data.root={shown(self.root)} is not a file: point it at a dataset zip")
        return Zip(self.root)
