"""Finding image files under a folder, decoding images into square uint8 arrays, and a source's
records as a torch Dataset."""

import os
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from dcgan.data.reading import open_file
from dcgan.data.source import Source, shown
from dcgan.errors import UsageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def find_images(root: Path, option: str = "data.root") -> list[Path]:
    """Every entry named like an image under root, at any depth (CelebA's root/img_align_celeba/
    included); which of them are not files (FIFOs, dangling links, ...) reading.kind tells later.
    Symlinked subfolders are followed, as torchvision's ImageFolder does, each target once: a
    link to a folder it is in (a loop) or to one listed already is not, and one warning names
    them; another names the subfolders that cannot be listed. option: the key the messages
    name root by (evaluate.py's samples=, ...)."""
    if not root.is_dir():
        raise UsageError(f"{option}={shown(root)} is not a folder: point {option} at a folder of images"
                         + (" (data=zip reads a zip)" if root.is_file() and zipfile.is_zipfile(root) else ""))
    files: list[Path] = []
    loops: list[str] = []
    unlisted: list[OSError] = []
    seen: set[str] = set()  # the real folders walked or about to be
    for folder, subfolders, names in os.walk(root, onerror=unlisted.append, followlinks=True):
        seen.add(os.path.realpath(folder))
        for name in [d for d in subfolders if os.path.islink(os.path.join(folder, d))]:
            target = os.path.realpath(os.path.join(folder, name))
            if target in seen:  # a folder it is in (a loop), or one linked or walked already
                subfolders.remove(name)
                loops.append(shown(Path(folder, name).relative_to(root)))
            seen.add(target)
        files += [Path(folder, name) for name in names if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS]
    if unlisted and unlisted[0].filename == os.fspath(root):
        raise UsageError(f"{option}={shown(root)} cannot be listed ({unlisted[0].strerror}): "
                         "give the user running training read access to it")
    if loops:
        warnings.warn(f"{option}={shown(root)}: not following {', '.join(loops)}: each links to a folder it is in "
                      "or one listed already", stacklevel=2)
    if unlisted:
        where = ", ".join(f"{shown(Path(e.filename).relative_to(root))} ({e.strerror})" for e in unlisted)
        warnings.warn(f"{option}={shown(root)}: skipped {len(unlisted)} subfolders that cannot be listed: {where}",
                      stacklevel=2)
    if not files:
        kinds = "/".join(sorted(e[1:] for e in IMAGE_EXTENSIONS))
        raise UsageError(f"{option}={shown(root)} holds no images: expected {kinds} files, at any depth")
    return sorted(files)


def to_channels(img: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL mode to 8-bit 'L' (channels=1) or 'RGB' (channels=3)."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit greyscale: PIL's own convert clips at 255; scale the range down instead.
        array = np.asarray(img, dtype=np.float32) / 257.0
        img = Image.fromarray(np.clip(array + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode in ("P", "PA"):
        img = img.convert("RGBA")  # palette transparency is only honoured through RGBA
    return img.convert("L" if channels == 1 else "RGB")  # drops alpha, converts CMYK/LA/1/...


def fitted(img: Image.Image, image_size: int, channels: int) -> np.ndarray:
    """img in `channels`, its shorter side resized to image_size (smaller images are upscaled)
    and center-cropped: (S, S, channels) uint8."""
    img = ImageOps.fit(to_channels(img, channels), (image_size, image_size), Image.Resampling.BILINEAR)
    return np.array(img).reshape(image_size, image_size, channels)  # a writable copy for torch


def load_image(file: Path | IO[bytes], image_size: int, channels: int) -> np.ndarray:
    """Decode an image file (a multi-frame GIF or TIFF: its first frame) and fit it: (S, S, channels) uint8.
    A path is opened only when it is a regular file (reading.open_file)."""
    with open_file(file) if isinstance(file, Path) else nullcontext(file) as opened, Image.open(opened) as img:
        img.draft(None, (image_size, image_size))  # JPEG: decode at the smallest scale >= size
        img = to_channels(img, channels)
    return fitted(img, image_size, channels)


class Decoded(Dataset):
    """Records of a source (those at `indices`; all by default) as uint8 tensors (C, S, S), with
    their labels when given: (image, label). Scaling to [-1, 1] happens on the device."""

    def __init__(self, source: Source, image_size: int, channels: int, indices: Sequence[int] | None = None,
                 labels: Sequence[int] | None = None):
        self.source = source
        self.image_size = image_size
        self.channels = channels
        self.indices = range(len(source)) if indices is None else indices
        self.labels = labels

    def __len__(self) -> int:
        return len(self.indices)

    def image(self, index: int) -> Tensor:
        return torch.from_numpy(self.source.read(self.indices[index], self.image_size, self.channels)).permute(2, 0, 1)

    def __getitem__(self, index: int) -> Tensor | tuple[Tensor, int]:
        return self.image(index) if self.labels is None else (self.image(index), self.labels[index])


class Checked(Decoded):
    """Each record's image with whether it could be decoded: ((C, S, S) uint8, ok)."""

    def __getitem__(self, index: int) -> tuple[Tensor, bool]:
        try:
            return self.image(index), True
        except Exception:  # whatever the decoder raises for a corrupt, truncated, empty or unreadable record
            return torch.zeros(self.channels, self.image_size, self.image_size, dtype=torch.uint8), False


def decode_all(source: Source, image_size: int, channels: int, workers: int) -> Iterator[tuple[Tensor, list[int]]]:
    """Every record decoded once, in `workers` processes (0: here), in order: batches of the
    images that could be decoded, (B, C, S, S) uint8, each with the indices of those that could not."""
    loader = DataLoader(Checked(source, image_size, channels), batch_size=256, num_workers=workers)
    done = 0
    for images, ok in loader:
        yield images[ok], [done + i for i in (~ok).nonzero().flatten().tolist()]
        done += len(ok)
