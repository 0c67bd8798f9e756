"""An image folder as a source: any layout and depth, common formats, any PIL mode, file names
in any encoding, symlinked subfolders; its classes are its first-level subfolders (classes.py).
Entries named like images that are not files (FIFOs, sockets, devices, dangling or looping
links) or cannot be read are records that fail to decode, without being opened (reading.py):
skipped and counted with the corrupt ones."""

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from dcgan.data.classes import class_of, folder_classes
from dcgan.data.images import find_images, load_image
from dcgan.data.module import ImageDataModule
from dcgan.data.reading import content_digest
from dcgan.data.source import Source, shown, stem


class Folder(Source):
    def __init__(self, root: Path, files: list[Path] | None = None, option: str = "data.root"):
        """option: the key that gave root, which messages name (evaluate.py's samples=)."""
        self.root = root
        self.files = find_images(root, option) if files is None else files
        self.title = shown(root)
        self.where = f"{option}={self.title}"

    def __len__(self) -> int:
        return len(self.files)

    def read(self, index: int, image_size: int, channels: int) -> np.ndarray:
        return load_image(self.files[index], image_size, channels)

    def name(self, index: int) -> str:
        return shown(self.files[index].relative_to(self.root))

    def state(self) -> str:
        return content_digest(self.root, self.files)

    def key(self) -> str:
        return stem(self.root.name, self.root)

    @cached_property
    def _folders(self) -> list[str]:
        return folder_classes(self.root, self.files)

    @property
    def classes(self) -> list[str]:
        return [shown(name) for name in self._folders]

    def labels(self) -> list[int]:
        index = {name: i for i, name in enumerate(self._folders)}
        return [class_of(self.root, path, index) for path in self.files]


class ImageFolderDataModule(ImageDataModule):
    """Batches of the images under root (see ImageDataModule for the options). labels: each
    image's class is its first-level subfolder (a flat folder is one class)."""

    def __init__(self, root: str, **options: Any):
        super().__init__(**options)
        self.root = Path(root).expanduser()

    def _source(self) -> Folder:
        return Folder(self.root)

    @property
    def files(self) -> list[Path]:
        return self.source.files
