"""The built-in dataset: scikit-learn's bundled handwritten digits, written once as an image folder.

1,797 real 8x8 greyscale scans of the digits 0-9 (UCI optdigits) ship inside scikit-learn, so
training needs no download. They are written as PNGs under root/<digit>/ and read back by the
same ImageFolderDataModule as any user's folder, so data.labels=true gives their real classes.
"""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from dcgan.data.folder import Folder, ImageFolderDataModule
from dcgan.data.tiers import Cache
from dcgan.errors import UsageError

MARKER = ".dcgan-digits"  # written last: its presence means the folder is complete


def write_digits(root: Path) -> None:
    """Write the digits as root/<label>/<index>.png, atomically (a crash leaves no half folder)."""
    from sklearn.datasets import load_digits  # imported here: only this function needs sklearn

    digits = load_digits()
    pixels = np.round(digits.images * (255 / 16)).astype(np.uint8)  # (1797, 8, 8), 17 grey levels
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".digits-", dir=root.parent))
    for index, (image, label) in enumerate(zip(pixels, digits.target)):
        folder = staging / str(label)
        folder.mkdir(exist_ok=True)
        Image.fromarray(image, "L").save(folder / f"{index:04d}.png")
    (staging / MARKER).touch()
    try:
        if root.is_dir():  # empty (checked by the caller); rename needs it gone
            root.rmdir()
        os.replace(staging, root)
    except OSError:  # another process (a rank torchrun started beside this one) wrote it first
        shutil.rmtree(staging)
        if not (root / MARKER).exists():
            raise


class DigitsDataModule(ImageFolderDataModule):
    """ImageFolderDataModule over the built-in digits, written to root on first use."""

    def __init__(
        self,
        root: str = "data/digits",
        image_size: int = 32,
        channels: int = 1,
        batch_size: int = 64,
        batches_per_step: int = 1,
        num_workers: int = 0,
        drop_last: bool = True,
        cache: Cache = "device",
        cache_dir: str | None = None,
        on_bad_image: Literal["skip", "error"] = "error",
        labels: bool = False,
        hflip: bool = False,
    ):
        super().__init__(root, image_size=image_size, channels=channels, batch_size=batch_size,
                         batches_per_step=batches_per_step, num_workers=num_workers, drop_last=drop_last, cache=cache,
                         cache_dir=cache_dir, on_bad_image=on_bad_image, labels=labels, hflip=hflip)

    def _source(self) -> Folder:
        # The first look at the folder writes it: train.py asks for the classes (data.labels)
        # before Lightning runs prepare_data.
        if not (self.root / MARKER).exists():
            if self.root.exists() and any(self.root.iterdir()):
                raise UsageError(
                    f"data.root={self.root} is not the built-in digits folder: to train on your own "
                    "images pick a preset that reads a folder, e.g. experiment=celeba64 or experiment=cifar32"
                )
            write_digits(self.root)
        return Folder(self.root)

    def prepare_data(self) -> None:
        self.source  # written here (once per node), unless the classes were asked for before  # noqa: B018
        super().prepare_data()  # a cache in cache_dir is then built here once, not by every rank
